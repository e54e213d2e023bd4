"""Keeping authenticated inbound activities: de-duplication and group-committed inbox rows.

Each accepted request must be durable before its 202, but one transaction per request caps a
server at its database's commit rate. So requests hand their row to one writer that commits
everything that arrived while the previous commit ran, in one transaction (group commit), and
answers them all together: the same durability, a fraction of the commits.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from fedcop.db import SessionMaker
from fedcop.models import InboxItem

MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class InboxRow:
    ap_id: str
    type: str
    actor_ap_id: str
    activity: dict[str, Any]


class RecentIds:
    """Activity ids this process has already stored, so repeats are answered without work.

    The unique index on inbox_items.ap_id stays the real guard (other processes, restarts).
    """

    def __init__(self, size: int = 50_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, activity_id: object) -> bool:
        return activity_id in self._ids

    def add(self, activity_id: str) -> None:
        self._ids[activity_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)


class InboxWriter:
    def __init__(self, db: SessionMaker, dialect: str) -> None:
        self._db = db
        self._insert = pg_insert if dialect == "postgresql" else sqlite_insert
        self._waiting: list[tuple[InboxRow, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, row: InboxRow) -> None:
        """Return once `row` is committed (or was already there: ids are unique)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        await future

    async def _flush_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                await self._commit([row for row, _ in batch])
            except Exception as exc:  # every waiting request learns of the failure
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def _commit(self, rows: list[InboxRow]) -> None:
        values = [
            {"ap_id": r.ap_id, "type": r.type, "actor_ap_id": r.actor_ap_id, "activity": r.activity}
            for r in {row.ap_id: row for row in rows}.values()
        ]
        statement = (
            self._insert(InboxItem).values(values).on_conflict_do_nothing(index_elements=["ap_id"])
        )
        async with self._db.begin() as session:
            await session.execute(statement)
