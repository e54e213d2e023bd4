"""An in-process network: requests are routed by host to fedcop apps or fake peers.

Nothing leaves the process; every request is recorded, so tests can assert what was sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette

from fedcop.app import Network, create_app
from fedcop.db import create_engine
from fedcop.web.state import AppState
from fedcop.worker import build_workers
from tests.support.databases import DatabaseFactory
from tests.support.peers import FakePeer
from tests.support.settings import make_settings

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class InProcessNetwork(httpx.AsyncBaseTransport):
    routes: dict[str, httpx.AsyncBaseTransport] = field(default_factory=dict)
    sent: list[httpx.Request] = field(default_factory=list)

    def add_app(self, host: str, app: Starlette) -> None:
        self.routes[host] = httpx.ASGITransport(app=app)

    def add_handler(self, host: str, handler: Handler) -> None:
        self.routes[host] = httpx.MockTransport(handler)

    def add_peer(self, peer: FakePeer) -> FakePeer:
        """Route the fake peer's host to it; returns it, so a test can make and add one at once."""
        self.add_handler(peer.host, peer.handler)
        return peer

    def remove(self, host: str) -> None:
        self.routes.pop(host, None)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        transport = self.routes.get(request.url.netloc.decode())
        if transport is None:
            raise httpx.ConnectError(f"no host {request.url.netloc.decode()} on this network")
        return await transport.handle_async_request(request)

    async def resolve(self, host: str, port: int) -> list[str]:
        # Every in-process host "is" loopback; instances run with private addresses allowed.
        return ["127.0.0.1"]

    def as_network(self) -> Network:
        return Network(transport=self, resolve=self.resolve)

    def requests_to(self, host: str) -> list[httpx.Request]:
        return [r for r in self.sent if r.url.netloc.decode() == host]


@contextlib.asynccontextmanager
async def fedcop_instance(
    net: InProcessNetwork,
    factory: DatabaseFactory,
    backend: str,
    domain: str,
    **settings_overrides: object,
) -> AsyncIterator[AppState]:
    """A fedcop instance reachable on `net` as https://domain, with its own fresh database."""
    url = await factory.create_async(backend, migrated=True)
    settings = make_settings(url, domain=domain, allow_private_addresses=True, **settings_overrides)
    engine = create_engine(url)
    app = create_app(settings, engine=engine, network=net.as_network())
    try:
        async with app.router.lifespan_context(app):
            net.add_app(domain, app)
            yield app.state.fedcop
            net.remove(domain)
    finally:
        await engine.dispose()
        await factory.drop_async(url)


async def settle(*states: AppState) -> None:
    """Run every instance's queues until the whole network is quiet (bounded)."""
    workers = [build_workers(state) for state in states]
    for _ in range(20):
        if sum([await w.run_until_idle() for w in workers]) == 0:
            return
    raise AssertionError("the network did not settle")
