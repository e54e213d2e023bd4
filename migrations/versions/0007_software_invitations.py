"""Other servers' software (NodeInfo) and who invited a group member

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 08:30:00.000000
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_software",
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("software", sa.String(length=64), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_instance_software")),
    )
    # On SQLite the batch rebuilds group_members and reflects `actors`, which its foreign keys
    # name; SQLAlchemy cannot reflect actors' expression index and says so on every first
    # start. actors itself is not rebuilt, so the index stays (tests/db/test_migrations.py).
    with (
        warnings.catch_warnings(),
        op.batch_alter_table("group_members", schema=None) as batch_op,
    ):
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        batch_op.add_column(sa.Column("invited_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_group_members_invited_by_id_actors"),
            "actors",
            ["invited_by_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_group_members_invited_by_id_actors"), type_="foreignkey"
        )
        batch_op.drop_column("invited_by_id")
    op.drop_table("instance_software")
