"""Information governance: no story without the no-PII confirmation; consent bounds sharing;
withdrawing it deletes the story everywhere it went."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from fedcop.errors import PermissionDeniedError, ValidationError
from fedcop.models import Consent
from fedcop.services import stories
from fedcop.services.actors import create_person
from fedcop.services.stories import ConsentRecord
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer
from tests.support.stories import AS2, GROUP, community, follow_group, publish

CONSENT = ConsentRecord(given_by="Mrs B (patient)", scope="public", given_at=datetime.now(UTC))


async def test_publishing_needs_the_no_pii_confirmation(home: AppState) -> None:
    await community(home)
    with pytest.raises(ValidationError, match="patient-identifiable"):
        await publish(home, pii_confirmed=False)


async def test_consent_scope_bounds_visibility(home: AppState) -> None:
    await community(home, visibility="approval")
    narrow = ConsentRecord(given_by="Mr C", scope="group", given_at=datetime.now(UTC))
    with pytest.raises(ValidationError, match="consent was given for group sharing"):
        await publish(home, consent=narrow, visibility="public")
    story = await publish(home, consent=narrow, visibility="members")
    async with home.db() as session:
        consent = (await session.scalars(select(Consent).where(Consent.story_id == story.id))).one()
    assert (consent.given_by, consent.scope) == ("Mr C", "group")


async def test_withdrawal_deletes_everywhere_and_leaves_a_tombstone(
    home: AppState, net: InProcessNetwork, peer: FakePeer
) -> None:
    await community(home)
    await follow_group(net, home, peer)
    story = await publish(home, consent=CONSENT)

    await stories.withdraw_consent(home.db, home.urls, story.ap_id, "convenor")
    await build_workers(home).run_until_idle()

    [delete] = [a for a in peer.inbox if a["type"] == "Delete"]
    assert delete["object"]["id"] == story.ap_id
    assert delete["object"]["type"] == "Tombstone"
    async with httpx.AsyncClient(transport=net) as client:
        response = await client.get(story.ap_id, headers=AS2)
    assert response.status_code == 410
    assert response.json()["type"] == "Tombstone"
    async with home.db() as session:
        consent = (await session.scalars(select(Consent))).one()
    assert consent.withdrawn_at is not None
    assert story.content not in (await _page(net, story.ap_id))
    # Nor is it still readable in the author's or the group's outbox (its Create kept it).
    async with httpx.AsyncClient(transport=net) as client:
        for outbox in ("https://home.test/users/convenor/outbox", f"{GROUP}/outbox"):
            first = (await client.get(outbox, headers=AS2)).json()["first"]
            page = (await client.get(first, headers=AS2)).text
            assert story.ap_id not in page
            assert "falls huddles" not in page


async def test_only_the_author_or_a_moderator_may_delete(home: AppState) -> None:
    await community(home)
    story = await publish(home)
    await create_person(home.db, home.urls, "someone")
    with pytest.raises(PermissionDeniedError, match="not a moderator"):
        await stories.delete(home.db, home.urls, story.ap_id, "someone")


async def _page(net: InProcessNetwork, url: str) -> str:
    async with httpx.AsyncClient(transport=net) as client:
        return (await client.get(url, headers={"accept": "text/html"})).text
