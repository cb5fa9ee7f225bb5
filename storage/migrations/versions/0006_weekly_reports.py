"""The weekly reports and their mailing state, in the database instead of files.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Written by hand in the style of 0005; tests/test_storage_migrations.py checks that it and
storage/report_models.py agree on both backends. Reports stored as files by earlier versions
([reports].directory, var/reports/ by default) are not read here (a migration has no settings):
``python app.py report import-files`` imports them (docs/reports.md, "Upgrading from files").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "weekly_reports",
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("csv", sa.Text(), nullable=False),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("built_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("week", name="pk_weekly_reports"),
    )
    op.create_table(
        "report_mailings",
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("pending", sa.JSON(), nullable=False),
        sa.Column("delivered", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("queued_at", WHEN, nullable=False),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')",
                           name=op.f("ck_report_mailings_status")),
        sa.ForeignKeyConstraint(["week"], ["weekly_reports.week"],
                                name="fk_report_mailings_week_weekly_reports", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("week", name="pk_report_mailings"),
    )
    op.create_index("ix_report_mailings_status_next_attempt_at", "report_mailings",
                    ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_report_mailings_status_next_attempt_at", table_name="report_mailings")
    op.drop_table("report_mailings")
    op.drop_table("weekly_reports")
