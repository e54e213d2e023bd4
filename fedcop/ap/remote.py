"""Reading remote actor and key documents: dict in, checked dataclass out, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


class _TypeNames(frozenset[str]):
    """Type names where `x in names` is False for anything not a string, instead of raising
    TypeError: a hostile document's `type` may be a list or an object (unhashable), and every
    `document.get("type") in ACTOR_TYPES` must then simply say no."""

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and super().__contains__(item)


ACTOR_TYPES = _TypeNames({"Person", "Group", "Application", "Service", "Organization"})
_MAX_NAME = 255
_MAX_SUMMARY = 20_000
_MAX_URL = 2048


class InvalidDocumentError(ValueError):
    """The document is not an actor (or key) fedcop can use; the message says why."""


@dataclass(frozen=True, slots=True)
class RemoteActorData:
    ap_id: str
    type: str
    username: str
    domain: str
    inbox_url: str
    public_key_id: str
    public_key_pem: str
    name: str = ""
    summary: str = ""
    outbox_url: str | None = None
    shared_inbox_url: str | None = None
    followers_url: str | None = None
    following_url: str | None = None
    featured_url: str | None = None
    profile_url: str | None = None
    icon_url: str | None = None
    image_url: str | None = None
    manually_approves_followers: bool = False
    discoverable: bool = False
    indexable: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KeyDocument:
    """A standalone key (GoToSocial's `/main-key`, some others): it names its owner."""

    key_id: str
    owner: str
    public_key_pem: str


def host_of(url: str) -> str:
    """The URL's authority, lower-cased; InvalidDocumentError (a ValueError) if it has none
    that can be read, e.g. an unclosed IPv6 bracket, which urlsplit refuses with ValueError."""
    try:
        return urlsplit(url).netloc.lower()
    except ValueError as exc:
        raise InvalidDocumentError(f"{url[:200]!r} is not a valid URL") from exc


def parse_actor(document: dict[str, Any]) -> RemoteActorData:
    ap_id = _url(document, "id")
    kind = document.get("type")
    if kind not in ACTOR_TYPES:
        raise InvalidDocumentError(f"{ap_id} is a {kind!r}, not an actor")
    key = _public_key(document, ap_id)
    endpoints = document.get("endpoints")
    return RemoteActorData(
        ap_id=ap_id,
        type=str(kind),
        username=_text(document.get("preferredUsername"), _MAX_NAME) or _last_segment(ap_id),
        domain=host_of(ap_id),
        inbox_url=_url(document, "inbox"),
        public_key_id=key.key_id,
        public_key_pem=key.public_key_pem,
        name=_text(document.get("name"), _MAX_NAME),
        summary=_text(document.get("summary"), _MAX_SUMMARY),
        outbox_url=_optional_url(document.get("outbox")),
        shared_inbox_url=_optional_url(
            endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
        ),
        followers_url=_optional_url(document.get("followers")),
        following_url=_optional_url(document.get("following")),
        featured_url=_optional_url(document.get("featured")),
        profile_url=_optional_url(document.get("url")),
        icon_url=_image_url(document.get("icon")),
        image_url=_image_url(document.get("image")),
        manually_approves_followers=document.get("manuallyApprovesFollowers") is True,
        discoverable=document.get("discoverable") is True,
        indexable=document.get("indexable") is True,
        raw=document,
    )


def parse_key_document(document: dict[str, Any]) -> KeyDocument:
    """A key served on its own: `{id, owner, publicKeyPem}`, possibly nested as `publicKey`."""
    source = document.get("publicKey") if isinstance(document.get("publicKey"), dict) else document
    assert isinstance(source, dict)
    key_id, owner, pem = source.get("id"), source.get("owner"), source.get("publicKeyPem")
    if not (isinstance(key_id, str) and isinstance(owner, str) and isinstance(pem, str)):
        raise InvalidDocumentError("not a key document: id, owner and publicKeyPem are needed")
    return KeyDocument(key_id=key_id, owner=owner, public_key_pem=pem)


def _public_key(document: dict[str, Any], ap_id: str) -> KeyDocument:
    keys = document.get("publicKey")
    candidates = keys if isinstance(keys, list) else [keys]
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("owner") == ap_id:
            key = parse_key_document(candidate)
            if host_of(key.key_id) != host_of(ap_id):
                raise InvalidDocumentError(f"{ap_id} names a key on another host: {key.key_id}")
            return key
    raise InvalidDocumentError(f"{ap_id} has no publicKey owned by itself")


def _url(document: dict[str, Any], name: str) -> str:
    value = _optional_url(document.get(name))
    if value is None:
        raise InvalidDocumentError(f"the {name!r} field must be an http(s) URL")
    return value


def _optional_url(value: Any) -> str | None:
    if isinstance(value, dict):  # a link object
        value = value.get("href") or value.get("id")
    if not isinstance(value, str) or len(value) > _MAX_URL:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "https://[::1/": not a URL at all
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return value


def _image_url(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        return _optional_url(value.get("url"))
    return _optional_url(value)


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _last_segment(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1][:_MAX_NAME] or host_of(url)
