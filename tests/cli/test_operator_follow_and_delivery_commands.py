"""An operator at the command line: follow requests waiting for approval, and the delivery queue.

Each command runs as a real `fedcop` process against a migrated database (SQLite and
PostgreSQL); the state it reads is written straight into the database beforehand, and what it
changed is read back from the database afterwards. No server runs and nothing is sent: the
Accept and Reject it queues stay rows in the delivery queue.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from fedcop import db as database
from fedcop.models import (
    Actor,
    ActorType,
    Delivery,
    Follow,
    FollowState,
    GroupMember,
    Instance,
    MembershipState,
    OutboxActivity,
    WorkState,
    utcnow,
)
from tests.support.processes import fedcop_cli, run_fedcop
from tests.support.settings import TEST_DOMAIN, cli_env

T = TypeVar("T")

CLINIC = f"https://{TEST_DOMAIN}/groups/clinic"
DORA = f"https://{TEST_DOMAIN}/users/dora"
BOB = "https://remote.example/users/bob"
BOB_INBOX = f"{BOB}/inbox"
ERIN = "https://other.example/users/erin"
ERIN_INBOX = f"{ERIN}/inbox"
FRANK = "https://remote.example/users/frank"


def _env(database_url: str) -> dict[str, str]:
    return cli_env(database_url)


def _fedcop(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_fedcop(_env(database_url), cwd, *args)


def _in_database(database_url: str, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `action` in one committed transaction on a fresh engine of its own."""

    async def run() -> T:
        engine = database.create_engine(database_url)
        try:
            async with database.session_maker(engine).begin() as session:
                return await action(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == f"Error: {message}", result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- Follow requests -----------------------------------------------------------------------


def _remote_person(ap_id: str, username: str, domain: str) -> Actor:
    return Actor(
        ap_id=ap_id,
        type=ActorType.PERSON,
        local=False,
        username=username,
        domain=domain,
        inbox_url=f"{ap_id}/inbox",
        shared_inbox_url=f"https://{domain}/inbox",
        followers_url=f"{ap_id}/followers",
    )


@dataclass(frozen=True)
class Requests:
    bob_to_clinic: int  # a remote person asks to join an approval group
    erin_to_dora: int  # a remote person asks to follow a local person who approves followers


def _requests_waiting(database_url: str, cwd: Path) -> Requests:
    """Dora (who approves her followers by hand) and the approval group `clinic`, made with
    the CLI; then, in the database, what their inboxes would have recorded: a Follow from Bob
    to the group and one from Erin to Dora, both pending, beside follows that are not
    requests awaiting anyone here (accepted already; or Dora's own, waiting for Bob)."""
    fedcop_cli(_env(database_url), cwd, "user", "create", "dora", "--name", "Dora")
    fedcop_cli(_env(database_url), cwd, "group", "create", "clinic", "--name", "Clinic",
               "--owner", "dora", "--visibility", "approval")  # fmt: skip

    async def write(session: AsyncSession) -> Requests:
        dora = await session.scalar(select(Actor).where(Actor.ap_id == DORA))
        clinic = await session.scalar(select(Actor).where(Actor.ap_id == CLINIC))
        assert dora is not None
        assert clinic is not None
        dora.manually_approves_followers = True
        bob = _remote_person(BOB, "bob", "remote.example")
        erin = _remote_person(ERIN, "erin", "other.example")
        frank = _remote_person(FRANK, "frank", "remote.example")
        session.add_all([bob, erin, frank])
        await session.flush()
        to_clinic = Follow(ap_id="https://remote.example/follows/1", follower_id=bob.id,
                           followed_id=clinic.id, state=FollowState.PENDING)  # fmt: skip
        to_dora = Follow(ap_id="https://other.example/follows/7", follower_id=erin.id,
                         followed_id=dora.id, state=FollowState.PENDING)  # fmt: skip
        session.add_all([
            to_clinic,
            to_dora,
            Follow(ap_id="https://remote.example/follows/2", follower_id=frank.id,
                   followed_id=clinic.id, state=FollowState.ACCEPTED, accepted_at=utcnow()),
            Follow(ap_id=f"{DORA}#follows/bob", follower_id=dora.id, followed_id=bob.id,
                   state=FollowState.PENDING),
        ])  # fmt: skip
        await session.flush()
        return Requests(to_clinic.id, to_dora.id)

    return _in_database(database_url, write)


@dataclass(frozen=True)
class Queued:
    """One outbox activity and the deliveries written for it."""

    activity: dict[str, Any]
    actor: str
    deliveries: list[tuple[str, str, str, int]]  # (inbox_url, domain, state, attempts)


async def _queued(session: AsyncSession) -> list[Queued]:
    rows = (
        await session.execute(
            select(OutboxActivity, Actor.ap_id)
            .join(Actor, OutboxActivity.actor_id == Actor.id)
            .order_by(OutboxActivity.id)
        )
    ).all()
    queued = []
    for outbox, actor in rows:
        deliveries = (
            await session.scalars(select(Delivery).where(Delivery.activity_id == outbox.id))
        ).all()
        queued.append(
            Queued(
                activity=outbox.activity,
                actor=actor,
                deliveries=[(d.inbox_url, d.domain, d.state, d.attempts) for d in deliveries],
            )
        )
    return queued


def test_pending_requests_are_listed_then_approved_and_rejected(
    database_url: str, tmp_path: Path
) -> None:
    requests = _requests_waiting(database_url, tmp_path)

    # The operator sees both requests, in the order they came, with who asks to follow whom;
    # neither the accepted follow nor Dora's own outbound request is among them.
    listed = _fedcop(database_url, tmp_path, "follows", "pending")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == (
        f"{requests.bob_to_clinic}\t{BOB}\t-> {CLINIC}\n"
        f"{requests.erin_to_dora}\t{ERIN}\t-> {DORA}\n"
    )
    assert _in_database(database_url, _queued) == []  # nothing has been answered yet

    # Approving Bob's request: he follows the group, is a member, and an Accept of his very
    # Follow waits for delivery to his own inbox (not the shared one).
    approved = _fedcop(database_url, tmp_path, "follows", "approve", str(requests.bob_to_clinic))
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout == f"approved {BOB} -> {CLINIC}\n"

    async def after_approval(session: AsyncSession) -> tuple[Follow | None, GroupMember | None]:
        follow = await session.get(Follow, requests.bob_to_clinic)
        bob = await session.scalar(select(Actor.id).where(Actor.ap_id == BOB))
        clinic = await session.scalar(select(Actor.id).where(Actor.ap_id == CLINIC))
        return follow, await session.get(GroupMember, (clinic, bob))

    follow, membership = _in_database(database_url, after_approval)
    assert follow is not None
    assert follow.state == FollowState.ACCEPTED
    assert follow.accepted_at is not None
    assert membership is not None
    assert membership.state == MembershipState.ACTIVE
    [accept] = _in_database(database_url, _queued)
    assert accept.actor == CLINIC
    assert accept.activity["type"] == "Accept"
    assert accept.activity["actor"] == CLINIC
    assert accept.activity["object"]["id"] == "https://remote.example/follows/1"
    assert accept.activity["object"]["actor"] == BOB
    assert accept.deliveries == [(BOB_INBOX, "remote.example", WorkState.PENDING, 0)]

    # Rejecting Erin's request removes it, and a Reject of her Follow is queued to her inbox.
    rejected = _fedcop(database_url, tmp_path, "follows", "reject", str(requests.erin_to_dora))
    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout == f"rejected {ERIN} -> {DORA}\n"

    async def erins_follow(session: AsyncSession) -> Follow | None:
        return await session.get(Follow, requests.erin_to_dora)

    assert _in_database(database_url, erins_follow) is None
    [_, reject] = _in_database(database_url, _queued)
    assert reject.actor == DORA
    assert reject.activity["type"] == "Reject"
    assert reject.activity["actor"] == DORA
    assert reject.activity["object"]["id"] == "https://other.example/follows/7"
    assert reject.activity["object"]["actor"] == ERIN
    assert reject.deliveries == [(ERIN_INBOX, "other.example", WorkState.PENDING, 0)]

    # Nothing is left waiting.
    listed = _fedcop(database_url, tmp_path, "follows", "pending")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""


def test_an_unknown_or_decided_request_fails_in_one_line(database_url: str, tmp_path: Path) -> None:
    requests = _requests_waiting(database_url, tmp_path)
    approved = _fedcop(database_url, tmp_path, "follows", "approve", str(requests.bob_to_clinic))
    assert approved.returncode == 0, approved.stderr

    for verb, follow_id in [
        ("approve", 424242),
        ("reject", 424242),
        ("reject", requests.bob_to_clinic),  # decided already
        ("approve", requests.bob_to_clinic),
    ]:
        result = _fedcop(database_url, tmp_path, "follows", verb, str(follow_id))
        _assert_one_line_error(result, f"no pending follow request {follow_id}")

    # The refusals changed nothing: Bob still follows, Erin still waits, one Accept is queued.
    async def state(session: AsyncSession) -> tuple[set[tuple[str, str, str]], list[Queued]]:
        follower, followed = aliased(Actor), aliased(Actor)
        follows = await session.execute(
            select(follower.ap_id, followed.ap_id, Follow.state)
            .join(follower, Follow.follower_id == follower.id)
            .join(followed, Follow.followed_id == followed.id)
        )
        return {(a, b, state) for a, b, state in follows}, await _queued(session)

    follows, queued = _in_database(database_url, state)
    assert follows == {
        (BOB, CLINIC, FollowState.ACCEPTED),
        (ERIN, DORA, FollowState.PENDING),
        (FRANK, CLINIC, FollowState.ACCEPTED),
        (DORA, BOB, FollowState.PENDING),
        (DORA, CLINIC, FollowState.ACCEPTED),  # the owner follows her group from the start
    }
    assert [q.activity["type"] for q in queued] == ["Accept"]
    listed = _fedcop(database_url, tmp_path, "follows", "pending")
    assert listed.stdout == f"{requests.erin_to_dora}\t{ERIN}\t-> {DORA}\n"


# --- The delivery queue ----------------------------------------------------------------------

LONG_AGO = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    domain: str
    state: str
    attempts: int = 0
    next_attempt_at: datetime = LONG_AGO
    locked_until: datetime | None = None


def _a_troubled_queue(database_url: str) -> dict[str, int]:
    """alpha.example: three deliveries waiting and one done. beta.example, down for days and
    marked unavailable: one waiting, one retrying later, one being sent right now (leased by a
    worker), two given up on, one skipped because of the mark. Returns row ids by label."""
    now = utcnow()
    rows = {
        "alpha-1": Row("alpha.example", WorkState.PENDING),
        "alpha-2": Row("alpha.example", WorkState.PENDING),
        "alpha-3": Row("alpha.example", WorkState.PENDING),
        "alpha-done": Row("alpha.example", WorkState.DONE, attempts=1),
        "beta-new": Row("beta.example", WorkState.PENDING),
        "beta-retrying": Row(
            "beta.example", WorkState.PENDING, attempts=3, next_attempt_at=now + timedelta(hours=1)
        ),
        "beta-leased": Row(
            "beta.example", WorkState.PENDING, attempts=1, locked_until=now + timedelta(minutes=10)
        ),
        "beta-failed-1": Row("beta.example", WorkState.FAILED, attempts=12),
        "beta-failed-2": Row("beta.example", WorkState.FAILED, attempts=12),
        "beta-skipped": Row("beta.example", WorkState.SKIPPED),
    }

    async def write(session: AsyncSession) -> dict[str, int]:
        author = Actor(ap_id=CLINIC, type=ActorType.GROUP, local=True, username="clinic")
        session.add(author)
        await session.flush()
        activity = {"id": f"{CLINIC}#announce-1", "type": "Announce", "actor": CLINIC}
        outbox = OutboxActivity(ap_id=activity["id"], actor_id=author.id, type="Announce",
                                activity=activity, body="{}", fanned_out_at=now)  # fmt: skip
        session.add(outbox)
        await session.flush()
        made = {}
        for label, row in rows.items():
            made[label] = Delivery(
                activity_id=outbox.id,
                inbox_url=f"https://{row.domain}/users/{label}/inbox",
                domain=row.domain,
                state=row.state,
                attempts=row.attempts,
                next_attempt_at=row.next_attempt_at,
                locked_until=row.locked_until,
            )
        session.add_all(made.values())
        session.add_all([
            Instance(domain="alpha.example", failures=0, last_success_at=now),
            Instance(domain="beta.example", failures=9, failing_since=now - timedelta(days=3),
                     unavailable_since=now - timedelta(days=1)),
        ])  # fmt: skip
        await session.flush()
        return {label: delivery.id for label, delivery in made.items()}

    return _in_database(database_url, write)


async def _deliveries(session: AsyncSession) -> dict[int, Delivery]:
    return {d.id: d for d in (await session.scalars(select(Delivery))).all()}


async def _instances(session: AsyncSession) -> dict[str, Instance]:
    return {i.domain: i for i in (await session.scalars(select(Instance))).all()}


def test_status_shows_queue_depth_failures_by_domain_and_unavailable_servers(
    database_url: str, tmp_path: Path
) -> None:
    _a_troubled_queue(database_url)
    result = _fedcop(database_url, tmp_path, "deliveries", "status")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "deliveries by state:",
        "  done\t1",
        "  failed\t2",
        "  pending\t6",  # alpha's 3; beta's waiting, retrying and leased
        "  skipped\t1",
        "domains with failed or retrying deliveries:",
        "  beta.example\t4",  # 2 failed, 2 pending that were tried already
        "unavailable instances:",
        "  beta.example",
    ]


def test_retry_requeues_a_domain_now_and_clears_its_mark(database_url: str, tmp_path: Path) -> None:
    ids = _a_troubled_queue(database_url)
    before = _in_database(database_url, _deliveries)
    started = utcnow()
    result = _fedcop(database_url, tmp_path, "deliveries", "retry", "Beta.Example")
    finished = utcnow()
    assert result.returncode == 0, result.stderr
    # Every beta row not being sent right now: failed, skipped, and pending ones alike.
    assert result.stdout == "requeued 5 deliveries to beta.example\n"

    after = _in_database(database_url, _deliveries)
    for label in ("beta-new", "beta-retrying", "beta-failed-1", "beta-failed-2", "beta-skipped"):
        row = after[ids[label]]
        assert row.state == WorkState.PENDING, label
        assert row.attempts == 0, label
        assert row.locked_until is None, label
        assert started <= row.next_attempt_at <= finished, (label, row.next_attempt_at)
    # The row a worker holds is left to it, and the other domain is untouched.
    for label in ("beta-leased", "alpha-1", "alpha-2", "alpha-3", "alpha-done"):
        was, now = before[ids[label]], after[ids[label]]
        assert (now.state, now.attempts, now.next_attempt_at, now.locked_until) == (
            was.state, was.attempts, was.next_attempt_at, was.locked_until,
        ), label  # fmt: skip

    beta = _in_database(database_url, _instances)["beta.example"]
    assert (beta.unavailable_since, beta.failing_since, beta.failures) == (None, None, 0)

    status = _fedcop(database_url, tmp_path, "deliveries", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines() == [
        "deliveries by state:",
        "  done\t1",
        "  pending\t9",
        "domains with failed or retrying deliveries:",
        "  beta.example\t1",  # the leased row, tried once already
        "unavailable instances:",
        "  none",
    ]


def test_retry_of_a_domain_with_nothing_to_retry_says_so(database_url: str, tmp_path: Path) -> None:
    _a_troubled_queue(database_url)
    before = _in_database(database_url, _deliveries)
    result = _fedcop(database_url, tmp_path, "deliveries", "retry", "gamma.example")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "requeued 0 deliveries to gamma.example\n"
    after = _in_database(database_url, _deliveries)
    assert {i: (d.state, d.next_attempt_at) for i, d in after.items()} == {
        i: (d.state, d.next_attempt_at) for i, d in before.items()
    }
    assert _in_database(database_url, _instances)["beta.example"].unavailable_since is not None

    refused = _fedcop(database_url, tmp_path, "deliveries", "retry", "not a domain")
    _assert_one_line_error(refused, "'not a domain' is not a host name")
