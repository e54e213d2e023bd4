"""Key rotation: the replaced key signs the Update that announces its successor

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 04:40:00

GoToSocial verifies a signature with the key it has cached for the key id and does not refetch
it, so an Update of the actor signed with the new key is refused, and so is everything after
it. The previous private key is kept beside the new one, with the id of the outbox activity
(the rotation's Update) that is signed with it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("local_keys") as batch:
        batch.add_column(sa.Column("previous_private_key_pem", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rotation_activity_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("local_keys") as batch:
        batch.drop_column("rotation_activity_id")
        batch.drop_column("previous_private_key_pem")
