"""What every request handler may use, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker
from fedcop.federation.client import FederationClient, Signer
from fedcop.federation.doorbell import Doorbells
from fedcop.federation.intake import InboxWriter, RecentIds
from fedcop.federation.policy import FederationPolicy
from fedcop.federation.remote_actors import RemoteActors
from fedcop.settings import Settings


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: AsyncEngine
    db: SessionMaker
    urls: LocalUrls
    templates: Jinja2Templates
    client: FederationClient
    remote_actors: RemoteActors
    policy: FederationPolicy
    instance_signer: Signer
    inbox_writer: InboxWriter
    recent_ids: RecentIds
    doorbells: Doorbells


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.fedcop
    return state
