"""A small recording ActivityPub peer for fedcop's fault tests (not an interop peer).

One actor, `rec` (a Person with an RSA key read from a file, so a restarted peer keeps its key),
WebFinger, a shared and a personal inbox that record every POST, and a control API:

    python tests/peers/recorder/server.py --host 127.0.0.21 --port 8123 \
        --key /tmp/rec.pem --journal /tmp/rec.jsonl [--delay 3]

- Every inbox POST is appended to the journal (one JSON line: activity id, type, object, time)
  *before* it is answered, and the journal outlives the process: after a restart the test can
  still tell whether an activity arrived twice.
- `--delay` makes every inbox answer take that many seconds (a slow server).
- `POST /_control/follow {"target": actor URL}` sends a signed Follow; `GET /_control/state`
  shows which follows were accepted.

Signing reuses fedcop's draft-cavage signer: this peer is fedcop's own test double, the
independent implementations are the Fedify and bovine peers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fedcop.security.httpsig import sign_request
from fedcop.security.httpsig_common import load_private_key
from fedcop.security.keys import public_pem_of

AS2_CONTEXT = ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"]
AS2 = "application/activity+json"


def build_app(origin: str, private_pem: str, journal: Path, delay: float) -> Starlette:
    actor_id = f"{origin}/users/rec"
    key = load_private_key(private_pem)
    public_pem = public_pem_of(key)  # type: ignore[arg-type]
    following: dict[str, dict[str, Any]] = {}
    lock = asyncio.Lock()

    async def actor(_: Request) -> Response:
        document = {
            "@context": AS2_CONTEXT,
            "id": actor_id,
            "type": "Person",
            "preferredUsername": "rec",
            "inbox": f"{actor_id}/inbox",
            "outbox": f"{actor_id}/outbox",
            "followers": f"{actor_id}/followers",
            "endpoints": {"sharedInbox": f"{origin}/inbox"},
            "publicKey": {"id": f"{actor_id}#main-key", "owner": actor_id,
                          "publicKeyPem": public_pem},
        }  # fmt: skip
        return JSONResponse(document, media_type=AS2)

    async def webfinger(request: Request) -> Response:
        host = origin.split("://", 1)[1]
        if request.query_params.get("resource") != f"acct:rec@{host}":
            return JSONResponse({"error": "not found"}, status_code=404)
        links = [{"rel": "self", "type": AS2, "href": actor_id}]
        return JSONResponse({"subject": f"acct:rec@{host}", "links": links})

    async def inbox(request: Request) -> Response:
        body = await request.body()
        try:
            activity = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "not JSON"}, status_code=400)
        obj = activity.get("object")
        entry = {
            "id": activity.get("id"),
            "type": activity.get("type"),
            "actor": activity.get("actor"),
            "object": obj.get("id") if isinstance(obj, dict) else obj,
            "path": request.url.path,
            "time": time.time(),
            "pid": os.getpid(),
        }
        async with lock:
            with journal.open("a") as out:
                out.write(json.dumps(entry) + "\n")
        if activity.get("type") == "Accept" and isinstance(obj, dict | str):
            follow_id = obj.get("id") if isinstance(obj, dict) else obj
            for state in following.values():
                if state["follow"] == follow_id:
                    state["accepted"] = True
        if delay:
            await asyncio.sleep(delay)
        return Response(status_code=202)

    async def follow(request: Request) -> Response:
        target = (await request.json())["target"]
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            target_doc = (await client.get(target, headers={"accept": AS2})).json()
            activity = {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": f"{origin}/activities/{uuid.uuid4()}",
                "type": "Follow",
                "actor": actor_id,
                "object": target,
            }
            body = json.dumps(activity).encode()
            headers = {"content-type": AS2}
            headers |= sign_request(
                "POST", target_doc["inbox"], headers, body, f"{actor_id}#main-key", key
            )
            answer = await client.post(target_doc["inbox"], content=body, headers=headers)
        following[target] = {"follow": activity["id"], "accepted": False}
        return JSONResponse({"ok": answer.status_code < 300, "status": answer.status_code})

    async def state(_: Request) -> Response:
        return JSONResponse({"following": following})

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/users/rec", actor),
            Route("/.well-known/webfinger", webfinger),
            Route("/inbox", inbox, methods=["POST"]),
            Route("/users/rec/inbox", inbox, methods=["POST"]),
            Route("/_control/follow", follow, methods=["POST"]),
            Route("/_control/state", state),
            Route("/_control/health", health),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    if not args.host.startswith("127."):
        raise SystemExit("the recorder binds 127.0.0.0/8 only")
    origin = f"http://{args.host}:{args.port}"
    app = build_app(origin, args.key.read_text(), args.journal, args.delay)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
