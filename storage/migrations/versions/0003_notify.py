"""Notifications: the delivery log of webhooks and e-mails.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Written by hand in the style of 0002; tests/test_storage_migrations.py checks that it and
storage/notify_models.py agree on both backends.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notify_deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(2000), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("delivered_at", WHEN, nullable=True),
        sa.CheckConstraint("channel IN ('webhook', 'email')", name=op.f("ck_notify_deliveries_channel")),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')",
                           name=op.f("ck_notify_deliveries_status")),
        sa.CheckConstraint("event IN ('state_change', 'blocklisted')",
                           name=op.f("ck_notify_deliveries_event")),
        sa.PrimaryKeyConstraint("id", name="pk_notify_deliveries"),
    )
    op.create_index("ix_notify_deliveries_status_next_attempt_at", "notify_deliveries",
                    ["status", "next_attempt_at"])
    op.create_index("ix_notify_deliveries_created_at", "notify_deliveries", ["created_at"])


def downgrade() -> None:
    op.drop_table("notify_deliveries")
