"""Reading other servers' NodeInfo: where the document is, and which software it names. No I/O.

NodeInfo: https://github.com/jhass/nodeinfo/blob/main/PROTOCOL.md — `/.well-known/nodeinfo`
links one document per schema version; `software.name` is lowercase `[a-z0-9-]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_SCHEMA = re.compile(r"^https?://nodeinfo\.diaspora\.software/ns/schema/(\d+)\.(\d+)$")
_NAME = re.compile(r"^[a-z0-9-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Software:
    name: str
    version: str | None


def document_url(links: Any, host: str) -> str | None:
    """The newest NodeInfo schema's document among the well-known links, on `host` itself
    (a server describes itself; a link elsewhere is not followed)."""
    if not isinstance(links, dict) or not isinstance(links.get("links"), list):
        return None
    best: tuple[tuple[int, int], str] | None = None
    for link in links["links"]:
        if not isinstance(link, dict):
            continue
        rel, href = link.get("rel"), link.get("href")
        match = _SCHEMA.match(rel) if isinstance(rel, str) else None
        if match is None or not isinstance(href, str):
            continue
        parts = urlsplit(href)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
            continue
        version = (int(match[1]), int(match[2]))
        if best is None or version > best[0]:
            best = (version, href)
    return best[1] if best else None


def software_of(document: Any) -> Software | None:
    software = document.get("software") if isinstance(document, dict) else None
    if not isinstance(software, dict):
        return None
    name = software.get("name")
    if not isinstance(name, str) or not _NAME.match(name.strip().lower()):
        return None
    version = software.get("version")
    return Software(
        name=name.strip().lower(),
        version=version[:64] if isinstance(version, str) and version else None,
    )
