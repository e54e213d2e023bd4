"""The inbox writer's group commit stores exactly what the ORM would store, on both databases.

On SQLite (a file) the writer binds rows with the DB-API directly, bypassing SQLAlchemy for
speed; these tests pin it to the ORM's column forms so the two can never drift apart.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from fedcop.db import create_engine, session_maker
from fedcop.federation.intake import WRITER_NAME, InboxRow, InboxWriter
from fedcop.federation.intake_sqlite import CHECKPOINT_EVERY_ROWS, SqliteWriter
from fedcop.models import InboxItem, WorkState

ACTIVITY = {
    "@context": "https://www.w3.org/ns/activitystreams",
    "id": "https://peer.test/activities/1",
    "type": "Create",
    "actor": "https://peer.test/users/ann",
    "object": {"type": "Note", "content": "<p>caf\u00e9 \u2014 \U0001f331</p>", "n": 1.5},
}


def _row(number: int) -> InboxRow:
    ap_id = f"https://peer.test/activities/{number:04d}"  # text order is number order
    return InboxRow(ap_id, "Create", "https://peer.test/users/ann", {**ACTIVITY, "id": ap_id})


async def test_rows_written_in_a_batch_read_back_like_orm_rows(database_url: str) -> None:
    engine = create_engine(database_url)
    writer = InboxWriter(engine)
    db = session_maker(engine)
    try:
        before = datetime.now(UTC)
        await asyncio.gather(*(writer.write(_row(n)) for n in range(1, 41)))
        await writer.write(_row(7))  # a repeat: ids are unique, nothing more is stored
        async with db.begin() as session:  # the ORM's own row, for comparison
            ann = "https://peer.test/users/ann"
            session.add(
                InboxItem(ap_id="https://peer.test/orm", type="Create", actor_ap_id=ann,
                          activity=ACTIVITY)
            )  # fmt: skip
        async with db() as session:
            rows = (await session.scalars(select(InboxItem).order_by(InboxItem.id))).all()
            orm_row = rows[-1]
            written = rows[:-1]
            assert [r.ap_id for r in written] == [_row(n).ap_id for n in range(1, 41)]
            for item in written:
                assert item.activity == {**ACTIVITY, "id": item.ap_id}
                assert (item.type, item.actor_ap_id) == ("Create", "https://peer.test/users/ann")
                assert (item.state, item.attempts) == (WorkState.PENDING, 0)
                assert item.locked_until is None
                assert item.processed_at is None
                assert before <= item.received_at == item.next_attempt_at <= orm_row.received_at
            # Stored forms: the same SQL types and text layout as the ORM's row, so range
            # comparisons on the timestamps (the processor's "due" query) order them alike.
            forms = text(
                "SELECT ap_id, state, next_attempt_at, received_at FROM inbox_items ORDER BY id"
            )
            stored = (await session.execute(forms)).all()
            reference = stored[-1]
            for row in stored[:-1]:
                assert row.state == reference.state
                for column in ("next_attempt_at", "received_at"):
                    assert type(getattr(row, column)) is type(getattr(reference, column))
                    assert len(str(getattr(row, column))) == len(str(getattr(reference, column)))
            due = select(InboxItem.ap_id).where(InboxItem.next_attempt_at <= orm_row.received_at)
            assert len((await session.scalars(due)).all()) == 41
    finally:
        await writer.aclose()
        await engine.dispose()


async def test_a_failed_batch_fails_every_request_in_it_and_stores_nothing(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    writer = InboxWriter(engine)
    try:
        async with engine.begin() as connection:  # make every insert fail
            await connection.execute(text("DROP TABLE inbox_items"))
        results = await asyncio.gather(
            *(writer.write(_row(n)) for n in range(1, 5)), return_exceptions=True
        )
        assert all(isinstance(result, Exception) for result in results)
        assert writer.pending(_row(1).ap_id) is None  # nothing left waiting
    finally:
        await writer.aclose()
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_postgres_writer_reconnects_after_losing_its_connection(database_url: str) -> None:
    """A database restart kills the writer's connection; the next batch opens a new one and
    stores its rows instead of failing every request until the process restarts."""
    engine = create_engine(database_url)
    writer = InboxWriter(engine)
    try:
        await writer.write(_row(1))
        async with engine.begin() as connection:
            killed = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": WRITER_NAME},
            )
        assert killed == 1
        await writer.write(_row(2))
        async with engine.connect() as connection:
            stored = await connection.scalar(text("SELECT count(*) FROM inbox_items"))
        assert stored == 2
    finally:
        await writer.aclose()
        await engine.dispose()


async def test_a_batch_larger_than_one_statement_stores_every_row(database_url: str) -> None:
    """SQLite inserts a batch in multi-row statements of up to 128 rows; 300 at once span
    three, and rows given as received JSON text are stored as that text says."""
    engine = create_engine(database_url)
    writer = InboxWriter(engine)
    try:
        rows = [_row(n) for n in range(1, 301)]
        as_received = [
            InboxRow(r.ap_id, r.type, r.actor_ap_id, r.activity, json.dumps(r.activity, indent=1))
            for r in rows[::2]
        ]
        await asyncio.gather(*(writer.write(row) for row in [*as_received, *rows[1::2]]))
        async with engine.connect() as connection:
            stored = dict(
                (await connection.execute(text("SELECT ap_id, activity FROM inbox_items"))).all()
            )
        assert len(stored) == 300
        for row in rows:
            value = stored[row.ap_id]
            assert (json.loads(value) if isinstance(value, str) else value) == row.activity
    finally:
        await writer.aclose()
        await engine.dispose()


async def test_a_cancelled_request_does_not_fail_the_others_in_its_batch(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    writer = InboxWriter(engine)
    try:
        tasks = [asyncio.create_task(writer.write(_row(n))) for n in range(1, 11)]
        await asyncio.sleep(0)  # every request has handed its row over
        tasks[3].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[3], asyncio.CancelledError)
        assert [r for i, r in enumerate(results) if i != 3] == [None] * 9
        async with engine.connect() as connection:
            stored = await connection.scalar(text("SELECT count(*) FROM inbox_items"))
        assert stored == 10  # the cancelled request's row was committed all the same
        assert writer.pending(_row(4).ap_id) is None
    finally:
        await writer.aclose()
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlite_checkpoints_run_beside_the_commits(database_url: str) -> None:
    """The writer's own connection never checkpoints (a checkpoint inside a commit held up
    every request waiting on it); a second thread does, every CHECKPOINT_EVERY_ROWS rows."""
    engine = create_engine(database_url)
    writer = InboxWriter(engine)
    try:
        store = writer._store
        assert isinstance(store, SqliteWriter)
        for start in range(0, CHECKPOINT_EVERY_ROWS + 50, 50):
            await asyncio.gather(*(writer.write(_row(n)) for n in range(start, start + 50)))
        assert store._connection is not None  # idle now: safe to ask from this thread
        assert store._connection.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        await writer.aclose()  # waits for a checkpoint still running
        assert store._checkpointer.completed >= 1
        async with engine.connect() as connection:
            stored = await connection.scalar(text("SELECT count(*) FROM inbox_items"))
        assert stored == CHECKPOINT_EVERY_ROWS + 50
    finally:
        await engine.dispose()


async def test_a_statement_in_the_write_lane_commits_and_returns_its_rows(
    database_url: str,
) -> None:
    """`execute_write` (a remote actor's upsert, say): on a SQLite file on the writer's own
    connection between batches, elsewhere on the pool; committed, RETURNING rows returned, and
    a failing statement rolled back without harming the batches after it."""
    engine = create_engine(database_url)
    writer = InboxWriter(engine)
    db = session_maker(engine)
    now = datetime.now(UTC)
    insert_item = insert(InboxItem).returning(InboxItem.id, InboxItem.ap_id)
    values = {"type": "Create", "actor_ap_id": "https://peer.test/users/ann", "activity": ACTIVITY,
              "state": WorkState.PENDING, "attempts": 0, "next_attempt_at": now,
              "received_at": now}  # fmt: skip
    try:
        await writer.write(_row(1))  # the SQLite writer's connection exists, as in a server
        [(item_id, ap_id)] = await writer.execute_write(
            insert_item.values(ap_id="https://peer.test/lane", **values)
        )
        assert ap_id == "https://peer.test/lane"
        with pytest.raises(IntegrityError):  # the same id again: refused, rolled back
            await writer.execute_write(insert_item.values(ap_id="https://peer.test/lane", **values))
        await asyncio.gather(writer.write(_row(2)), writer.write(_row(3)))
        async with db() as session:  # another connection sees every commit
            stored = (await session.scalars(select(InboxItem.ap_id).order_by(InboxItem.id))).all()
            lane_item = await session.get(InboxItem, item_id)
        assert stored == [_row(1).ap_id, "https://peer.test/lane", _row(2).ap_id, _row(3).ap_id]
        assert lane_item is not None
        assert lane_item.activity == ACTIVITY
        assert lane_item.received_at == now
    finally:
        await writer.aclose()
        await engine.dispose()


async def test_two_processes_storing_the_same_activities_both_succeed(database_url: str) -> None:
    """Two web processes (two writers, two engines) take copies of the same activities in
    opposite orders, as a peer retrying over several connections makes them do. Every request
    on both sides is answered, and each activity is stored once.

    On PostgreSQL each batch is one transaction; an INSERT meeting another transaction's
    uncommitted row with the same id waits for it, so two batches holding the same ids in
    opposite orders waited on each other until the deadlock detector killed one of them
    (and every request in it got an error).
    """
    engines = [create_engine(database_url), create_engine(database_url)]
    writers = [InboxWriter(engine) for engine in engines]
    numbers = list(range(1, 201))
    try:
        for _ in range(5):
            results = await asyncio.gather(
                *(writers[0].write(_row(n)) for n in numbers),
                *(writers[1].write(_row(n)) for n in reversed(numbers)),
                return_exceptions=True,
            )
            errors = [result for result in results if isinstance(result, BaseException)]
            assert errors == []
            numbers = [n + 200 for n in numbers]
        async with engines[0].connect() as connection:
            stored = await connection.scalar(text("SELECT count(DISTINCT ap_id) FROM inbox_items"))
            rows = await connection.scalar(text("SELECT count(*) FROM inbox_items"))
        assert stored == rows == 1000
    finally:
        for writer in writers:
            await writer.aclose()
        for engine in engines:
            await engine.dispose()
