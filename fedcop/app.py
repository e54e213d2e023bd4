"""The web application: routes, error handling and the lifespan that builds shared state."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.templating import Jinja2Templates

from fedcop import __version__
from fedcop import db as database
from fedcop.ap.urls import LocalUrls
from fedcop.errors import FedcopError
from fedcop.federation.client import FederationClient
from fedcop.federation.doorbell import Doorbells
from fedcop.federation.intake import InboxWriter, RecentIds
from fedcop.federation.policy import FederationPolicy
from fedcop.federation.remote_actors import RemoteActors
from fedcop.security.ssrf import AddressGuard, Resolve, system_resolve
from fedcop.services.actors import ensure_instance_actor
from fedcop.services.keys import local_signer
from fedcop.settings import Settings
from fedcop.web import actors, inbox, media, pages, stories, wellknown
from fedcop.web.api import routes as api
from fedcop.web.errors import http_exception_handler, unexpected_error_handler
from fedcop.web.front import FedcopApp
from fedcop.web.state import AppState
from fedcop.web.throttle import ThrottleLimits
from fedcop.worker import serve_workers

log = logging.getLogger(__name__)
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


class DatabaseNotMigratedError(FedcopError):
    """PostgreSQL is behind the code's schema; `fedcop migrate` must run first."""


def create_app(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    network: Network | None = None,
    run_workers: bool = False,
    freeze_after_startup: bool = False,
) -> Starlette:
    """Build the ASGI app. The engine is created in the lifespan unless one is handed in;
    `network` replaces the outbound transport and name resolution (tests); `run_workers`
    runs the background queues inside this process (the embedded default);
    `freeze_after_startup` is for processes that serve one app for their whole life
    (`fedcop serve`), not for tests that build many."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_engine = engine is None
        active_engine = engine or database.engine_for(settings)
        try:
            state = app.state.fedcop = await build_state(settings, active_engine, network)
            if freeze_after_startup:
                _freeze_startup_objects()
            async with _serving(state, run_workers=run_workers):
                yield
        finally:
            if own_engine:
                await active_engine.dispose()

    # Inbox POSTs never reach the routes or middleware: FedcopApp answers them first
    # (web/front.py). The inbox routes stay, so other methods on them get their 405.
    return FedcopApp(
        inbox_limits=throttle_limits(settings),
        routes=inbox.routes
        + wellknown.routes
        + actors.routes
        + stories.routes
        + media.routes
        + api.routes
        + pages.routes,
        exception_handlers={
            HTTPException: http_exception_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
    )


def served_app_with_workers() -> Starlette:
    """`fedcop serve --processes N`: each process's app, built from FEDCOP_* (uvicorn imports
    this by name in every process it starts)."""
    return create_app(Settings.from_env(), run_workers=True, freeze_after_startup=True)


def served_web_app() -> Starlette:
    """As `served_app_with_workers`, for `--no-workers`."""
    return create_app(Settings.from_env(), run_workers=False, freeze_after_startup=True)


def _freeze_startup_objects() -> None:
    # Everything made so far (modules, mappers, templates, state) lives as long as the process;
    # frozen, the collector stops walking it again on every full collection (the first 8,000
    # inbox requests: 166 -> 124 µs of CPU each).
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def _serving(state: AppState, *, run_workers: bool) -> AsyncIterator[None]:
    """While the app serves: the background queues if asked for (riding out database outages
    as `fedcop worker` does), then a clean shutdown of them, the inbox writer and the client."""
    stop = asyncio.Event()
    background = asyncio.create_task(serve_workers(state, stop)) if run_workers else None
    try:
        yield
    finally:
        stop.set()
        if background is not None:
            await background
        await state.inbox_writer.aclose()
        await state.client.aclose()


def throttle_limits(settings: Settings) -> ThrottleLimits:
    return ThrottleLimits(
        max_in_flight=settings.inbox_max_in_flight,
        max_in_flight_per_domain=settings.inbox_max_in_flight_per_domain,
        retry_after_seconds=settings.inbox_retry_after_seconds,
    )


@dataclass(frozen=True, slots=True)
class Network:
    """How this process reaches other servers; tests swap in in-process peers."""

    transport: httpx.AsyncBaseTransport | None = None
    resolve: Resolve = system_resolve


async def build_state(
    settings: Settings, engine: AsyncEngine, network: Network | None = None
) -> AppState:
    network = network or Network()
    await prepare_database(settings, engine)
    doorbells = Doorbells()
    db = database.session_maker(engine, info=doorbells.session_info())
    urls = LocalUrls(settings.base_url)
    instance_signer = await local_signer(db, await ensure_instance_actor(db, urls, settings.host))
    guard = AddressGuard(allow_private=settings.allow_private_addresses, resolve=network.resolve)
    client = FederationClient(
        user_agent=f"fedcop/{__version__} (+{settings.base_url}/)",
        guard=guard,
        transport=network.transport,
    )
    inbox_writer = InboxWriter(engine, doorbell=doorbells.inbox)
    remote_actors = RemoteActors(
        db,
        client,
        urls,
        instance_signer,
        max_age=timedelta(hours=settings.remote_actor_max_age_hours),
        remote_scheme=settings.scheme,
        writes=inbox_writer.execute_write,
    )
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    templates.env.globals.update(
        instance_name=settings.instance_name,
        instance_description=settings.instance_description,
    )
    return AppState(
        settings=settings,
        engine=engine,
        db=db,
        urls=urls,
        templates=templates,
        client=client,
        remote_actors=remote_actors,
        policy=FederationPolicy(db),
        instance_signer=instance_signer,
        inbox_writer=inbox_writer,
        recent_ids=RecentIds(),
        doorbells=doorbells,
    )


async def prepare_database(settings: Settings, engine: AsyncEngine) -> None:
    """Migrate SQLite by itself; refuse to start on an unmigrated PostgreSQL."""
    if settings.is_sqlite:
        await database.upgrade(engine)
    elif not await database.is_up_to_date(engine):
        raise DatabaseNotMigratedError(
            "the PostgreSQL schema is not at the latest revision: run `fedcop migrate` first"
        )
