"""Queue notifications: PostgreSQL tells listening workers when queue rows are inserted

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 16:30:00

A statement-level trigger on each work queue sends `NOTIFY <channel>` when rows are inserted
into it. PostgreSQL delivers the notification at commit (and drops it on rollback), once per
channel per transaction, so a worker process listening on the channel (fedcop/federation/
doorbell.py) wakes exactly when there is committed work, whichever process wrote it. SQLite
has no notifications: there a worker in another process finds new rows at its next poll.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# table -> channel; the names fedcop.federation.doorbell.CHANNELS listens on.
QUEUES = {"inbox_items": "fedcop_inbox", "deliveries": "fedcop_deliveries"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION fedcop_notify_queue() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_notify(TG_ARGV[0], ''); RETURN NULL; END $$"
    )
    for table, channel in QUEUES.items():
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT ON {table}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION fedcop_notify_queue('{channel}')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in QUEUES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
    op.execute("DROP FUNCTION IF EXISTS fedcop_notify_queue()")
