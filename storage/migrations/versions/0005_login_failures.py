"""The dashboard's failed logins and lockouts, shared by every process on the database.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Written by hand in the style of 0004; tests/test_storage_migrations.py checks that it and
storage/models.py (LoginFailure) agree on both backends.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_at", WHEN, nullable=False),
        sa.Column("locked_until", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_first_at", "login_failures", ["first_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_first_at", table_name="login_failures")
    op.drop_table("login_failures")
