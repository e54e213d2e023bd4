"""Fresh test databases, fast: each is a copy of a template migrated once per session."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from pathlib import Path

import asyncpg

from fedcop import db as database
from fedcop.db import create_engine

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_admin_url() -> str:
    return os.environ.get("FEDCOP_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


class DatabaseFactory:
    def __init__(self, directory: Path, postgres_url: str) -> None:
        self.directory = directory
        self.postgres_url = postgres_url
        self.postgres_error = ""
        self._counter = itertools.count()
        self._prefix = f"fedcop_t{os.getpid()}"
        self._sqlite_template: Path | None = None
        self._postgres_template: str | None = None
        self._postgres_available: bool | None = None

    @property
    def postgres_available(self) -> bool:
        if self._postgres_available is None:
            try:
                asyncio.run(self._admin("SELECT 1"))
                self._postgres_available = True
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                self.postgres_error = f"{type(exc).__name__}: {exc}"
                self._postgres_available = False
        return self._postgres_available

    def create(self, backend: str, *, migrated: bool) -> str:
        return asyncio.run(self.create_async(backend, migrated=migrated))

    def drop(self, url: str) -> None:
        asyncio.run(self.drop_async(url))

    def close(self) -> None:
        if self._postgres_template is not None:
            asyncio.run(
                self._admin(f'DROP DATABASE IF EXISTS "{self._postgres_template}" WITH (FORCE)')
            )

    async def create_async(self, backend: str, *, migrated: bool) -> str:
        name = f"{self._prefix}_{next(self._counter)}"
        if backend == "sqlite":
            path = self.directory / f"{name}.db"
            if migrated:
                shutil.copyfile(await self._sqlite_template_path(), path)
            return f"sqlite+aiosqlite:///{path}"
        template = await self._postgres_template_name() if migrated else "template0"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self._postgres_database_url(name)

    async def drop_async(self, url: str) -> None:
        if url.startswith("postgresql"):
            name = url.rsplit("/", 1)[1]
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _sqlite_template_path(self) -> Path:
        if self._sqlite_template is None:
            path = self.directory / "template.db"
            await _migrate(f"sqlite+aiosqlite:///{path}")
            self._sqlite_template = path
        return self._sqlite_template

    async def _postgres_template_name(self) -> str:
        if self._postgres_template is None:
            name = f"{self._prefix}_template"
            await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "template0"')
            await _migrate(self._postgres_database_url(name))
            self._postgres_template = name
        return self._postgres_template

    def _postgres_database_url(self, name: str) -> str:
        base = self.postgres_url.rsplit("/", 1)[0].split("://", 1)[1]
        return f"postgresql+asyncpg://{base}/{name}"

    async def _admin(self, sql: str) -> None:
        connection = await asyncpg.connect(self.postgres_url, timeout=3)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await database.upgrade(engine)
    finally:
        await engine.dispose()
