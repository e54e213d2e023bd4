"""Who here may see a post from elsewhere, read from how its author addressed it.

Mastodon addresses a followers-only post to the author's followers collection, and a
"mentioned people only" post to the mentioned accounts alone, with no collection at all
(https://docs.joinmastodon.org/spec/activitypub/#to-cc; INTEROP §6). fedcop shows a stored
story to its audience and every reply to whoever can see the thread; it has no private
messages. So a post to named people only is not kept, and a reply is kept only when it is
addressed at least as widely as the thread it would be shown in.
"""

from __future__ import annotations

from fedcop.ap.remote_content import RemoteContent
from fedcop.ap.urls import LocalUrls
from fedcop.federation.access import open_to_all
from fedcop.models import SEEN_BY_ANYONE, Actor, Story, Visibility


def followers_of(actor: Actor) -> str | None:
    return LocalUrls.followers(actor.ap_id) if actor.local else actor.followers_url


def story_visibility(data: RemoteContent, author: Actor, group: Actor | None) -> str | None:
    """The visibility a top-level post is stored with; None: it is for named people only.

    Not public: for the author's followers when their collection is addressed; for the
    group's members when only the group (or its followers) is.
    """
    if data.visibility in SEEN_BY_ANYONE:
        return data.visibility
    recipients = set(data.recipients)
    if followers_of(author) in recipients:
        return Visibility.FOLLOWERS
    if group is not None and recipients <= {group.ap_id, followers_of(group)}:
        return Visibility.MEMBERS  # the group alone: a direct message naming others is not
    return None


def reply_fits_thread(data: RemoteContent, thread: Story, group: Actor | None) -> bool:
    """Whether a reply may be shown to everyone who can see `thread` (its group: `group`)."""
    if data.visibility in SEEN_BY_ANYONE:
        return True
    if open_to_all(thread, group):
        return False  # a narrower reply in a thread anyone can read
    # A thread for the group's members (or in a private group): a reply to the group is
    # meant for them. Anything narrower (the author alone, the replier's followers) is not.
    return group is not None and _addresses_group(set(data.recipients), group)


def _addresses_group(recipients: set[str], group: Actor) -> bool:
    return group.ap_id in recipients or followers_of(group) in recipients
