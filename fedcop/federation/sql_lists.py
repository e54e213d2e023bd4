"""List parameters whose SQL text does not depend on the list's length."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam
from sqlalchemy.orm import QueryableAttribute


def member_of(
    column: ColumnElement[Any] | QueryableAttribute[Any], name: str, postgresql: bool
) -> ColumnElement[bool]:
    """`column IN (:name)` for a list parameter `name`; on PostgreSQL `column = ANY(:name)`,
    one SQL text (one prepared statement) for any length."""
    if postgresql:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True, type_=column.type))
