"""Content negotiation with the Accept headers real clients send (INTEROP §2)."""

from __future__ import annotations

import pytest

from fedcop.web.negotiation import accepts_activity_json


@pytest.mark.parametrize(
    "accept",
    [
        "application/activity+json, "
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams", text/html;q=0.1',
        "application/activity+json",
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        "application/json",
        "text/html, application/activity+json;q=0.01",
        "APPLICATION/ACTIVITY+JSON",
    ],
)
def test_servers_get_activity_json(accept: str) -> None:
    assert accepts_activity_json(accept)


@pytest.mark.parametrize(
    "accept",
    [
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "*/*",
        "",
        "application/activity+json;q=0",
    ],
)
def test_browsers_get_html(accept: str) -> None:
    assert not accepts_activity_json(accept)
