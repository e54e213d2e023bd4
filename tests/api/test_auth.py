"""Bearer tokens: made once, stored hashed, refused when missing, unknown or revoked."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from fedcop.cli import main
from fedcop.errors import NotFoundError
from fedcop.models import ApiToken
from fedcop.services import tokens
from fedcop.web.state import AppState
from tests.support.actors import make_group, make_person
from tests.support.settings import cli_env

ME = "/api/v1/groups"


def _assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]


async def test_no_token_is_refused(client: httpx.AsyncClient) -> None:
    _assert_unauthorized(await client.get(ME))


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer ", "Basic YWxpY2U6cHc=", "nonsense"])
async def test_bad_token_is_refused(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get(ME, headers={"authorization": header})
    _assert_unauthorized(response)


async def test_unknown_token_names_the_error(client: httpx.AsyncClient) -> None:
    response = await client.get(ME, headers={"authorization": "Bearer fedcop_unknown"})
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_revoked_token_is_refused(client: httpx.AsyncClient, state: AppState) -> None:
    await make_person(state, "alice")
    made = await tokens.create_token(state.db, "alice", "laptop")
    headers = {"authorization": f"Bearer {made.token}"}
    assert (await client.get(ME, headers=headers)).status_code == 200
    await tokens.revoke_token(state.db, made.id)
    _assert_unauthorized(await client.get(ME, headers=headers))


async def test_only_the_hash_is_stored(state: AppState) -> None:
    await make_person(state, "alice")
    made = await tokens.create_token(state.db, "alice")
    async with state.db() as session:
        row = (await session.scalars(select(ApiToken))).one()
    assert made.token.startswith("fedcop_")
    assert row.token_hash == tokens.hash_token(made.token) != made.token
    assert made.token not in repr(row.__dict__)


async def test_last_used_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, state: AppState
) -> None:
    await make_person(state, "alice")
    made = await tokens.create_token(state.db, "alice")
    headers = {"authorization": f"Bearer {made.token}"}
    await client.get(ME, headers=headers)
    [first] = await tokens.list_tokens(state.db, "alice")
    assert first.last_used_at is not None
    await client.get(ME, headers=headers)
    [second] = await tokens.list_tokens(state.db, "alice")
    assert second.last_used_at == first.last_used_at
    # Two minutes later (moved back in the database), the next use is recorded again.
    async with state.db.begin() as session:
        earlier = first.last_used_at - timedelta(minutes=2)
        await session.execute(update(ApiToken).values(last_used_at=earlier))
    await client.get(ME, headers=headers)
    [third] = await tokens.list_tokens(state.db, "alice")
    assert third.last_used_at is not None
    assert third.last_used_at > earlier


async def test_tokens_are_for_people_only(state: AppState) -> None:
    await make_group(state, "frailty")
    with pytest.raises(NotFoundError):
        await tokens.create_token(state.db, "frailty")


def _run(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=cli_env(database_url))


def test_cli_creates_lists_and_revokes_tokens(database_url: str) -> None:
    assert _run(database_url, "user", "create", "alice").exit_code == 0
    created = _run(database_url, "token", "create", "alice", "--name", "phone")
    assert created.exit_code == 0, created.output
    assert created.stdout.strip().startswith("fedcop_")  # the token alone on stdout
    assert "not shown again" in created.stderr

    listed = _run(database_url, "token", "list", "alice")
    [line] = listed.stdout.splitlines()
    token_id, name, _created, _used, revoked = line.split("\t")
    assert (name, revoked) == ("phone", "-")

    assert _run(database_url, "token", "revoke", token_id).exit_code == 0
    [line] = _run(database_url, "token", "list", "alice").stdout.splitlines()
    assert line.split("\t")[4] != "-"

    missing = _run(database_url, "token", "revoke", "999")
    assert missing.exit_code == 1
    assert "no API token 999" in missing.output
