"""The request-body checker: the schema subset the API uses, with field-by-field reasons."""

from __future__ import annotations

from typing import Any

import pytest

from fedcop.errors import ValidationError
from fedcop.web.api.schemas import SCHEMAS
from fedcop.web.api.validate import check


def _reason(body: Any, schema: str = "StoryCreate") -> str:
    with pytest.raises(ValidationError) as caught:
        check(body, SCHEMAS[schema], SCHEMAS, "body")
    return str(caught.value)


def _story(**changes: Any) -> dict[str, Any]:
    return {"title": "T", "summary": "S", "body": "B", "pii_confirmed": True, **changes}


def test_a_valid_body_passes() -> None:
    consent = {"given_by": "a carer", "scope": "group", "given_at": "2025-01-31T09:30:00+01:00"}
    check(_story(tags=["a"], consent=consent, image_ids=[1]), SCHEMAS["StoryCreate"], SCHEMAS,
          "body")  # fmt: skip
    check(_story(consent=None, content_warning=None), SCHEMAS["StoryCreate"], SCHEMAS, "body")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_story(title=""), "body.title: must not be empty"),
        (_story(title="x" * 201), "body.title: must be at most 200 characters"),
        (_story(pii_confirmed=False), "body.pii_confirmed: must be one of True"),
        (_story(pii_confirmed="yes"), "body.pii_confirmed: must be boolean"),
        (_story(image_ids=[True]), "body.image_ids[0]: must be integer"),
        (_story(image_ids=[1, 2, 3, 4, 5]), "body.image_ids: at most 4 items"),
        (_story(tags="falls"), "body.tags: must be array"),
        (_story(visibility="direct"), "body.visibility: must be one of"),
        (_story(consent={"scope": "group"}), "body.consent.given_by: is required"),
        (_story(consent={"given_by": "x", "scope": "world"}), "body.consent.scope: must be one"),
        (_story(consent={"given_by": "x", "scope": "group", "given_at": "soon"}),
         "body.consent.given_at: must be a date-time"),
        (_story(consent={"given_by": "x", "scope": "group", "given_at": "2025-01-31T09:30"}),
         "body.consent.given_at: needs a time zone"),
        (_story(consent="yes"), "body.consent: must be object"),
        (_story(extra=1), "body.extra: is not a known field"),
        ({"title": "T"}, "body.summary: is required"),
    ],
)  # fmt: skip
def test_refusals_name_the_field(body: dict[str, Any], reason: str) -> None:
    assert _reason(body).startswith(reason)


def test_every_schema_reference_resolves() -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if "$ref" in node else []
            return own + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for name in {r.rsplit("/", 1)[1] for r in refs(SCHEMAS)}:
        assert name in SCHEMAS
