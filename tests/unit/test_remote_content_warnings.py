"""What puts a remote post behind a content warning here."""

from __future__ import annotations

from typing import Any

import pytest

from fedcop.ap.remote_content import SENSITIVE_WARNING, parse_content


def _post(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": "https://lemmy.test/post/1", "type": kind,
        "attributedTo": "https://lemmy.test/u/alice", "name": "Night shift handovers",
        "content": "<p>What we changed</p>", "to": ["https://www.w3.org/ns/activitystreams#Public"],
        **fields,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "fields", "warning"),
    [
        ("Note", {"summary": "Death of a patient"}, "Death of a patient"),
        ("Note", {"summary": "Death of a patient", "sensitive": True}, "Death of a patient"),
        ("Note", {"sensitive": True}, SENSITIVE_WARNING),  # Mastodon: sensitive media alone
        ("Note", {}, None),
        ("Note", {"sensitive": "yes"}, None),  # only a real true counts
        ("Page", {"sensitive": True}, SENSITIVE_WARNING),  # a Lemmy post marked NSFW
        ("Article", {"summary": "A teaser, not a warning"}, None),
        ("Article", {"summary": "A teaser", "sensitive": True}, SENSITIVE_WARNING),
        ("Page", {"sensitive": False}, None),
    ],
)
def test_warning(kind: str, fields: dict[str, Any], warning: str | None) -> None:
    assert parse_content(_post(kind, **fields)).content_warning == warning


def test_an_articles_teaser_stays_its_summary_when_sensitive() -> None:
    parsed = parse_content(_post("Article", summary="<p>A teaser</p>", sensitive=True))
    assert parsed.summary == "<p>A teaser</p>"
