"""The pure parser against every pasture object: parsed, or InvalidDocumentError, nothing else.

Also keeps the HTML safety check used on stored content honest (it must catch what it claims).
"""

from __future__ import annotations

from typing import Any

import pytest

from fedcop.ap.remote import InvalidDocumentError
from fedcop.ap.remote_content import RemoteContent, parse_content
from tests.interop.pasture import (
    EXTRA_CASES,
    PASTURE_ACTOR,
    PastureCase,
    html_problems,
    pasture_cases,
    pasture_object,
)

ACTOR = "https://peer.test/users/remote"
CASES = [*pasture_cases(), *EXTRA_CASES]


def _parse_or_refuse(document: Any) -> RemoteContent | None:
    try:
        return parse_content(document)
    except InvalidDocumentError:
        return None


@pytest.mark.parametrize("case", [pytest.param(c, id=c.key) for c in CASES])
def test_parses_or_refuses_as_sent_and_as_bare_example(case: PastureCase) -> None:
    as_sent = pasture_object(case, ACTOR, group="https://home.test/groups/pasture")
    # The pasture's own, unmoved object (actor on http://pasture-one-actor) and the bare example.
    as_pasture = pasture_object(case, PASTURE_ACTOR.rsplit("/", 1)[0] + "/users/actor")
    for document in (as_sent, as_pasture, case.example):
        parsed = _parse_or_refuse(document)
        if parsed is None:
            continue
        for name in ("content", "summary"):
            assert html_problems(getattr(parsed, name)) == [], (case.key, name)
        assert parsed.ap_id == document["id"]
        assert isinstance(parsed.title, str)
        assert all(isinstance(tag, str) for tag in parsed.tags)


_REPLY_SHAPES = [c for c in pasture_cases() if c.source == "in_reply_to"]


# A string, an object, a Link (its href) or a list of those: each is a reply (a reply taken
# for a top-level post would be announced by the group, which replies never are).
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=c.key)
        for c in _REPLY_SHAPES
        if c.key != "in_reply_to[5]"  # a Collection of an actor: what that replies to is moot
    ],
)
def test_a_reply_is_a_reply_whatever_the_shape_of_in_reply_to(case: PastureCase) -> None:
    parsed = parse_content(pasture_object(case, ACTOR))
    assert parsed.in_reply_to is not None
    assert parsed.in_reply_to.startswith("http")


@pytest.mark.parametrize(
    ("fragment", "found"),
    [
        ("<p>fine <a href='https://x.example/'>x</a></p>", []),
        ("<script>alert(1)</script>", ["<script>", "raw '<script'"]),
        ("<SCRIPT>x</SCRIPT>", ["<script>", "raw '<script'"]),
        ('<a href=" jav&#x09;ascript:alert(1)">x</a>', ["<a href=' jav\\tascript:alert(1)'>"]),
        ('<img src="data:image/png;base64,AA">', ["<img src='data:image/png;base64,AA'>"]),
        ("<p onmouseover='x()'>p</p>", ["<p onmouseover=…>"]),
        ('<p style="color:red">p</p>', ["<p style=…>"]),
        ("<iframe src=x></iframe>", ["<iframe>", "raw '<iframe'"]),
        ("<style>*{}</style>", ["<style>", "raw '<style'"]),
        ("text javascript: text", ["raw 'javascript:'"]),
        ("&lt;script&gt; as text", []),
    ],
)
def test_the_safety_check_sees_what_it_claims(fragment: str, found: list[str]) -> None:
    assert html_problems(fragment) == found
