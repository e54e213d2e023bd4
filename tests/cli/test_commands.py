"""The command line: what it makes, what it prints, and how it fails."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from fedcop import db as database
from fedcop.cli import main
from fedcop.models import Actor, OutboxActivity
from tests.support.settings import TEST_DOMAIN, cli_env


def _run(database_url: str, *args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env=cli_env(database_url, **env))


def test_user_create_prints_handle_and_url(database_url: str) -> None:
    result = _run(database_url, "user", "create", "Alice", "--name", "Alice Example", "--admin")
    assert result.exit_code == 0, result.output
    assert f"@alice@{TEST_DOMAIN}" in result.output
    assert f"https://{TEST_DOMAIN}/users/alice" in result.output


def test_group_create_with_owner_and_visibility(database_url: str) -> None:
    assert _run(database_url, "user", "create", "carol").exit_code == 0
    result = _run(
        database_url,
        "group", "create", "frailty", "--name", "Frailty CoP",
        "--owner", "carol", "--visibility", "approval",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"created approval group @frailty@{TEST_DOMAIN}" in result.output
    assert f"https://{TEST_DOMAIN}/groups/frailty" in result.output


def test_duplicate_name_fails_with_one_line(database_url: str) -> None:
    assert _run(database_url, "user", "create", "alice").exit_code == 0
    result = _run(database_url, "group", "create", "ALICE", "--name", "Clash")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: the name 'alice' is already taken"


@pytest.mark.parametrize("name", ["-bad", "has space", "émile", "a" * 31])
def test_invalid_username_fails_with_reason(database_url: str, name: str) -> None:
    result = _run(database_url, "user", "create", "--", name)
    assert result.exit_code == 1
    assert result.output.startswith("Error: username")
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_owner_fails(database_url: str) -> None:
    result = _run(database_url, "group", "create", "g", "--name", "G", "--owner", "ghost")
    assert result.exit_code == 1
    assert "no local person named 'ghost'" in result.output


def test_bad_visibility_is_rejected_by_the_parser(database_url: str) -> None:
    result = _run(database_url, "group", "create", "g", "--name", "G", "--visibility", "secret")
    assert result.exit_code == 2
    assert "'secret' is not one of" in result.output


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_database_unreachable_is_one_line(backend: str) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    result = _run("postgresql://postgres@127.0.0.1:1/none", "user", "create", "alice")
    assert result.exit_code == 1
    assert result.output.startswith("Error: database unreachable:")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_bad_settings_are_all_reported(backend: str) -> None:
    result = _run(
        "mysql://x",
        "user",
        "create",
        "alice",
        FEDCOP_DOMAIN="https://bad/",
        FEDCOP_SCHEME="gopher",
        FEDCOP_SECRET_KEY="short",
    )
    assert result.exit_code == 2
    for name in ("FEDCOP_DOMAIN", "FEDCOP_SCHEME", "FEDCOP_SECRET_KEY", "FEDCOP_DATABASE_URL"):
        assert name in result.output


def test_migrate_up_and_down(empty_database_url: str) -> None:
    head = database.head_revision()
    result = _run(empty_database_url, "migrate")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"database at revision {head}"
    result = _run(empty_database_url, "migrate", "--down-to", "base")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "database at revision base (empty)"


def test_postgres_refuses_to_start_unmigrated(empty_database_url: str) -> None:
    result = _run(empty_database_url, "user", "create", "alice")
    if empty_database_url.startswith("sqlite"):
        assert result.exit_code == 0  # SQLite migrates by itself
    else:
        assert result.exit_code == 1
        assert "run `fedcop migrate` first" in result.output


def test_keys_rotate_replaces_the_key_and_queues_an_update(database_url: str) -> None:
    assert _run(database_url, "group", "create", "frailty", "--name", "F").exit_code == 0

    async def state() -> tuple[str, list[dict[str, object]]]:
        engine = database.create_engine(database_url)
        try:
            async with database.session_maker(engine)() as session:
                actor = await session.scalar(select(Actor).where(Actor.username == "frailty"))
                assert actor is not None
                assert actor.public_key_pem is not None
                updates = (await session.scalars(select(OutboxActivity.activity))).all()
                return actor.public_key_pem, list(updates)
        finally:
            await engine.dispose()

    before, queued = asyncio.run(state())
    assert queued == []
    result = _run(database_url, "keys", "rotate", "frailty")
    assert result.exit_code == 0, result.output
    after, queued = asyncio.run(state())
    assert after != before
    [update] = queued
    assert update["type"] == "Update"
    assert update["actor"] == f"https://{TEST_DOMAIN}/groups/frailty"
    assert update["object"]["publicKey"]["publicKeyPem"] == after  # type: ignore[index]
    assert update["id"] in result.output


def test_keys_rotate_unknown_actor(database_url: str) -> None:
    result = _run(database_url, "keys", "rotate", "ghost")
    assert result.exit_code == 1
    assert "no local actor named 'ghost'" in result.output


def test_domain_block_list_unblock(database_url: str) -> None:
    result = _run(database_url, "domain", "block", "Spam.Example", "--reason", "spam")
    assert result.exit_code == 0, result.output
    assert _run(database_url, "domain", "list").output == "spam.example\tsuspend\tspam\n"
    assert _run(database_url, "domain", "unblock", "spam.example").exit_code == 0
    assert _run(database_url, "domain", "list").output == ""
    result = _run(database_url, "domain", "unblock", "spam.example")
    assert result.exit_code == 1
    assert "is not blocked" in result.output
    assert _run(database_url, "domain", "block", "not a domain").exit_code == 1


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["follow", "alice", "bob"], "Error: 'bob' is not a handle of the form @name@host"),
        (["unfollow", "alice", "bob"], "Error: 'bob' is not a handle of the form @name@host"),
        (["resolve", "bob"], "Error: 'bob' is not a handle of the form @name@host"),
        # Refused by the address guard before any request is sent.
        (["follow", "alice", "@bob@127.0.0.1:9"], "Error: WebFinger for @bob@127.0.0.1:9 failed"),
        (
            ["follow", "alice", "http://127.0.0.1:9/u/bob"],
            "Error: fetching http://127.0.0.1:9/u/bob",
        ),
    ],
)
def test_an_actor_that_cannot_be_had_fails_with_one_line(
    database_url: str, args: list[str], reason: str
) -> None:
    assert _run(database_url, "user", "create", "alice").exit_code == 0
    result = _run(database_url, *args)
    assert result.exit_code == 1
    assert result.output.startswith(reason), result.output
    assert len(result.output.strip().splitlines()) == 1
