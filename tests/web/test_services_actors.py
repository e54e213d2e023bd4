"""Creating people and groups: names, ownership, and keys that survive restarts."""

from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fedcop.app import create_app
from fedcop.db import create_engine
from fedcop.errors import ConflictError, NotFoundError, ValidationError
from fedcop.models import Actor, LocalKey
from fedcop.security.keys import public_pem_of
from fedcop.services.actors import normalise_username
from fedcop.settings import Settings
from fedcop.web.state import AppState
from tests.conftest import TEST_DOMAIN
from tests.support.actors import make_group, make_person


@pytest.mark.parametrize("name", ["alice", "Alice_B", "a.b", "a-b", "a..b", "x_1.y-2", "_"])
def test_names_mastodon_accepts(name: str) -> None:
    assert normalise_username(name) == name.lower()


@pytest.mark.parametrize(
    "name", ["", ".alice", "alice.", "-bob", "bob-", "al ice", "al@ice", "élodie", "a" * 31, "a/b"]
)
def test_names_mastodon_rejects(name: str) -> None:
    with pytest.raises(ValidationError):
        normalise_username(name)


async def test_handles_are_unique_case_insensitively_across_people_and_groups(
    state: AppState,
) -> None:
    await make_person(state, "alice")
    with pytest.raises(ConflictError):
        await make_person(state, "ALICE")
    with pytest.raises(ConflictError):
        await make_group(state, "Alice")


async def test_database_refuses_duplicate_even_past_the_service_check(state: AppState) -> None:
    """The unique index is the real guard: two racing inserts cannot both win."""
    await make_person(state, "alice")
    duplicate = Actor(
        ap_id="https://fedcop.test/users/ALICE-copy",
        type="Person",
        local=True,
        username="ALICE",
        name="",
        summary="",
        profile_fields=[],
        manually_approves_followers=False,
        discoverable=True,
        indexable=True,
        is_admin=False,
    )
    with pytest.raises(IntegrityError):
        async with state.db.begin() as session:
            session.add(duplicate)


async def test_group_owner_must_be_a_local_person(state: AppState) -> None:
    await make_group(state, "other")
    with pytest.raises(NotFoundError):
        await make_group(state, "frailty", owner="nobody")
    with pytest.raises(NotFoundError):
        await make_group(state, "frailty", owner="other")
    async with state.db() as session:  # nothing half-written
        assert await session.scalar(select(Actor).where(Actor.username == "frailty")) is None


async def test_invalid_visibility_is_refused(state: AppState) -> None:
    with pytest.raises(ValidationError, match="visibility"):
        await make_group(state, "frailty", visibility="secret")


async def test_every_local_actor_has_a_matching_key_pair(state: AppState) -> None:
    await make_person(state, "alice")
    await make_group(state, "frailty")
    async with state.db() as session:
        rows = (await session.execute(select(Actor, LocalKey).join(LocalKey))).all()
    assert {actor.username for actor, _ in rows} == {"alice", "frailty", TEST_DOMAIN}
    for actor, key in rows:
        private = load_pem_private_key(key.private_key_pem.encode(), password=None)
        assert public_pem_of(private) == actor.public_key_pem  # type: ignore[arg-type]


async def test_public_keys_are_the_same_after_a_restart(settings: Settings) -> None:
    accept = {"accept": "application/activity+json"}

    async def fetch_keys() -> tuple[str, str]:
        engine = create_engine(settings.database_url)
        app = create_app(settings, engine=engine)
        async with app.router.lifespan_context(app):
            state: AppState = app.state.fedcop
            if not await _exists(state, "frailty"):
                await make_group(state, "frailty")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=state.urls.base_url) as c:
                group = (await c.get("/groups/frailty", headers=accept)).json()
                instance = (await c.get("/actor", headers=accept)).json()
        await engine.dispose()
        return group["publicKey"]["publicKeyPem"], instance["publicKey"]["publicKeyPem"]

    first = await fetch_keys()
    second = await fetch_keys()
    assert first == second


async def _exists(state: AppState, username: str) -> bool:
    async with state.db() as session:
        return await session.scalar(select(Actor.id).where(Actor.username == username)) is not None
