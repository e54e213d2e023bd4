"""Inbound activity handlers, registered on one table."""

from __future__ import annotations

from fedcop.federation.dispatch import DispatchTable
from fedcop.federation.handlers import actors, follows


def build_table() -> DispatchTable:
    table = DispatchTable()
    follows.register(table)
    actors.register(table)
    return table
