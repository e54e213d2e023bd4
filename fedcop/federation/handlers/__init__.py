"""Inbound activity handlers, registered on one table."""

from __future__ import annotations

from fedcop.federation.dispatch import DispatchTable
from fedcop.federation.handlers import (
    actors,
    content,
    follows,
    group_announces,
    moderation,
    reactions,
)


def build_table() -> DispatchTable:
    table = DispatchTable()
    follows.register(table)
    actors.register(table)
    content.register(table)
    reactions.register(table)
    moderation.register(table)
    group_announces.register(table)
    return table
