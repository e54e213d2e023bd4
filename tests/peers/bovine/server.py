"""A real bovine-herd server (PyPI `bovine-herd`, an independent ActivityPub implementation).

    python tests/peers/bovine/server.py --host 127.0.0.14 --port 8123 --dir /tmp/bovine

Runs bovine-herd's own Quart app (`bovine_herd.BovineHerd`, as `hypercorn bovine_herd:app`
would, see https://pypi.org/project/bovine-herd/) under uvicorn on a loopback address, with a
SQLite store in `--dir`. Before serving it registers one actor, `cow`, through bovine's admin
store (what `bovine_tool.register` does) with the domain given as `http://host:port`, which
bovine-herd supports for end-to-end tests (BovineAdminStore's docstring). It writes
`actor.json` in `--dir`: the actor id and its RSA key, so the test can act as the actor's own
client (ActivityPub client-to-server: POST to its outbox, GET its inbox, both HTTP-signed with
that key, as bovine's `BovineActor` does). Nothing here changes how bovine-herd federates.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp.connector
import aiohttp.resolver
import uvicorn
from bovine_herd import BovineHerd
from bovine_store import BovineAdminStore
from bovine_store.models import BovineActorKeyPair
from quart import Quart

_real_getaddrinfo = socket.getaddrinfo


def _loopback_only_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """Resolve only to 127.0.0.0/8: bovine's JSON-LD loader fetches unknown @context URLs
    (e.g. https://w3id.org/security/v1) from the internet with `requests`; the tests must never
    leave loopback, so those look-ups fail here, quickly, and bovine carries on without them."""
    answers = [
        answer for answer in _real_getaddrinfo(host, *args, **kwargs)
        if ipaddress.ip_address(answer[4][0]).is_loopback
    ] if _is_loopback_literal(host) else []  # fmt: skip
    if not answers:
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: only 127.0.0.0/8 in tests")
    return answers


def _is_loopback_literal(host: Any) -> bool:
    try:
        name = host.decode() if isinstance(host, bytes) else str(host)
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def build_app(origin: str, directory: Path) -> Quart:
    app = Quart("fedcop-bovine-peer")
    BovineHerd(app, db_url=f"sqlite://{directory / 'bovine.sqlite3'}")

    @app.before_serving
    async def register_cow() -> None:  # runs after BovineHerd's store set-up (same order)
        info_path = directory / "actor.json"
        if info_path.exists():
            return
        store = BovineAdminStore(domain=origin)
        bovine_name = await store.register("cow")
        actor = await store.actor_for_name(bovine_name)
        assert actor is not None
        key = await BovineActorKeyPair.get(bovine_actor__bovine_name=bovine_name,
                                           name="serverKey")  # fmt: skip
        document = actor.actor_object.build()
        info = {
            "bovine_name": bovine_name,
            "actor_id": document["id"],
            "key_id": document["publicKey"]["id"],
            "private_key": key.private_key,
            "inbox": document["inbox"],
            "outbox": document["outbox"],
        }
        info_path.write_text(json.dumps(info))

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    socket.getaddrinfo = _loopback_only_getaddrinfo
    # aiohttp would resolve with aiodns (installed with bovine), past getaddrinfo: use the
    # threaded resolver, which calls it.
    aiohttp.connector.DefaultResolver = aiohttp.resolver.ThreadedResolver  # type: ignore[misc]
    if not args.host.startswith("127."):
        raise SystemExit("the bovine peer binds 127.0.0.0/8 only")
    app = build_app(f"http://{args.host}:{args.port}", args.dir)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
