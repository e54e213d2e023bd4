"""Images uploaded by local people, to be attached to stories.

A row per upload, a file per distinct content: files are content-addressed by the SHA-256 of the
re-encoded bytes, so the same picture uploaded twice (two rows, perhaps two alt texts) is stored
once. The file lives at `media_dir/ab/cd/<sha256>.<ext>` (see `services/media.py`).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fedcop.models.base import Base, UTCDateTime, utcnow

ALT_MAX_LENGTH = 1500  # Mastodon's limit for a media description


class ImageType(enum.StrEnum):
    """The only types stored or served: what every browser shows and no browser executes."""

    JPEG = "image/jpeg"
    PNG = "image/png"
    WEBP = "image/webp"
    GIF = "image/gif"

    @property
    def extension(self) -> str:
        return "jpg" if self is ImageType.JPEG else self.value.removeprefix("image/")


class Media(Base):
    __tablename__ = "media"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("actors.id", ondelete="CASCADE"), index=True)
    # The story this image is attached to; NULL between upload and posting. Deliberately not a
    # foreign key yet: media and stories were written in parallel. Make it one to stories.id
    # (with the ON DELETE the stories service wants) in a later migration.
    story_id: Mapped[int | None] = mapped_column(Integer, index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # lowercase hex of the file
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    alt: Mapped[str] = mapped_column(Text)
    blurhash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # The service refuses these with a message first; the constraints keep any other
        # writer from storing a type the media route would then serve, or an image with no alt.
        CheckConstraint(
            "content_type IN ('image/jpeg', 'image/png', 'image/webp', 'image/gif')",
            name="content_type",
        ),
        CheckConstraint(f"length(alt) BETWEEN 1 AND {ALT_MAX_LENGTH}", name="alt_length"),
    )
