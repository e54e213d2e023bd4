"""Delivery outcomes are committed in batches: one transaction for many deliveries, the same
rows and the same health bookkeeping as one transaction each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from fedcop.federation import delivery
from fedcop.federation.delivery import DeliveryWorker
from fedcop.federation.delivery_postgres import PostgresDeliveryStore
from fedcop.federation.delivery_sql import EngineStore
from fedcop.models import Actor, Delivery, Instance, OutboxActivity, WorkState
from fedcop.services.actors import create_person
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.clock import FakeClock
from tests.support.network import InProcessNetwork


async def queue_deliveries(state: AppState, domains: list[str], per_domain: int) -> None:
    """One activity by a new local person, with `per_domain` inboxes on each domain, the
    domains' rows interleaved in id order (as a fan-out to their followers writes them)."""
    await create_person(state.db, state.urls, "alice")
    async with state.db.begin() as session:
        alice = await session.scalar(select(Actor).where(Actor.username == "alice"))
        assert alice is not None
        activity = OutboxActivity(ap_id="https://home.test/a/1", actor_id=alice.id, type="Note",
                                  activity={}, body="{}", public=True)  # fmt: skip
        session.add(activity)
        await session.flush()
        rows = [
            {"activity_id": activity.id, "inbox_url": f"https://{d}/users/u{i}/inbox", "domain": d}
            for i in range(per_domain)
            for d in domains
        ]
        await session.execute(insert(Delivery), rows)


def answering(status: int) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status))


@contextmanager
def transactions(engine: AsyncEngine) -> Iterator[list[list[tuple[str, int]]]]:
    """Each committed transaction's statements, as (SQL, number of parameter sets)."""
    committed: list[list[tuple[str, int]]] = []
    open_: dict[int, list[tuple[str, int]]] = {}  # by connection: the signer cache has its own

    def on_execute(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        open_.setdefault(id(conn), []).append((statement, _row_count(parameters, executemany)))

    def on_commit(conn) -> None:  # type: ignore[no-untyped-def]
        committed.append(open_.pop(id(conn), []))

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    event.listen(engine.sync_engine, "commit", on_commit)
    try:
        yield committed
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)
        event.remove(engine.sync_engine, "commit", on_commit)


def _row_count(parameters: object, executemany: bool) -> int:
    """Rows a statement writes: its parameter sets, or the length of its arrays (PostgreSQL
    records a batch as one UPDATE … FROM unnest of one array per column)."""
    if executemany:
        return len(parameters)  # type: ignore[arg-type]
    arrays = [p for p in parameters if isinstance(p, list)] if isinstance(parameters, tuple) else []
    return len(arrays[0]) if arrays else 1


def _recording(statements: list[tuple[str, int]]) -> int:
    """How many delivery outcomes a transaction records (attempts are set only then)."""
    return sum(
        n for sql, n in statements if sql.startswith("UPDATE deliveries") and "attempts" in sql
    )


def spy_on_batches(worker: DeliveryWorker, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many outcomes each call of the worker's store records (each call: one
    transaction; on SQLite files one hop to `SqliteDeliveryStore`'s connection, on
    PostgreSQL one transaction on the pooled connection's asyncpg connection)."""
    batches: list[int] = []
    record = worker._store.record

    async def spy(outcomes: list[dict[str, Any]], *args: Any) -> int:
        batches.append(len(outcomes))
        return await record(outcomes, *args)

    monkeypatch.setattr(worker._store, "record", spy)
    return batches


async def _rows(state: AppState) -> list[Delivery]:
    async with state.db() as session:
        return list((await session.scalars(select(Delivery).order_by(Delivery.id))).all())


# The worker picks the store for its database (a SQLite file: its own sqlite3 connection;
# asyncpg: the driver itself); the engine's store is the fallback (SQLite in memory or older
# than 3.38, other drivers), run here on both databases too.
@pytest.mark.parametrize("store", ["chosen", "engine"])
async def test_a_round_of_mixed_outcomes_is_recorded_in_one_transaction(
    home: AppState, net: InProcessNetwork, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    clock = FakeClock()
    domains = ["ok.test", "gone.test", "busy.test", "dead.test"]  # dead.test: no route, refused
    await queue_deliveries(home, domains, 2)
    net.routes.update({"ok.test": answering(202), "gone.test": answering(410),
                       "busy.test": answering(503)})  # fmt: skip
    worker = build_workers(home, clock=clock, concurrency=8, per_host=2).delivery
    if store == "engine":
        worker._store = worker._recorder._store = EngineStore(home.engine)
    # A window longer than any test: the batch is closed by the last send finishing, which is
    # what lets `run_once` return at once with everything recorded.
    monkeypatch.setattr(delivery, "BATCH_SECONDS", 60.0)
    batches = spy_on_batches(worker, monkeypatch)
    with transactions(home.engine) as committed:
        assert await worker.run_once() == 8  # returns once every outcome is committed
    assert batches == [8]  # all eight handed to the store at once: one transaction
    if store == "chosen" and home.engine.dialect.name == "postgresql":  # asyncpg itself
        assert isinstance(worker._store, PostgresDeliveryStore)
    if isinstance(worker._store, EngineStore):  # through the engine: one statement
        assert [_recording(t) for t in committed if _recording(t)] == [8]
        [recording] = [t for t in committed if _recording(t)]
        assert [n for sql, n in recording if sql.startswith("UPDATE deliveries")] == [8]

    states = Counter((r.domain, r.state, r.last_status, r.attempts) for r in await _rows(home))
    assert states == {
        ("ok.test", WorkState.DONE, 202, 1): 2,
        ("gone.test", WorkState.FAILED, 410, 1): 2,
        ("busy.test", WorkState.PENDING, 503, 1): 2,
        ("dead.test", WorkState.PENDING, None, 1): 2,
    }
    async with home.db() as session:
        failures = {i.domain: i.failures for i in (await session.scalars(select(Instance))).all()}
    assert failures == {"busy.test": 2, "dead.test": 2}  # each failure counted, once per host


async def test_an_answer_clears_the_failure_streak_in_the_same_batch_order(
    home: AppState, net: InProcessNetwork
) -> None:
    clock = FakeClock()
    await queue_deliveries(home, ["flaky.test"], 1)
    worker = build_workers(home, clock=clock).delivery
    await worker.run_once()  # refused: a failure
    async with home.db() as session:
        instance = await session.get(Instance, "flaky.test")
        assert instance is not None
        assert instance.failures == 1
    net.routes["flaky.test"] = answering(202)
    [row] = await _rows(home)
    clock.advance(row.next_attempt_at - clock.now)
    assert await worker.run_once() == 1
    async with home.db() as session:
        instance = await session.get(Instance, "flaky.test")
        assert instance is not None
        assert (instance.failures, instance.failing_since) == (0, None)
        assert instance.last_success_at is not None
    assert [r.state for r in await _rows(home)] == [WorkState.DONE]
