"""Fake remote servers built from the shapes real ones send (Mastodon-like by default)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

from fedcop.security.httpsig import load_private_key, sign_request
from fedcop.security.keys import KeyPair, generate_key_pair


@dataclass
class FakePeer:
    """One remote actor on its own host, serving its actor document and WebFinger."""

    host: str
    username: str = "remote"
    key_style: str = "fragment"  # "fragment": ACTOR#main-key; "path": ACTOR/main-key (GoToSocial)
    keys: KeyPair = field(default_factory=generate_key_pair)
    requests: list[httpx.Request] = field(default_factory=list)
    status_override: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    inbox: list[dict[str, Any]] = field(default_factory=list)  # activities POSTed to it
    inbox_status: int = 202
    inbox_headers: dict[str, str] = field(default_factory=dict)
    shared_inbox: bool = True
    # NodeInfo `software.name` this server reports ("lemmy", "mastodon"); None: no NodeInfo.
    software: str | None = None

    @property
    def actor_id(self) -> str:
        return f"https://{self.host}/users/{self.username}"

    @property
    def key_id(self) -> str:
        suffix = "#main-key" if self.key_style == "fragment" else "/main-key"
        return self.actor_id + suffix

    def actor_document(self) -> dict[str, Any]:
        return {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": self.actor_id,
            "type": "Person",
            "preferredUsername": self.username,
            "name": self.username.title(),
            "inbox": f"{self.actor_id}/inbox",
            "outbox": f"{self.actor_id}/outbox",
            "followers": f"{self.actor_id}/followers",
            **(
                {"endpoints": {"sharedInbox": f"https://{self.host}/inbox"}}
                if self.shared_inbox
                else {}
            ),
            "publicKey": {
                "id": self.key_id,
                "owner": self.actor_id,
                "publicKeyPem": self.keys.public_pem,
            },
            **self.extra,
        }

    def rotate(self) -> None:
        self.keys = generate_key_pair()

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status_override is not None:
            return httpx.Response(self.status_override)
        path = request.url.path
        if request.method == "POST" and path in (f"/users/{self.username}/inbox", "/inbox"):
            if self.inbox_status < 300:
                self.inbox.append(json.loads(request.content))
            return httpx.Response(self.inbox_status, headers=self.inbox_headers)
        if path in (f"/users/{self.username}", f"/users/{self.username}/main-key"):
            return _json(self.actor_document(), "application/activity+json")
        if self.software is not None and path in ("/.well-known/nodeinfo", "/nodeinfo/2.1"):
            return _json(self._nodeinfo(path), "application/json")
        if path == "/.well-known/webfinger":
            resource = parse_qs(request.url.query.decode()).get("resource", [""])[0]
            if resource != f"acct:{self.username}@{self.host}":
                return httpx.Response(404)
            return _json(self._webfinger(resource), "application/jrd+json")
        return httpx.Response(404)

    def _nodeinfo(self, path: str) -> dict[str, Any]:
        if path == "/.well-known/nodeinfo":
            rel = "http://nodeinfo.diaspora.software/ns/schema/2.1"
            return {"links": [{"rel": rel, "href": f"https://{self.host}/nodeinfo/2.1"}]}
        return {"version": "2.1", "software": {"name": self.software, "version": "1.0.0"},
                "protocols": ["activitypub"]}  # fmt: skip

    def _webfinger(self, resource: str) -> dict[str, Any]:
        link = {"rel": "self", "type": "application/activity+json", "href": self.actor_id}
        return {"subject": resource, "links": [link]}

    def signed_headers(
        self, method: str, url: str, body: bytes | None = None, **headers: str
    ) -> dict[str, str]:
        base = {"accept": "application/activity+json", **headers}
        signed = sign_request(
            method, url, base, body, self.key_id, load_private_key(self.keys.private_pem)
        )
        return {**base, **signed}


def _json(document: dict[str, Any], content_type: str) -> httpx.Response:
    return httpx.Response(
        200, content=json.dumps(document).encode(), headers={"content-type": content_type}
    )


async def post_signed(
    net: httpx.AsyncBaseTransport, peer: FakePeer, url: str, activity: dict[str, Any]
) -> httpx.Response:
    """POST `activity` to `url` signed by `peer`, as its server would."""
    body = json.dumps(activity).encode()
    headers = peer.signed_headers(
        "POST", url, body, **{"content-type": "application/activity+json"}
    )
    async with httpx.AsyncClient(transport=net) as client:
        return await client.post(url, content=body, headers=headers)


def follow_activity(peer: FakePeer, target: str, number: int = 1) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{peer.actor_id}#follows/{number}",
        "type": "Follow",
        "actor": peer.actor_id,
        "object": target,
    }


def create_activity(peer: FakePeer, obj: dict[str, Any], number: int = 1) -> dict[str, Any]:
    """`Create{obj}` by `peer`, addressed as the object is."""
    return {"id": f"{peer.actor_id}#create/{number}", "type": "Create", "actor": peer.actor_id,
            "to": obj.get("to", []), "cc": obj.get("cc", []), "object": obj}  # fmt: skip
