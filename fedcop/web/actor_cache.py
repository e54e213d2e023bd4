"""Local actor documents served from memory, never stale: fresh row, cached bytes.

Reading an actor document used to cost ~1.3 ms of server CPU (bench/reads.py): an ORM session,
an ORM query, an `Actor` instance, the document dict and its JSON, for a document that changes
a few times in an actor's life. Two things make it cheap without ever serving an old document:

1. **One query for every lookup waiting at the time** (`LocalActorRows`). A lookup joins the
   next query to *start*, never one already running, so what it returns was read after the
   request arrived: a change committed before the request is always seen. Under load one query
   serves many requests; alone, a request pays for one lean Core query.
2. **The serialised document is cached under the whole row it was built from**
   (`ActorDocuments`). Each request still reads the row; the cached bytes are used only if the
   row read now equals the one they were built from, column for column. A new name, key,
   icon, header image, flag or any column added later changes the row, so the document is
   rebuilt: there is no version to forget to bump and no event to miss, even when another
   process changed the row. Only what the row holds may go into a cached document (today
   `actor_to_ap` and WebFinger read nothing else); anything from another table must be added
   to the key.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from fedcop.models import Actor
from fedcop.web.state import app_state

ActorRow = Row[Any]
# Documents kept per app: ~2-3 KB each, so the bound is ~30 MB at most.
MAX_DOCUMENTS = 10_000
_ACTORS = Actor.__table__
# Built once: building the query per batch was ~5% of an actor document's CPU (py-spy).
_BY_NAMES = select(_ACTORS).where(
    _ACTORS.c.local, func.lower(_ACTORS.c.username).in_(bindparam("names", expanding=True))
)


class LocalActorRows:
    """Local actor rows by username (case-insensitive), read in shared queries."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiting: dict[str, list[asyncio.Future[ActorRow | None]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.queries = 0  # for tests and benchmarks: how many queries were run

    async def get(self, username: str) -> ActorRow | None:
        future: asyncio.Future[ActorRow | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(username.lower(), []).append(future)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_while_waiting())
        return await future

    async def _read_while_waiting(self) -> None:
        try:
            while self._waiting:
                # Whoever arrives from now on waits for the next query, which starts later.
                batch, self._waiting = self._waiting, {}
                try:
                    rows = await self._read(list(batch))
                except Exception as exc:  # every waiting request gets the error, none hangs
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for name, futures in batch.items():
                    for future in futures:
                        if not future.done():  # a cancelled request (client went away)
                            future.set_result(rows.get(name))
        finally:
            self._reader = None

    async def _read(self, names: list[str]) -> dict[str, ActorRow]:
        self.queries += 1
        async with self._engine.connect() as connection:
            rows = (await connection.execute(_BY_NAMES, {"names": names})).all()
        return {row.username.lower(): row for row in rows}


class ActorDocuments:
    """Serialised documents built from actor rows, reused while the row is unchanged."""

    def __init__(self, engine: AsyncEngine, max_documents: int = MAX_DOCUMENTS) -> None:
        self.rows = LocalActorRows(engine)
        self._max = max_documents
        self._documents: OrderedDict[tuple[int, str], tuple[ActorRow, bytes]] = OrderedDict()
        self.builds = 0  # for tests and benchmarks: documents built rather than reused

    def serialised(
        self, row: ActorRow, variant: str, build: Callable[[Actor], dict[str, Any]]
    ) -> bytes:
        """The JSON of `build(actor)`, built again only if the row differs from last time."""
        key = (row.id, variant)
        cached = self._documents.get(key)
        if cached is not None and tuple(cached[0]) == tuple(row):
            self._documents.move_to_end(key)
            return cached[1]
        self.builds += 1
        body = orjson.dumps(build(actor_from_row(row)))
        self._documents[key] = (row, body)
        self._documents.move_to_end(key)
        while len(self._documents) > self._max:
            self._documents.popitem(last=False)
        return body


def actor_from_row(row: ActorRow) -> Actor:
    """A detached `Actor` holding the row's values (never added to a session)."""
    return Actor(**row._asdict())


def actor_documents(request: Request) -> ActorDocuments:
    """This app's cache, made on first use (it belongs to the app, like its engine)."""
    documents: ActorDocuments | None = getattr(request.app.state, "actor_documents", None)
    if documents is None:
        documents = ActorDocuments(app_state(request).engine)
        request.app.state.actor_documents = documents
    return documents
