"""Domain blocks and outbox activities

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 05:30:41.245584
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "domain_blocks",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_domain_blocks")),
    )
    op.create_table(
        "outbox_activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ap_id", sa.String(length=2048), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("activity", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fanned_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["actors.id"],
            name=op.f("fk_outbox_activities_actor_id_actors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_activities")),
        sa.UniqueConstraint("ap_id", name=op.f("uq_outbox_activities_ap_id")),
    )
    with op.batch_alter_table("outbox_activities", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_activities_actor_id_id", ["actor_id", "id"], unique=False)
        batch_op.create_index("ix_outbox_activities_pending", ["fanned_out_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_activities", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_activities_pending")
        batch_op.drop_index("ix_outbox_activities_actor_id_id")

    op.drop_table("outbox_activities")
    op.drop_table("domain_blocks")
