"""The dispatch table: one small handler per (activity type, object type).

Handlers check first and write after; every write is idempotent, because an activity may be
processed twice (a worker died after acting but before marking it done).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fedcop.ap.checks import InboundActivity
from fedcop.ap.urls import LocalUrls
from fedcop.db import SessionMaker
from fedcop.federation.remote_actors import RemoteActors


class IgnoredError(Exception):
    """Understood, but nothing for this server to do (recorded as ignored, not as a failure)."""


class RejectedError(Exception):
    """Refused for good: the activity breaks a rule only visible with what we know."""


@dataclass(frozen=True, slots=True)
class HandlerContext:
    db: SessionMaker
    urls: LocalUrls
    actors: RemoteActors


Handler = Callable[[HandlerContext, InboundActivity], Awaitable[None]]


class DispatchTable:
    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str | None], Handler] = {}

    def on(self, activity_type: str, *object_types: str | None) -> Callable[[Handler], Handler]:
        """Register a handler; object type None matches an object given only by its id."""

        def register(handler: Handler) -> Handler:
            for object_type in object_types or (None,):
                self._handlers[(activity_type, object_type)] = handler
            return handler

        return register

    def handler_for(self, activity: InboundActivity) -> Handler | None:
        return self._handlers.get((activity.type, activity.object_type)) or self._handlers.get(
            (activity.type, None)
        )

    def known(self) -> list[tuple[str, str | None]]:
        return sorted(self._handlers, key=lambda key: (key[0], key[1] or ""))
