"""WebFinger, host-meta and NodeInfo documents (INTEROP §1)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

from fedcop import __version__

AS_MEDIA_TYPE = "application/activity+json"
PROFILE_PAGE_REL = "http://webfinger.net/rel/profile-page"
NODEINFO_SCHEMAS = ("2.0", "2.1")

# Mastodon's username rule, made case-insensitive (INTEROP §1):
# https://github.com/mastodon/mastodon/blob/main/app/models/account.rb (USERNAME_RE)
USERNAME_RE = re.compile(r"^[a-z0-9_]+([.-]+[a-z0-9_]+)*$", re.IGNORECASE)
USERNAME_MAX_LENGTH = 30


def parse_acct(resource: str) -> tuple[str, str] | None:
    """Split `acct:user@host` (or `user@host`, `@user@host`) into (user, host), else None."""
    value = resource.removeprefix("acct:").removeprefix("@")
    user, sep, host = value.rpartition("@")
    if not sep or not user or not host or "@" in user:
        return None
    return user, host.lower()


def webfinger(subject: str, actor_id: str, profile_url: str, *, is_group: bool) -> dict[str, Any]:
    self_link: dict[str, Any] = {"rel": "self", "type": AS_MEDIA_TYPE, "href": actor_id}
    if is_group:
        # Lemmy-family clients tell a community from a user by this property.
        self_link["properties"] = {"https://www.w3.org/ns/activitystreams#type": "Group"}
    aliases = [profile_url] if profile_url == actor_id else [profile_url, actor_id]
    return {
        "subject": subject,
        "aliases": aliases,
        "links": [
            {"rel": PROFILE_PAGE_REL, "type": "text/html", "href": profile_url},
            self_link,
        ],
    }


def host_meta(base_url: str) -> str:
    template = quoteattr(f"{base_url}/.well-known/webfinger?resource={{uri}}")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" type="application/jrd+json" template={template}/>\n'
        "</XRD>\n"
    )


def nodeinfo_links(base_url: str) -> dict[str, Any]:
    return {
        "links": [
            {
                "rel": f"http://nodeinfo.diaspora.software/ns/schema/{version}",
                "href": f"{base_url}/nodeinfo/{version}",
            }
            for version in NODEINFO_SCHEMAS
        ]
    }


@dataclass(frozen=True, slots=True)
class NodeUsage:
    users_total: int
    users_active_month: int
    users_active_halfyear: int
    local_posts: int


def nodeinfo(
    version: str,
    usage: NodeUsage,
    *,
    open_registrations: bool,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    software: dict[str, Any] = {"name": "fedcop", "version": __version__}
    return {
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": open_registrations,
        "usage": {
            "users": {
                "total": usage.users_total,
                "activeMonth": usage.users_active_month,
                "activeHalfyear": usage.users_active_halfyear,
            },
            "localPosts": usage.local_posts,
        },
        "metadata": metadata,
    }
