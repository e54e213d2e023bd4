"""Real signed requests captured from GoToSocial 0.20 (../shared/fixtures/gotosocial)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fedcop.security.httpsig import (
    SignatureError,
    key_id_to_actor_id,
    parse_signature,
    verify,
)
from fedcop.security.httpsig_common import parse_http_date

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "gotosocial"
INBOX_FIXTURES = sorted(FIXTURES.glob("inbox-*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _key_pem() -> str:
    document = _load(FIXTURES / "actor-key-document.json")
    pem: str = document["publicKey"]["publicKeyPem"]
    return pem


def test_all_seven_fixtures_are_present() -> None:
    assert len(INBOX_FIXTURES) == 7, f"expected 7 inbox-*.json in {FIXTURES}"


@pytest.mark.parametrize("path", INBOX_FIXTURES, ids=lambda p: p.stem)
def test_gotosocial_request_verifies(path: Path) -> None:
    request = _load(path)
    body = request["body_raw"].encode("utf-8")
    now = parse_http_date(request["headers"]["date"])

    parsed = parse_signature(request["method"], request["path"], request["headers"], body)

    assert parsed.dialect == "cavage"
    assert parsed.algorithm == "hs2019"
    assert parsed.key_id == "http://gts.test/users/alice/main-key"
    assert key_id_to_actor_id(parsed.key_id) == "http://gts.test/users/alice"
    verify(parsed, _key_pem(), now)


@pytest.mark.parametrize("path", INBOX_FIXTURES[:1], ids=lambda p: p.stem)
def test_gotosocial_request_is_stale_after_65_minutes(path: Path) -> None:
    request = _load(path)
    body = request["body_raw"].encode("utf-8")
    date = parse_http_date(request["headers"]["date"])
    parsed = parse_signature(request["method"], request["path"], request["headers"], body)

    verify(parsed, _key_pem(), date + timedelta(minutes=65))
    with pytest.raises(SignatureError, match="too old"):
        verify(parsed, _key_pem(), date + timedelta(minutes=65, seconds=1))


@pytest.mark.parametrize("path", INBOX_FIXTURES[:1], ids=lambda p: p.stem)
def test_gotosocial_request_with_altered_body_is_refused(path: Path) -> None:
    request = _load(path)
    body = request["body_raw"].replace('"type":"', '"type":"Un').encode("utf-8")
    assert body != request["body_raw"].encode("utf-8")

    with pytest.raises(SignatureError, match="Digest does not match the body"):
        parse_signature(request["method"], request["path"], request["headers"], body)
