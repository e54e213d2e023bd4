"""The `fedcop` command group and what every command shares: settings, errors, state."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import click
from sqlalchemy.exc import DBAPIError, OperationalError

from fedcop import db as database
from fedcop.app import build_state
from fedcop.errors import FedcopError, SettingsError
from fedcop.federation.remote_actors import ResolveError
from fedcop.settings import Settings
from fedcop.web.state import AppState

P = ParamSpec("P")
T = TypeVar("T")


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        click.echo(f"fedcop: {exc}", err=True)
        sys.exit(2)


def friendly_errors(func: Callable[P, T]) -> Callable[P, T]:
    """Turn expected failures into one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except FedcopError as exc:
            raise click.ClickException(str(exc)) from exc
        except ResolveError as exc:  # a handle that is not one, a server refused or unreachable
            raise click.ClickException(exc.reason) from exc
        except (OperationalError, DBAPIError, OSError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise click.ClickException(f"database unreachable: {reason}") from exc

    return wrapper


def with_state(action: Callable[[AppState], Awaitable[T]]) -> T:
    settings = load_settings()

    async def run() -> T:
        engine = database.engine_for(settings)
        try:
            state = await build_state(settings, engine)
            try:
                return await action(state)
            finally:
                await state.inbox_writer.aclose()
                await state.client.aclose()
        finally:
            await engine.dispose()

    return asyncio.run(run())


@click.group()
@click.version_option(package_name="fedcop")
def main() -> None:
    """fedcop: a federated server for communities of practice."""
