"""Actors, their keys and group members

Revision ID: 0001
Revises:
Create Date: 2026-11-26 05:21:29.353257
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "actors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ap_id", sa.String(length=2048), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("local", sa.Boolean(), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("profile_fields", sa.JSON(), nullable=False),
        sa.Column("icon_url", sa.String(length=2048), nullable=True),
        sa.Column("image_url", sa.String(length=2048), nullable=True),
        sa.Column("manually_approves_followers", sa.Boolean(), nullable=False),
        sa.Column("discoverable", sa.Boolean(), nullable=False),
        sa.Column("indexable", sa.Boolean(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("group_visibility", sa.String(length=16), nullable=True),
        sa.Column("inbox_url", sa.String(length=2048), nullable=True),
        sa.Column("outbox_url", sa.String(length=2048), nullable=True),
        sa.Column("shared_inbox_url", sa.String(length=2048), nullable=True),
        sa.Column("followers_url", sa.String(length=2048), nullable=True),
        sa.Column("following_url", sa.String(length=2048), nullable=True),
        sa.Column("featured_url", sa.String(length=2048), nullable=True),
        sa.Column("profile_url", sa.String(length=2048), nullable=True),
        sa.Column("public_key_id", sa.String(length=2048), nullable=True),
        sa.Column("public_key_pem", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actors")),
        sa.UniqueConstraint("ap_id", name=op.f("uq_actors_ap_id")),
    )
    with op.batch_alter_table("actors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_actors_domain"), ["domain"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_actors_public_key_id"), ["public_key_id"], unique=False
        )

    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["actors.id"],
            name=op.f("fk_group_members_actor_id_actors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["actors.id"],
            name=op.f("fk_group_members_group_id_actors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "actor_id", name=op.f("pk_group_members")),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_members_actor_id"), ["actor_id"], unique=False)

    # Local handles are unique case-insensitively across people and groups (INTEROP §1).
    op.create_index(
        "uq_actors_local_username",
        "actors",
        [sa.text("lower(username)")],
        unique=True,
        sqlite_where=sa.text("local"),
        postgresql_where=sa.text("local"),
    )

    op.create_table(
        "local_keys",
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("private_key_pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["actors.id"],
            name=op.f("fk_local_keys_actor_id_actors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("actor_id", name=op.f("pk_local_keys")),
    )


def downgrade() -> None:
    op.drop_index("uq_actors_local_username", table_name="actors")
    op.drop_table("local_keys")
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_members_actor_id"))

    op.drop_table("group_members")
    with op.batch_alter_table("actors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actors_public_key_id"))
        batch_op.drop_index(batch_op.f("ix_actors_domain"))

    op.drop_table("actors")
