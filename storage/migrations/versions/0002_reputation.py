"""Reputation: shared counter buckets, decisions and their history, overrides, verdicts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Written by hand in the style of 0001 (types spelled literally, names final with op.f() for the
CHECK constraints); tests/test_storage_migrations.py checks that it and storage/reputation_models.py
agree on both backends.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)
KINDS = "identity_kind IN ('account', 'script', 'customer', 'domain', 'client', 'ip')"
STATES = "state IN ('ok', 'watch', 'throttled', 'paused', 'held', 'blocked')"
COUNTERS = (
    "sends", "recipients", "freemail_recipients",
    "hard_list_quality", "hard_block", "hard_rate", "hard_configuration", "hard_transient", "hard_unknown",
    "soft_list_quality", "soft_block", "soft_rate", "soft_configuration", "soft_transient", "soft_unknown",
    "complaints",
)


def _identity(table: str) -> list[sa.schema.SchemaItem]:
    return [sa.Column("id", ID, nullable=False),
            sa.Column("identity_kind", sa.String(16), nullable=False),
            sa.Column("identity_value", sa.String(1000), nullable=False),
            sa.CheckConstraint(KINDS, name=op.f(f"ck_{table}_identity_kind")),
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}")]


def _decision_columns() -> list[sa.schema.SchemaItem]:
    return [sa.Column("state", sa.String(16), nullable=False),
            sa.Column("action", sa.String(16), nullable=False),
            sa.Column("rule", sa.String(100), nullable=True),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("limit_per_hour", sa.Integer(), nullable=True),
            sa.Column("until", WHEN, nullable=True),
            sa.Column("evidence", sa.JSON(), nullable=False),
            sa.Column("decided_at", WHEN, nullable=False)]


def upgrade() -> None:
    op.create_table(
        "counter_buckets",
        *_identity("counter_buckets"),
        sa.Column("start", WHEN, nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        *(sa.Column(name, ID, nullable=False) for name in COUNTERS),
        sa.Column("distinct_sketch", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.CheckConstraint("seconds IN (60, 3600)", name=op.f("ck_counter_buckets_seconds")),
        sa.UniqueConstraint("identity_kind", "identity_value", "seconds", "start",
                            name="uq_counter_buckets_identity_kind_identity_value_seconds_start"),
    )
    op.create_index("ix_counter_buckets_updated_at", "counter_buckets", ["updated_at"])
    op.create_index("ix_counter_buckets_start", "counter_buckets", ["start"])
    op.create_table(
        "decision_history",
        *_identity("decision_history"),
        *_decision_columns(),
        sa.Column("ended_at", WHEN, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.CheckConstraint(STATES, name=op.f("ck_decision_history_state")),
        sa.CheckConstraint("outcome IN ('auto_resumed', 'admin_resumed', 'admin_override', 'false_positive', "
                           "'escalated', 'released', 'replaced')", name=op.f("ck_decision_history_outcome")),
        sa.CheckConstraint("verdict IN ('false_positive', 'confirmed')",
                           name=op.f("ck_decision_history_verdict")),
    )
    op.create_index("ix_decision_history_identity_kind_identity_value_id", "decision_history",
                    ["identity_kind", "identity_value", "id"])
    op.create_index("ix_decision_history_decided_at", "decision_history", ["decided_at"])
    op.create_table(
        "reputation_decisions",
        *_identity("reputation_decisions"),
        *_decision_columns(),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("history_id", ID, nullable=True),
        sa.CheckConstraint(STATES, name=op.f("ck_reputation_decisions_state")),
        sa.ForeignKeyConstraint(["history_id"], ["decision_history.id"],
                                name="fk_reputation_decisions_history_id_decision_history",
                                ondelete="SET NULL"),
        sa.UniqueConstraint("identity_kind", "identity_value",
                            name="uq_reputation_decisions_identity_kind_identity_value"),
    )
    op.create_index("ix_reputation_decisions_updated_at", "reputation_decisions", ["updated_at"])
    op.create_index("ix_reputation_decisions_until", "reputation_decisions", ["until"])
    op.create_table(
        "reputation_overrides",
        *_identity("reputation_overrides"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("limit_per_hour", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=True),
        sa.Column("revoked_at", WHEN, nullable=True),
        sa.CheckConstraint("kind IN ('allow', 'block', 'limit', 'resume')",
                           name=op.f("ck_reputation_overrides_kind")),
    )
    op.create_index("ix_reputation_overrides_identity_kind_identity_value_id", "reputation_overrides",
                    ["identity_kind", "identity_value", "id"])
    op.create_index("ix_reputation_overrides_expires_at", "reputation_overrides", ["expires_at"])
    op.create_table(
        "reputation_verdicts",
        *_identity("reputation_verdicts"),
        sa.Column("decision_id", ID, nullable=True),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.CheckConstraint("kind IN ('false_positive', 'confirmed')",
                           name=op.f("ck_reputation_verdicts_kind")),
        sa.ForeignKeyConstraint(["decision_id"], ["decision_history.id"],
                                name="fk_reputation_verdicts_decision_id_decision_history",
                                ondelete="SET NULL"),
    )
    op.create_index("ix_reputation_verdicts_identity_kind_identity_value_id", "reputation_verdicts",
                    ["identity_kind", "identity_value", "id"])
    op.create_index("ix_reputation_verdicts_at", "reputation_verdicts", ["at"])
    op.create_index("ix_reputation_verdicts_decision_id", "reputation_verdicts", ["decision_id"])


def downgrade() -> None:
    for table in ("reputation_verdicts", "reputation_overrides", "reputation_decisions", "decision_history",
                  "counter_buckets"):
        op.drop_table(table)
