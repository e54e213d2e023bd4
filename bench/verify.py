"""Signed inbox POSTs verified inside fedcop's request path, against a bare verify loop.

Target (from the issue): signed POSTs verified per second inside fedcop's request path ≥ 50% of
a bare "parse JSON + check digest + one RSA-2048 verify" loop run in the same process.

- **Baseline** (`bare_verify_rate`): for pre-signed requests, `orjson.loads(body)`, SHA-256 of
  the body compared with the `Digest` header, and one RSA-2048 PKCS#1 v1.5 SHA-256 verify of
  the pre-built signing string. No HTTP, no framework: the irreducible cost of accepting a
  signed activity.
- **Measured**: N distinct `Follow` activities from a fake remote peer (tests/support/peers.py),
  pre-signed outside the timing, driven through fedcop's real ASGI app (`create_app`, SQLite in
  a temp dir) by a minimal raw ASGI driver (a scope dict, one `receive`, a `send` that keeps the
  status), `--concurrency` requests in flight so the inbox writer's group commit works as it
  does under load. The whole request path runs: routing, size cap, JSON, `check_activity`,
  duplicate check, signature parse and verify with the cached key, policy, the durable
  `inbox_items` row (group commit), 202. The peer's key is fetched and cached by one warm-up
  request first.
- **Driver overhead**: the same driver against a do-nothing ASGI app, so what is fedcop's and
  what is the driver's can be told apart (`details.driver_us_per_request`).

Shared pieces (signing, the baseline, the in-process app) are imported by bench/inbox.py.

Run: `python -m bench verify [--requests 3000] [--concurrency 32] [--database-url URL]`
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.report import Result
from fedcop.app import create_app
from fedcop.db import create_engine
from fedcop.security.httpsig import load_private_key, load_public_key, parse_signature
from fedcop.settings import Settings
from tests.support.network import InProcessNetwork
from tests.support.peers import FakePeer, follow_activity

TARGET_RATIO = 0.50
DOMAIN = "fedcop.bench.test"  # .test (RFC 2606): never a real name
PEER_HOST = "peer.bench.test"
GROUP = f"https://{DOMAIN}/groups/bench"
WARM_UP = 500  # requests through each app before it is measured
INBOX_PATH = "/inbox"
INBOX_URL = f"https://{DOMAIN}{INBOX_PATH}"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# -- pre-signed requests -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedPost:
    """One inbox POST as the peer's server would send it, plus what the baseline needs."""

    activity_id: str
    body: bytes
    headers: dict[str, str]  # includes Host, Date, Digest, Signature, Content-Type
    signing_string: bytes  # as fedcop rebuilds it from the request
    signature: bytes  # decoded from the Signature header
    digest_header: str  # "SHA-256=..."


def settings_for(database_url: str) -> Settings:
    return Settings(
        domain=DOMAIN,
        scheme="https",
        database_url=database_url,
        secret_key="x" * 40,
        allow_private_addresses=True,
    )


def make_peer() -> FakePeer:
    return FakePeer(host=PEER_HOST, username="bench")


def _sign_one(peer: FakePeer, number: int) -> SignedPost:
    activity = follow_activity(peer, GROUP, number)
    body = orjson.dumps(activity)
    headers = peer.signed_headers(
        "POST", INBOX_URL, body, **{"content-type": "application/activity+json"}
    )
    parsed = parse_signature("POST", INBOX_PATH, headers, body, scheme="https")
    return SignedPost(
        activity_id=activity["id"],
        body=body,
        headers=headers,
        signing_string=parsed.signing_strings[0],
        signature=parsed.signature,
        digest_header=headers["Digest"],
    )


def sign_posts(peer: FakePeer, numbers: Iterable[int], threads: int = 2) -> list[SignedPost]:
    """Sign outside any timing; `cryptography` releases the GIL, so two threads ~halve it."""
    load_private_key(peer.keys.private_pem)  # parse the PEM once, not in every thread at once
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda n: _sign_one(peer, n), numbers))


# -- the baseline --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyRate:
    per_second: float  # wall clock
    cpu_us_per_verify: float  # process CPU time: blind to time stolen by neighbours


def bare_verify_rate(posts: list[SignedPost], public_key_pem: str, seconds: float) -> VerifyRate:
    """JSON parse + digest compare + one RSA verify per pre-signed request, single-threaded."""
    key = load_public_key(public_key_pem)
    assert isinstance(key, rsa.RSAPublicKey)
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def one(post: SignedPost) -> None:
        orjson.loads(post.body)
        label, _, encoded = post.digest_header.partition("=")
        if label.upper() != "SHA-256" or not hmac.compare_digest(
            hashlib.sha256(post.body).digest(), base64.b64decode(encoded)
        ):
            raise RuntimeError("digest mismatch in the baseline")
        key.verify(post.signature, post.signing_string, pkcs1, sha256)

    one(posts[0])  # first call outside the timing
    count = 0
    cpu = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        # Check the clock every 32 requests: cheap, and within ~1.5 ms of `seconds`.
        for post in posts[count % len(posts) : count % len(posts) + 32]:
            one(post)
            count += 1
        now = time.perf_counter()
        if now >= deadline:
            cpu_us = 1e6 * (time.process_time() - cpu) / count
            return VerifyRate(per_second=count / (now - start), cpu_us_per_verify=cpu_us)


def mean_rate(before: VerifyRate, after: VerifyRate) -> VerifyRate:
    return VerifyRate(
        (before.per_second + after.per_second) / 2,
        (before.cpu_us_per_verify + after.cpu_us_per_verify) / 2,
    )


# -- the bare HTTP baseline ---------------------------------------------------------------


def bare_app(public_key_pem: str) -> Starlette:
    """The issue's HTTP baseline: a bare Starlette app doing only JSON + digest + one verify.

    One POST route, no fedcop code: read the body, `orjson.loads` it, compare its SHA-256 with
    the `Digest` header, split the `Signature` header, rebuild the signing string from the
    headers it names and verify it with the (already loaded, as if cached) RSA key; 202, or
    401 if anything is off. No size cap, no activity checks, no key lookup, no clock window,
    no de-duplication and no database: what fedcop does on top of this is what the ratio
    against it measures.
    """
    key = serialization.load_pem_public_key(public_key_pem.encode("ascii"))
    assert isinstance(key, rsa.RSAPublicKey)
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    async def inbox(request: Request) -> Response:
        body = await request.body()
        headers = request.headers
        try:
            orjson.loads(body)
            label, _, encoded = headers["digest"].partition("=")
            if label.upper() != "SHA-256" or not hmac.compare_digest(
                hashlib.sha256(body).digest(), base64.b64decode(encoded)
            ):
                return Response(status_code=401)
            params = {}
            for item in headers["signature"].split(","):
                name, _, value = item.partition("=")
                params[name.strip()] = value.strip().strip('"')
            lines = [
                f"(request-target): post {request.scope['path']}"
                if name == "(request-target)"
                else f"{name}: {headers[name]}"
                for name in params["headers"].split()
            ]
            signature = base64.b64decode(params["signature"])
            key.verify(signature, "\n".join(lines).encode(), pkcs1, sha256)
        except (KeyError, ValueError, orjson.JSONDecodeError, InvalidSignature):
            return Response(status_code=401)
        return Response(status_code=202)

    return Starlette(routes=[Route(INBOX_PATH, inbox, methods=["POST"])])


# -- fedcop in process ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def in_process_app(database_url: str, peer: FakePeer) -> AsyncIterator[Starlette]:
    """fedcop's real app with its lifespan run; outbound requests reach only `peer`."""
    net = InProcessNetwork()
    net.add_handler(peer.host, peer.handler)
    engine = create_engine(database_url)
    app = create_app(
        settings_for(database_url),
        engine=engine,
        network=net.as_network(),
        freeze_after_startup=True,  # as `fedcop serve` does
    )
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        await engine.dispose()


def asgi_headers(post: SignedPost) -> list[tuple[bytes, bytes]]:
    headers = [(name.lower().encode(), value.encode()) for name, value in post.headers.items()]
    headers.append((b"content-length", str(len(post.body)).encode()))
    return headers


def asgi_scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": INBOX_PATH,
        "raw_path": INBOX_PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 443),
    }


async def asgi_post(app: ASGIApp, scope: Scope, body: bytes) -> int:
    """One request through `app`: the body in one message, the status from the response."""
    status = 0
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope), receive, send)
    return status


@dataclass(frozen=True, slots=True)
class DriveRun:
    requests: int
    seconds: float
    cpu_seconds: float
    statuses: dict[int, int]

    @property
    def per_second(self) -> float:
        return self.statuses.get(202, 0) / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.cpu_seconds / self.requests


async def drive(app: ASGIApp, posts: list[SignedPost], concurrency: int) -> DriveRun:
    """Every post once through `app`, `concurrency` in flight (one task per 'connection')."""
    prepared = iter([(asgi_scope(asgi_headers(post)), post.body) for post in posts])
    statuses: Counter[int] = Counter()

    async def worker() -> None:
        for scope, body in prepared:
            statuses[await asgi_post(app, scope, body)] += 1

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(posts)))))
    seconds = time.perf_counter() - start
    return DriveRun(len(posts), seconds, time.process_time() - cpu, dict(statuses))


async def null_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The cheapest ASGI app that reads the body and answers 202: the driver's own cost."""
    await receive()
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b""})


# -- the benchmark -------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench verify")
    parser.add_argument("--requests", type=int, default=3000, help="signed POSTs per run")
    parser.add_argument("--rounds", type=int, default=3, help="fedcop runs, each between bare runs")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--baseline-seconds", type=float, default=2.0)
    parser.add_argument(
        "--database-url",
        default="",
        help="default: SQLite in a temp dir; a PostgreSQL URL must name a migrated database",
    )
    return parser.parse_args(argv)


async def run(argv: list[str]) -> Result:
    args = parse_args(argv)
    peer = make_peer()
    started = time.perf_counter()
    warm = sign_posts(peer, range(1, WARM_UP + 2))
    first = WARM_UP + 2
    # Every round needs activities fedcop has not seen (a repeat is answered without a verify).
    rounds = [
        sign_posts(peer, range(first + n * args.requests, first + (n + 1) * args.requests))
        for n in range(args.rounds)
    ]
    signed = len(warm) + args.rounds * args.requests
    print(f"   signed {signed} requests in {time.perf_counter() - started:.1f}s")
    bare = bare_app(peer.keys.public_pem)
    posts = rounds[0]
    with tempfile.TemporaryDirectory(prefix="fedcop-bench-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'verify.db'}"
        async with in_process_app(url, peer) as app:
            warm_up = await drive(app, warm[:1], 1)  # fetches and caches the peer's key
            if warm_up.statuses != {202: 1}:
                raise RuntimeError(f"warm-up failed: {warm_up.statuses}")
            # Warmed like the bare app below (the interpreter specialises hot code on use).
            await drive(app, warm[1:], args.concurrency)
            driver = await drive(null_app, posts, args.concurrency)
            await drive(bare, posts[:WARM_UP], args.concurrency)  # warm the bare app too
            # loop, bare | fedcop | bare | fedcop | ... | bare, loop: each fedcop run is
            # compared with the bare runs either side of it, and the median round reported,
            # so a burst of load from a neighbour moves one round, not the figure.
            loop_before = bare_verify_rate(posts, peer.keys.public_pem, args.baseline_seconds)
            bare_runs = [await drive(bare, posts, args.concurrency)]
            fedcop_runs = []
            for round_posts in rounds:
                fedcop_runs.append(await drive(app, round_posts, args.concurrency))
                bare_runs.append(await drive(bare, posts, args.concurrency))
            loop_after = bare_verify_rate(posts, peer.keys.public_pem, args.baseline_seconds)
    return summarise(args, Rounds(fedcop_runs, bare_runs, driver, loop_before, loop_after), url)


@dataclass(frozen=True, slots=True)
class Measurements:
    fedcop: DriveRun
    driver: DriveRun  # the raw ASGI driver against a do-nothing app
    bare_before: DriveRun  # the bare Starlette app (bare_app), before and after fedcop
    bare_after: DriveRun
    loop_before: VerifyRate  # the no-HTTP loop, before and after
    loop_after: VerifyRate

    @property
    def bare_per_second(self) -> float:
        return (self.bare_before.per_second + self.bare_after.per_second) / 2

    @property
    def bare_cpu_us(self) -> float:
        return (self.bare_before.cpu_us_per_request + self.bare_after.cpu_us_per_request) / 2

    @property
    def ratio(self) -> float:
        return self.fedcop.per_second / self.bare_per_second


@dataclass(frozen=True, slots=True)
class Rounds:
    fedcop: list[DriveRun]  # one per round
    bare: list[DriveRun]  # before the first round, then after each
    driver: DriveRun
    loop_before: VerifyRate
    loop_after: VerifyRate

    def each(self) -> list[Measurements]:
        return [
            Measurements(run, self.driver, self.bare[n], self.bare[n + 1], self.loop_before,
                         self.loop_after)
            for n, run in enumerate(self.fedcop)
        ]  # fmt: skip

    def median(self) -> Measurements:
        """The round with the median ratio (the lower middle one for an even count)."""
        ordered = sorted(self.each(), key=lambda m: m.ratio)
        return ordered[(len(ordered) - 1) // 2]


def summarise(args: argparse.Namespace, rounds: Rounds, database_url: str) -> Result:
    m = rounds.median()
    measured = m.fedcop
    loop = mean_rate(m.loop_before, m.loop_after)
    ratio = measured.per_second / m.bare_per_second
    loop_ratio = measured.per_second / loop.per_second
    clean = all(run.statuses == {202: run.requests} for run in [*rounds.fedcop, *rounds.bare])
    print(f"   rounds (fedcop / bare either side): {[round(r.ratio, 2) for r in rounds.each()]}")
    driver_us = m.driver.cpu_us_per_request
    fedcop_us = measured.cpu_us_per_request - driver_us
    cpu_ratio = m.bare_cpu_us / measured.cpu_us_per_request
    print(
        f"   fedcop in process: {measured.per_second:,.0f} 202/s ({measured.requests} in "
        f"{measured.seconds:.2f}s, {measured.cpu_us_per_request:.0f} µs CPU/request, of which "
        f"the driver ≈ {driver_us:.0f} µs) statuses {measured.statuses}"
    )
    print(
        f"   bare Starlette app: {m.bare_before.per_second:,.0f} → "
        f"{m.bare_after.per_second:,.0f} 202/s ({m.bare_cpu_us:.0f} µs CPU/request); "
        f"ratio {ratio:.2f}, CPU-time ratio {cpu_ratio:.2f}"
    )
    print(
        f"   no-HTTP loop {m.loop_before.per_second:,.0f} → {m.loop_after.per_second:,.0f} "
        f"verifies/s ({loop.cpu_us_per_verify:.0f} µs CPU each); ratio {loop_ratio:.2f}, "
        f"CPU-time ratio {loop.cpu_us_per_verify / measured.cpu_us_per_request:.2f}"
    )
    backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    event_loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    return Result(
        scenario=f"verify path in process (raw ASGI), {backend}, {event_loop}",
        ratio=ratio,
        absolute=(
            f"{measured.per_second:,.0f} 202/s vs bare Starlette {m.bare_per_second:,.0f}/s; "
            f"vs no-HTTP loop {loop.per_second:,.0f}/s: {loop_ratio:.2f}"
        ),
        target=f"≥ {TARGET_RATIO:.2f}",
        met=clean and ratio >= TARGET_RATIO,
        details={
            "baseline": "bare Starlette app (bench/verify.py bare_app), same driver, same run",
            "bare_per_second": {
                "before": m.bare_before.per_second,
                "after": m.bare_after.per_second,
                "mean": m.bare_per_second,
            },
            "bare_cpu_us_per_request": m.bare_cpu_us,
            "loop_ratio": loop_ratio,
            "loop_verifies_per_second": {
                "before": m.loop_before.per_second,
                "after": m.loop_after.per_second,
                "mean": loop.per_second,
            },
            "loop_cpu_us_per_verify": loop.cpu_us_per_verify,
            "cpu_us_per_request": measured.cpu_us_per_request,
            "driver_us_per_request": driver_us,
            "fedcop_cpu_us_per_request": fedcop_us,
            # The ratios in process CPU time (blind to stolen time).
            "cpu_time_ratio": cpu_ratio,
            "loop_cpu_time_ratio": loop.cpu_us_per_verify / measured.cpu_us_per_request,
            "all_202": clean,
            "round_ratios": [r.ratio for r in rounds.each()],
            "rounds": args.rounds,
            "measured": asdict(measured),
            "bare_before": asdict(m.bare_before),
            "bare_after": asdict(m.bare_after),
            "driver": asdict(m.driver),
            "requests": args.requests,
            "concurrency": args.concurrency,
            "backend": backend,
            "event_loop": event_loop,
        },
    )


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["verify", *sys.argv[1:]]))
