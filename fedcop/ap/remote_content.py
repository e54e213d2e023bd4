"""Reading remote posts (Note, Article, Page, Question, Event, ...): checked, capped and
sanitised, ready to store. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fedcop.ap.activities import object_id_of
from fedcop.ap.context import PUBLIC
from fedcop.ap.remote import InvalidDocumentError, host_of
from fedcop.models import Visibility
from fedcop.security.html import sanitize, text_to_html, to_text

CONTENT_TYPES = frozenset(
    {"Note", "Article", "Page", "Question", "Event", "Video", "Audio", "Image", "Document"}
)
MAX_TITLE = 500
MAX_WARNING = 500
SENSITIVE_WARNING = "Marked sensitive by its author"
MAX_TAGS = 32
MAX_ATTACHMENTS = 8
_PUBLIC_ALIASES = {PUBLIC, "as:Public", "Public"}


@dataclass(frozen=True, slots=True)
class RemoteContent:
    ap_id: str
    type: str
    author: str
    in_reply_to: str | None
    title: str
    summary: str  # sanitised HTML teaser (Articles, Pages)
    content: str  # sanitised HTML
    content_warning: str | None
    url: str | None
    visibility: str
    tags: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)  # to, cc, audience
    attachments: list[dict[str, Any]] = field(default_factory=list)
    published: datetime | None = None


def parse_content(document: Any) -> RemoteContent:
    if not isinstance(document, dict):
        raise InvalidDocumentError("the object must be embedded or fetchable as JSON")
    ap_id, kind = object_id_of(document), _kind(document.get("type"))
    if ap_id is None or kind is None:
        raise InvalidDocumentError(f"{document.get('type')!r} is not a kind of post fedcop stores")
    author = object_id_of(_first(document.get("attributedTo")))
    if author is None:
        raise InvalidDocumentError("the post has no attributedTo")
    if host_of(author) != host_of(ap_id):
        raise InvalidDocumentError("the post's attributedTo must be on the post's own server")
    to, cc = _ids(document.get("to")), _ids(document.get("cc"))
    sensitive = document.get("sensitive") is True
    summary = _text(document.get("summary"))
    is_note = kind == "Note"
    return RemoteContent(
        ap_id=ap_id,
        type=kind,
        author=author,
        in_reply_to=_link(document.get("inReplyTo")),
        title=to_text(_text(document.get("name")))[:MAX_TITLE],
        # On a Note, `summary` is a content warning; elsewhere it is the teaser.
        summary="" if is_note else sanitize(summary),
        content=_content(document),
        content_warning=_warning(summary if is_note else "", sensitive),
        url=_url(document.get("url")),
        visibility=_visibility(to, cc),
        tags=_hashtags(document.get("tag")),
        mentions=_mentions(document.get("tag")),
        recipients=to + cc + _ids(document.get("audience")),
        attachments=_attachments(document.get("attachment")),
        published=_date(document.get("published")),
    )


def _warning(summary: str, sensitive: bool) -> str | None:
    """A Note's `summary` is its content warning. `sensitive` alone (Mastodon's sensitive
    media; a Lemmy post marked NSFW, `Page.sensitive` in
    https://github.com/LemmyNet/lemmy/blob/main/crates/apub/objects/src/protocol/page.rs)
    still puts the post behind a warning here, with a generic text."""
    warning = to_text(summary)[:MAX_WARNING]
    return warning or (SENSITIVE_WARNING if sensitive else None)


def _kind(value: Any) -> str | None:
    """The post's type; with several (`["Note", "Article"]`), the first one fedcop stores."""
    for candidate in _list(value):
        if isinstance(candidate, str) and candidate in CONTENT_TYPES:
            return candidate
    return None


def _link(value: Any) -> str | None:
    """An id given as a string, an object, a Link (`href`) or a list of those: the first."""
    value = _first(value)
    if isinstance(value, dict) and value.get("type") == "Link":
        href = value.get("href")
        return href if isinstance(href, str) else None
    return object_id_of(value)


def _content(document: dict[str, Any]) -> str:
    content = _text(document.get("content"))
    if not content:
        content_map = document.get("contentMap")
        if isinstance(content_map, dict) and content_map:
            content = _text(next(iter(content_map.values())))
    if document.get("mediaType") == "text/plain":
        return text_to_html(content)
    return sanitize(content)


def _visibility(to: list[str], cc: list[str]) -> str:
    if _PUBLIC_ALIASES & set(to):
        return Visibility.PUBLIC
    if _PUBLIC_ALIASES & set(cc):
        return Visibility.UNLISTED
    return Visibility.FOLLOWERS


def _hashtags(tags: Any) -> list[str]:
    names = [
        str(tag["name"]).lstrip("#").lower()[:64]
        for tag in _list(tags)
        if isinstance(tag, dict)
        and tag.get("type") == "Hashtag"
        and isinstance(tag.get("name"), str)
    ]
    return list(dict.fromkeys(name for name in names if name))[:MAX_TAGS]


def _mentions(tags: Any) -> list[str]:
    return [
        str(tag["href"])
        for tag in _list(tags)
        if isinstance(tag, dict)
        and tag.get("type") == "Mention"
        and isinstance(tag.get("href"), str)
    ][:MAX_TAGS]


def _attachments(value: Any) -> list[dict[str, Any]]:
    """References to remote media (never copied, never served as ours)."""
    found: list[dict[str, Any]] = []
    for item in _list(value)[:MAX_ATTACHMENTS]:
        if not isinstance(item, dict):
            continue
        url = _url(item.get("url"))
        if url is not None:
            found.append(
                {
                    "type": str(item.get("type", "Document"))[:32],
                    "mediaType": str(item.get("mediaType", ""))[:100],
                    "url": url,
                    "name": to_text(_text(item.get("name")))[:1500],
                }
            )
    return found


def _url(value: Any) -> str | None:
    value = _first(value)
    if isinstance(value, dict):
        value = value.get("href")
    if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= 2048:
        return value
    return None


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # Converting year 1 or 9999 with an offset leaves the calendar: OverflowError.
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _ids(value: Any) -> list[str]:
    return [found for item in _list(value) if (found := object_id_of(item)) is not None]


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
