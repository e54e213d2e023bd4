"""Creating local actors in tests through the same services the CLI uses."""

from __future__ import annotations

from fedcop.services.actors import NewActor, create_group, create_person
from fedcop.web.state import AppState


async def make_person(state: AppState, username: str = "alice", **kwargs: object) -> NewActor:
    return await create_person(state.db, state.urls, username, **kwargs)  # type: ignore[arg-type]


async def make_group(
    state: AppState, username: str = "frailty", *, owner: str | None = None, **kwargs: object
) -> NewActor:
    return await create_group(
        state.db,
        state.urls,
        username,
        name=kwargs.pop("name", "Frailty CoP"),
        owner=owner,
        **kwargs,  # type: ignore[arg-type]
    )
