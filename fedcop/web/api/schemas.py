"""The API's JSON Schemas: published in the OpenAPI document and used to check request bodies.

Limits repeat the services' own (they remain the final word); stating them here lets clients
check before sending and gives a field-by-field error before a service is even called.
"""

from __future__ import annotations

from typing import Any

from fedcop.models import ConsentScope, GroupVisibility, MembershipState, Visibility
from fedcop.services import stories
from fedcop.services.comments import MAX_COMMENT
from fedcop.services.reports import MAX_COMMENT as MAX_REPORT

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **properties: Schema) -> Schema:
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def _text(max_length: int, *, min_length: int = 0, nullable: bool = False) -> Schema:
    schema: Schema = {"type": ["string", "null"] if nullable else "string"}
    schema["maxLength"] = max_length
    if min_length:
        schema["minLength"] = min_length
    return schema


_URL = {"type": "string", "format": "uri", "maxLength": 2048}
_WHEN = {"type": "string", "format": "date-time"}
_WHEN_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_STORY_VISIBILITIES = [v.value for v in Visibility if v != Visibility.DIRECT]
_TAGS = {"type": "array", "items": _text(64, min_length=1), "maxItems": stories.MAX_TAGS}

_ACTOR = _obj(
    ["ap_id", "handle", "name"],
    ap_id=_URL,
    handle={"type": "string", "description": "@username@host"},
    name={"type": "string"},
)
_MEMBERSHIP = _obj(
    ["group", "member", "role", "state"],
    group=_URL,
    member=_URL,
    role={"type": "string", "enum": ["owner", "moderator", "member"]},
    state={"type": "string", "enum": [s.value for s in MembershipState]},
)
_GROUP = _obj(
    ["username", "handle", "ap_id", "name", "summary", "rules", "topics", "posting",
     "visibility", "member_count", "icon", "image", "membership"],
    username={"type": "string"},
    handle={"type": "string"},
    ap_id=_URL,
    name={"type": "string"},
    summary={"type": "string", "description": "sanitised HTML"},
    rules={"type": ["string", "null"], "description": "sanitised HTML"},
    topics={"type": "array", "items": {"type": "string"}},
    posting={"type": "string", "enum": ["members", "followers"]},
    visibility={"type": "string", "enum": [v.value for v in GroupVisibility]},
    member_count={"type": "integer"},
    icon={"type": ["string", "null"], "format": "uri", "description": "the avatar's URL"},
    image={"type": ["string", "null"], "format": "uri", "description": "the header's URL"},
    membership={"oneOf": [ref("Membership"), {"type": "null"}]},
)  # fmt: skip
_COUNTS = _obj(
    ["likes", "shares", "comments"],
    likes={"type": "integer"},
    shares={"type": "integer"},
    comments={"type": "integer"},
)
_STORY_FIELDS: dict[str, Schema] = {
    "id": {"type": "integer", "description": "the API's id for the story (use in paths)"},
    "ap_id": {**_URL, "description": "the ActivityPub id (use in comments and reactions)"},
    "url": _URL,
    "author": ref("Actor"),
    "group": {"oneOf": [ref("Actor"), {"type": "null"}]},
    "title": {"type": "string"},
    "summary": {"type": "string", "description": "sanitised HTML"},
    "content_warning": {"type": ["string", "null"]},
    "visibility": {"type": "string", "enum": [v.value for v in Visibility]},
    "tags": {"type": "array", "items": {"type": "string"}},
    "published_at": _WHEN,
    "edited_at": _WHEN_OR_NULL,
    "counts": ref("Counts"),
}
_STORY_SUMMARY = _obj(list(_STORY_FIELDS), **_STORY_FIELDS)
_STORY = _obj(
    [*_STORY_FIELDS, "content"],
    **_STORY_FIELDS,
    content={"type": "string", "description": "sanitised HTML"},
    source={"type": ["string", "null"], "description": "the Markdown, for its author only"},
)
_CONSENT = _obj(
    ["given_by", "scope"],
    given_by=_text(255, min_length=1),
    scope={"type": "string", "enum": [s.value for s in ConsentScope]},
    given_at={**_WHEN, "description": "when consent was given; defaults to now"},
)
_STORY_EDITABLE: dict[str, Schema] = {
    "title": _text(stories.MAX_TITLE, min_length=1),
    "summary": _text(stories.MAX_SUMMARY, min_length=1),
    "body": {**_text(stories.MAX_BODY), "description": "Markdown"},
    "tags": _TAGS,
    "content_warning": _text(500, nullable=True),
    "pii_confirmed": {
        "type": "boolean",
        "enum": [True],
        "description": "the author confirms the story holds no patient-identifiable information",
    },
}
_STORY_CREATE = _obj(
    ["title", "summary", "body", "pii_confirmed"],
    **_STORY_EDITABLE,
    visibility={"type": "string", "enum": _STORY_VISIBILITIES, "default": "public"},
    consent={"oneOf": [ref("Consent"), {"type": "null"}]},
    image_ids={"type": "array", "items": {"type": "integer"}, "maxItems": 4},
)
_STORY_EDIT = _obj(
    ["pii_confirmed"],
    **_STORY_EDITABLE,
    visibility={"type": "string", "enum": _STORY_VISIBILITIES, "description": "cannot change"},
)

SCHEMAS: dict[str, Schema] = {
    "Error": _obj(["error"], error={"type": "string"}),
    "Actor": _ACTOR,
    "Membership": _MEMBERSHIP,
    "MembershipList": _obj(["items"], items={"type": "array", "items": ref("Membership")}),
    "InvitationCreate": _obj(
        ["person"], person={**_text(30, min_length=1), "description": "a local person's username"}
    ),
    "Invitation": _obj(
        ["group", "group_handle", "group_name", "invitee", "invited_by", "created_at"],
        group=_URL,
        group_handle={"type": "string"},
        group_name={"type": "string"},
        invitee=_URL,
        invited_by={"type": ["string", "null"], "format": "uri"},
        created_at=_WHEN,
    ),
    "InvitationList": _obj(["items"], items={"type": "array", "items": ref("Invitation")}),
    "Group": _GROUP,
    "GroupList": _obj(["items"], items={"type": "array", "items": ref("Group")}),
    "GroupCreate": _obj(
        ["username", "name"],
        username=_text(30, min_length=1),
        name=_text(255, min_length=1),
        visibility={"type": "string", "enum": [v.value for v in GroupVisibility]},
        description={**_text(10_000), "description": "Markdown"},
        rules={**_text(10_000), "description": "Markdown"},
        topics={"type": "array", "items": _text(64, min_length=1), "maxItems": 10},
        posting={
            "type": "string",
            "enum": ["members", "followers"],
            "description": "who may post: members (default) or any follower",
        },
    ),
    "RoleChange": _obj(["role"], role={"type": "string", "enum": ["moderator", "member"]}),
    "Counts": _COUNTS,
    "StorySummary": _STORY_SUMMARY,
    "Story": _STORY,
    "StoryPage": _obj(
        ["items", "next_max_id"],
        items={"type": "array", "items": ref("StorySummary")},
        next_max_id={
            "type": ["integer", "null"],
            "description": "pass as max_id for older stories; null at the end",
        },
    ),
    "Consent": _CONSENT,
    "StoryCreate": _STORY_CREATE,
    "StoryEdit": _STORY_EDIT,
    "Media": _obj(
        ["id", "content_type", "width", "height", "alt", "blurhash"],
        id={"type": "integer", "description": "pass in a story's image_ids"},
        content_type={"type": "string"},
        width={"type": "integer"},
        height={"type": "integer"},
        alt={"type": "string"},
        blurhash={"type": ["string", "null"]},
    ),
    "CommentCreate": _obj(
        ["in_reply_to", "body"],
        in_reply_to={**_URL, "description": "the ActivityPub id of a story or comment"},
        body={**_text(MAX_COMMENT, min_length=1), "description": "Markdown"},
        content_warning=_text(500, nullable=True),
    ),
    "Comment": _obj(
        ["ap_id", "in_reply_to", "content", "content_warning", "published_at"],
        ap_id=_URL,
        in_reply_to=_URL,
        content={"type": "string", "description": "sanitised HTML"},
        content_warning={"type": ["string", "null"]},
        published_at=_WHEN,
    ),
    "ReactionCreate": _obj(
        ["type", "object"],
        type={"type": "string", "enum": ["Like", "Announce"]},
        object={**_URL, "description": "the ActivityPub id of a story or comment"},
    ),
    "Reaction": _obj(["ap_id", "type", "object"], ap_id=_URL, type={"type": "string"}, object=_URL),
    "FollowTarget": _obj(
        ["target"],
        target={**_text(2048, min_length=1), "description": "@user@host or an actor URL"},
    ),
    "Follow": _obj(
        ["id", "follower", "followed", "state"],
        id={"type": "integer"},
        follower=_URL,
        followed=_URL,
        state={"type": "string", "enum": ["pending", "accepted"]},
    ),
    "ReportCreate": _obj(
        ["object"],
        object={**_URL, "description": "the ActivityPub id of a story, comment or actor"},
        comment=_text(MAX_REPORT),
        forward={"type": "boolean", "description": "also send it to the object's server as a Flag"},
    ),
    "Report": _obj(
        ["id", "object", "comment", "created_at", "forwarded"],
        id={"type": "integer"},
        object=_URL,
        comment={"type": "string"},
        created_at=_WHEN,
        forwarded={"type": "boolean", "description": "sent to the object's server as a Flag"},
    ),
}
