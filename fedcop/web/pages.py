"""Pages for people: the instance's home page."""

from __future__ import annotations

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fedcop.models import Actor, ActorType, GroupVisibility
from fedcop.web import pages_groups
from fedcop.web.state import app_state


async def home(request: Request) -> Response:
    state = app_state(request)
    groups_query = (
        select(Actor)
        .where(
            Actor.local,
            Actor.type == ActorType.GROUP,
            Actor.deleted_at.is_(None),
            Actor.group_visibility != GroupVisibility.PRIVATE,
        )
        .order_by(Actor.name)
        .limit(200)
    )
    people_query = select(func.count()).where(
        Actor.local, Actor.type == ActorType.PERSON, Actor.deleted_at.is_(None)
    )
    async with state.db() as session:
        groups = list((await session.scalars(groups_query)).all())
        people_count = await session.scalar(people_query) or 0
    return state.templates.TemplateResponse(
        request,
        "home.html",
        {"groups": groups, "people_count": people_count, "domain": state.urls.domain},
    )


routes = [Route("/", home), *pages_groups.routes]
