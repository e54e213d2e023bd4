"""The JSON API under /api/v1/: every endpoint declared once, in one table.

The table produces the Starlette routes and the OpenAPI document alike
(`GET /api/v1/openapi.json`), so nothing is routed undocumented or documented unrouted.
"""

from __future__ import annotations

from starlette.responses import Response

from fedcop.models.media import ALT_MAX_LENGTH
from fedcop.web.api import groups, invitations, openapi, social, stories
from fedcop.web.api.endpoint import ApiRequest, Endpoint, Param
from fedcop.web.responses import JSONResponse

V1 = "/api/v1"
_STORY = f"{V1}/stories/{{story_id:int}}"
_GROUP = f"{V1}/groups/{{name}}"


_ALT = Param("alt", "a description of the image for people who cannot see it",
             {"type": "string", "minLength": 1, "maxLength": ALT_MAX_LENGTH})  # fmt: skip


async def openapi_document(call: ApiRequest) -> Response:
    return JSONResponse(openapi.document(ENDPOINTS, call.state.urls.base_url))


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", f"{V1}/openapi.json", openapi_document, "This API, as OpenAPI 3.1", "meta",
             auth=False),
    # Groups
    Endpoint("POST", f"{V1}/groups", groups.create_group, "Create a group the caller owns",
             "groups", ok=201, response="Group", body="GroupCreate", errors=(409,)),
    Endpoint("GET", f"{V1}/groups", groups.list_groups,
             "Local groups: all but private ones, plus private ones the caller is in", "groups",
             response="GroupList"),
    Endpoint("GET", _GROUP, groups.get_group, "A group", "groups", response="Group",
             errors=(404,)),
    Endpoint("POST", f"{_GROUP}/join", groups.join_group,
             "Join a group (or ask to, when it needs approval)", "groups",
             response="Membership", errors=(404, 409)),
    Endpoint("POST", f"{_GROUP}/members/{{person}}/approve", groups.approve_member,
             "Approve a person's request to join (moderators)", "groups",
             response="Membership", errors=(404, 422)),
    Endpoint("POST", f"{_GROUP}/members/{{person}}/role", groups.set_member_role,
             "Make a member a moderator, or a moderator a member (owners)", "groups",
             response="Membership", body="RoleChange", errors=(403, 404, 422)),
    Endpoint("GET", f"{_GROUP}/members", groups.list_members,
             "A group's members (a private group's only to its members)", "groups",
             response="MembershipList", errors=(404,)),
    Endpoint("PUT", f"{_GROUP}/icon", groups.set_icon,
             "Set the group's avatar (the raw image bytes; owners and moderators)", "groups",
             response="Group", raw_body=social.MEDIA_CONTENT, errors=(403, 404, 413, 422),
             query=(_ALT,)),
    Endpoint("DELETE", f"{_GROUP}/icon", groups.remove_icon,
             "Remove the group's avatar (owners and moderators)", "groups", response="Group",
             errors=(403, 404)),
    Endpoint("PUT", f"{_GROUP}/image", groups.set_header,
             "Set the group's header image (the raw image bytes; owners and moderators)",
             "groups", response="Group", raw_body=social.MEDIA_CONTENT,
             errors=(403, 404, 413, 422), query=(_ALT,)),
    Endpoint("DELETE", f"{_GROUP}/image", groups.remove_header,
             "Remove the group's header image (owners and moderators)", "groups",
             response="Group", errors=(403, 404)),
    # Invitations
    Endpoint("POST", f"{_GROUP}/invitations", invitations.invite,
             "Invite a local person to the group (owners and moderators)", "invitations",
             ok=201, response="Invitation", body="InvitationCreate", errors=(403, 404, 409, 422)),
    Endpoint("GET", f"{V1}/invitations", invitations.my_invitations,
             "The caller's open invitations to groups", "invitations",
             response="InvitationList"),
    Endpoint("POST", f"{_GROUP}/invitation/accept", invitations.accept,
             "Accept the caller's invitation: a member at once", "invitations",
             response="Membership", errors=(404, 422)),
    Endpoint("POST", f"{_GROUP}/invitation/decline", invitations.decline,
             "Decline the caller's invitation", "invitations", ok=204, errors=(404,)),
    # Stories
    Endpoint("POST", f"{_GROUP}/stories", stories.publish_story, "Publish a story in a group",
             "stories", ok=201, response="Story", body="StoryCreate", errors=(404,)),
    Endpoint("GET", f"{_GROUP}/stories", stories.group_stories,
             "A group's stories the caller may see, newest first", "stories",
             response="StoryPage", query=stories.PAGE_PARAMS, errors=(404, 422)),
    Endpoint("GET", _STORY, stories.get_story, "A story", "stories", response="Story",
             errors=(404,)),
    Endpoint("PATCH", _STORY, stories.edit_story,
             "Edit a story (author or group moderator); omitted fields stay as they are",
             "stories", response="Story", body="StoryEdit", errors=(404,)),
    Endpoint("DELETE", _STORY, stories.delete_story,
             "Delete a story everywhere it went (author or group moderator)", "stories",
             ok=204, errors=(404, 422)),
    Endpoint("POST", f"{_STORY}/withdraw-consent", stories.withdraw_consent,
             "Record that consent was withdrawn, and delete the story everywhere", "stories",
             ok=204, errors=(404, 422)),
    Endpoint("GET", f"{V1}/timelines/home", stories.home_timeline,
             "Stories from followed people and groups, and the caller's groups, newest first",
             "stories", response="StoryPage", query=stories.PAGE_PARAMS, errors=(422,)),
    # Conversation and the rest
    Endpoint("POST", f"{V1}/media", social.upload_media,
             "Upload an image (the raw bytes) to attach to a story", "media", ok=201,
             response="Media", raw_body=social.MEDIA_CONTENT, errors=(413, 422),
             query=(_ALT,)),
    Endpoint("POST", f"{V1}/comments", social.create_comment, "Comment on a story or comment",
             "conversation", ok=201, response="Comment", body="CommentCreate", errors=(404,)),
    Endpoint("POST", f"{V1}/reactions", social.create_reaction,
             "Like (Like) or share (Announce) a story or comment", "conversation", ok=201,
             response="Reaction", body="ReactionCreate", errors=(404, 409)),
    Endpoint("POST", f"{V1}/follows", social.follow, "Follow a person or group anywhere",
             "follows", ok=201, response="Follow", body="FollowTarget",
             errors=(404, 409, 503)),
    Endpoint("DELETE", f"{V1}/follows", social.unfollow, "Stop following", "follows", ok=204,
             body="FollowTarget", errors=(404, 503)),
    Endpoint("POST", f"{V1}/reports", social.create_report,
             "Report a story, comment or actor to this instance's moderators", "reports",
             ok=201, response="Report", body="ReportCreate", errors=(404,)),
)  # fmt: skip

routes = [endpoint.route() for endpoint in ENDPOINTS]
