"""Where each local thing lives. Every local URL is built here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass

from fedcop.models.actor import ActorType

INSTANCE_ACTOR_PATH = "/actor"
_COLLECTION_PREFIX = {ActorType.PERSON: "users", ActorType.GROUP: "groups"}


@dataclass(frozen=True, slots=True)
class LocalUrls:
    base_url: str  # scheme://domain, no trailing slash

    def actor(self, actor_type: str, username: str) -> str:
        if actor_type == ActorType.APPLICATION:
            return self.instance_actor
        return f"{self.base_url}/{_COLLECTION_PREFIX[ActorType(actor_type)]}/{username}"

    @property
    def domain(self) -> str:
        """The authority (host, and port if any): what follows the `@` in handles."""
        return self.base_url.split("://", 1)[1]

    def handle(self, username: str) -> str:
        return f"@{username}@{self.domain}"

    @property
    def instance_actor(self) -> str:
        return self.base_url + INSTANCE_ACTOR_PATH

    @property
    def shared_inbox(self) -> str:
        return f"{self.base_url}/inbox"

    def is_local(self, url: str) -> bool:
        return url == self.base_url or url.startswith(self.base_url + "/")

    @staticmethod
    def key_id(actor_id: str) -> str:
        # The `#main-key` fragment form: Lemmy's library and bookwyrm require the `#`
        # (https://github.com/bookwyrm-social/bookwyrm/issues/2812).
        return f"{actor_id}#main-key"

    @staticmethod
    def inbox(actor_id: str) -> str:
        return f"{actor_id}/inbox"

    @staticmethod
    def outbox(actor_id: str) -> str:
        return f"{actor_id}/outbox"

    @staticmethod
    def followers(actor_id: str) -> str:
        return f"{actor_id}/followers"

    @staticmethod
    def following(actor_id: str) -> str:
        return f"{actor_id}/following"

    @staticmethod
    def featured(actor_id: str) -> str:
        return f"{actor_id}/collections/featured"
