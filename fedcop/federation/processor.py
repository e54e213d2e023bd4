"""The inbox processor: claims stored activities in arrival order and dispatches them."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from fedcop.ap.checks import InvalidActivityError, check_activity
from fedcop.ap.remote import host_of
from fedcop.db import SessionMaker
from fedcop.federation.dispatch import DispatchTable, HandlerContext, IgnoredError, RejectedError
from fedcop.federation.doorbell import Doorbell, wait_set, waking
from fedcop.federation.health import record_success
from fedcop.federation.remote_actors import ResolveError
from fedcop.federation.retry import backoff
from fedcop.models import InboxItem, WorkState, utcnow

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)


class InboxProcessor:
    def __init__(
        self,
        context: HandlerContext,
        table: DispatchTable,
        *,
        batch: int = 100,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        doorbell: Doorbell | None = None,
    ) -> None:
        self._context = context
        self._doorbell = doorbell
        self._db: SessionMaker = context.db
        self._table = table
        self._batch = batch
        self._clock = clock
        self._rng = rng or random.Random()

    async def run_once(self) -> int:
        """Process what is due now, oldest first; return how many items were handled."""
        items = await self._claim()
        for item in items:
            await self._process(item)
        return len(items)

    async def run(self, stop: asyncio.Event, *, idle_seconds: float = 0.5) -> None:
        wake = asyncio.Event()  # new items committed (the doorbell), or time to stop
        with waking(wake, self._doorbell, stop):
            while not stop.is_set():
                wake.clear()
                try:
                    handled = await self.run_once()
                except Exception:  # e.g. the database restarting: wait and try again
                    log.exception("inbox processing failed; retrying")
                    # The full interval, whatever rings meanwhile: busy inboxes ring many times
                    # a second, and each would be another failed claim and logged trace.
                    await wait_set(stop, idle_seconds)
                    continue
                if not handled:
                    await wait_set(wake, idle_seconds)

    async def _claim(self) -> list[InboxItem]:
        now = self._clock()
        query = (
            select(InboxItem)
            .where(
                InboxItem.state == WorkState.PENDING,
                InboxItem.next_attempt_at <= now,
                or_(InboxItem.locked_until.is_(None), InboxItem.locked_until < now),
            )
            .order_by(InboxItem.id)
            .limit(self._batch)
            .with_for_update(skip_locked=True)
        )
        async with self._db.begin() as session:
            items = list((await session.scalars(query)).all())
            if items:
                await session.execute(
                    update(InboxItem)
                    .where(InboxItem.id.in_([item.id for item in items]))
                    .values(locked_until=now + LEASE)
                )
        return items

    async def _process(self, item: InboxItem) -> None:
        values: dict[str, object] = {"attempts": item.attempts + 1, "locked_until": None}
        try:
            await self._dispatch(item)
            values.update(state=WorkState.DONE, processed_at=self._clock(), last_error=None)
        except IgnoredError as exc:
            values.update(state=WorkState.IGNORED, processed_at=self._clock(), last_error=str(exc))
        except (RejectedError, InvalidActivityError) as exc:
            values.update(state=WorkState.FAILED, last_error=str(exc))
        except ResolveError as exc:
            values.update(self._retry_or_fail(item, exc.reason) if exc.temporary else
                          {"state": WorkState.FAILED, "last_error": exc.reason})  # fmt: skip
        except Exception as exc:
            log.exception("inbox item %s (%s) failed", item.id, item.ap_id)
            values.update(self._retry_or_fail(item, f"{type(exc).__name__}: {exc}"))
        async with self._db.begin() as session:
            await session.execute(update(InboxItem).where(InboxItem.id == item.id).values(**values))
            if values.get("state") in (WorkState.DONE, WorkState.IGNORED):
                # Hearing from a server is a sign of life: clear any unavailable mark.
                await record_success(session, host_of(item.actor_ap_id), self._clock())

    async def _dispatch(self, item: InboxItem) -> None:
        activity = check_activity(item.activity)
        handler = self._table.handler_for(activity)
        if handler is None:
            raise IgnoredError(f"no handler for {activity.type}({activity.object_type or 'id'})")
        await handler(self._context, activity)

    def _retry_or_fail(self, item: InboxItem, reason: str) -> dict[str, object]:
        delay = backoff(item.attempts + 1, self._rng)
        if delay is None:
            return {"state": WorkState.FAILED, "last_error": f"gave up: {reason}"}
        return {"next_attempt_at": self._clock() + delay, "last_error": reason}
