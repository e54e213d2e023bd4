"""OrderedCollection and OrderedCollectionPage documents."""

from __future__ import annotations

from typing import Any

from fedcop.ap.context import AS_CONTEXT


def ordered_collection(
    collection_id: str, total: int | None, *, first: str | None = None
) -> dict[str, Any]:
    """A collection root. `total` is None where the count itself would leak (private groups)."""
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": collection_id,
        "type": "OrderedCollection",
    }
    if total is not None:
        document["totalItems"] = total
    if first is not None:
        document["first"] = first
    else:
        document["orderedItems"] = []
    return document


def ordered_collection_page(
    page_id: str, part_of: str, items: list[Any], *, next_page: str | None = None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": part_of,
        "orderedItems": items,
    }
    if next_page is not None:
        document["next"] = next_page
    return document


def inline_collection(collection_id: str, items: list[Any]) -> dict[str, Any]:
    """A small collection with its items inline: Mastodon reads `featured` only this way."""
    return {
        "@context": AS_CONTEXT,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": len(items),
        "orderedItems": items,
    }
