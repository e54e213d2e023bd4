"""Engine, sessions and migrations.

SQLite is the embedded default and is migrated automatically; PostgreSQL is migrated
explicitly with `fedcop migrate`, because several processes may share it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Executable, Row, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from fedcop.settings import Settings

SessionMaker = async_sessionmaker[AsyncSession]


# Connections each process keeps open (and as many again for bursts). SQLAlchemy's default,
# 5 + 10 overflow, is below the 32 requests a busy server has in flight: every request past
# the fifth opened a connection and closed it on return, which doubled the cost of an outbox
# page on SQLite (1,958 -> 941 µs of CPU at 32 in flight, pool 5 vs 32). An aiosqlite
# connection is a thread, so SQLite can afford many; PostgreSQL connections are shared by
# every process (max_connections, 100 by default), so fewer: `FEDCOP_DATABASE_POOL_SIZE`.
SQLITE_POOL_SIZE = 32
POSTGRES_POOL_SIZE = 10


def engine_for(settings: Settings) -> AsyncEngine:
    """The engine a process builds from its settings (database URL and pool size)."""
    return create_engine(settings.database_url, pool_size=settings.database_pool_size)


def create_engine(database_url: str, *, pool_size: int | None = None, **kwargs: Any) -> AsyncEngine:
    """Create the engine, configuring SQLite for a web process and a worker sharing one file."""
    if database_url.startswith("sqlite"):
        if ":memory:" not in database_url:  # an in-memory database has a single connection
            size = pool_size or SQLITE_POOL_SIZE
            kwargs = {"pool_size": size, "max_overflow": size, **kwargs}
        engine = create_async_engine(database_url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", sqlite_on_connect)
        return engine
    size = pool_size or POSTGRES_POOL_SIZE
    kwargs = {"pool_size": size, "max_overflow": size, **kwargs}
    return create_async_engine(database_url, pool_pre_ping=True, **kwargs)


def sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers proceed while the single writer commits; foreign keys are off by
    # default in SQLite and our ON DELETE CASCADE relies on them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_maker(engine: AsyncEngine, *, info: dict[str, Any] | None = None) -> SessionMaker:
    """Sessions on `engine`; `info` is in every session's `Session.info` (the doorbells)."""
    return async_sessionmaker(engine, expire_on_commit=False, info=info)


def sqlite_file(engine: AsyncEngine) -> str | None:
    """The file of a SQLite engine, where a connection of one's own (the inbox writer, the
    delivery worker, the change watcher) sees what the pool's see; None for in-memory SQLite
    (one connection, tests) or another database."""
    return sqlite_url_file(engine.url)


def sqlite_url_file(url: URL | str) -> str | None:
    """As `sqlite_file`, from a database URL."""
    url = make_url(url)
    database = url.database
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        return database
    return None


def on_asyncpg(engine: AsyncEngine) -> bool:
    """PostgreSQL through asyncpg, whose connections the hot paths may speak to directly."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"


def engine_of(db: SessionMaker) -> AsyncEngine:
    """The engine a session maker is bound to (for statements that skip the ORM, or differ by
    database)."""
    bind = db.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("a session maker bound to an AsyncEngine is needed")
    return bind


def insert_for(dialect: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    """INSERT into `table` in the dialect's own construct, the one with ON CONFLICT (same
    shape on PostgreSQL and SQLite)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


# Runs one writing statement and commits it, returning its rows (RETURNING): see
# `InboxWriter.execute_write` for why a process routes some writes through one lane.
WriteStatement = Callable[[Executable], Awaitable[list[Row[Any]]]]


def engine_writes(engine: AsyncEngine) -> WriteStatement:
    """Each statement in a transaction of its own on a pooled connection."""

    async def execute(statement: Executable) -> list[Row[Any]]:
        async with engine.begin() as connection:
            return list((await connection.execute(statement)).all())

    return execute


def migrations_path() -> Path:
    """Where the migration scripts are: inside the wheel, or at the top of a checkout."""
    packaged = Path(__file__).resolve().parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run_with_connection(engine, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run_with_connection(engine, lambda cfg: command.downgrade(cfg, revision))


async def _run_with_connection(engine: AsyncEngine, action: Any) -> None:
    # Alembic's env.py uses the connection we hand it (see migrations/env.py), so migrations
    # run inside the caller's event loop instead of starting one of their own.
    def run(sync_connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_connection
        action(config)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(sync_connection: Connection) -> str | None:
        return MigrationContext.configure(sync_connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def is_up_to_date(engine: AsyncEngine) -> bool:
    return await current_revision(engine) == head_revision()


def is_database_outage(exc: BaseException) -> bool:
    """Whether `exc` means the database is unreachable or was restarted under us (retry later),
    rather than a bug: a refused or reset connection, a pooled connection found dead, or
    PostgreSQL still starting up or shutting down."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError):
        return True
    cause = exc.__cause__ or getattr(exc, "orig", None)
    name = type(cause).__name__ if cause is not None else ""
    # asyncpg's own: ConnectionDoesNotExistError, CannotConnectNowError ("starting up"),
    # AdminShutdownError / ConnectionFailureError; checked by name, as asyncpg is optional.
    return name in _ASYNCPG_OUTAGES or (cause is not None and is_database_outage(cause))


_ASYNCPG_OUTAGES = frozenset(
    {"ConnectionDoesNotExistError", "CannotConnectNowError", "AdminShutdownError",
     "ConnectionFailureError", "InterfaceError", "InternalClientError"}
)  # fmt: skip
