"""psiturk-async's MTurk tables: the HITs it created with what they may cost, and the ledger of money moved.

New tables only; psiTurk's `amt_hit` keeps getting one row per created HIT, so psiTurk 3 sees the same study.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HITS = "psiturk_async_mturk_hit"
LEDGER = "psiturk_async_mturk_ledger"


def upgrade(settings) -> None:
    op.create_table(
        HITS,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("hit_id", sa.String(128), unique=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("reward_cents", sa.Integer, nullable=False),
        sa.Column("max_assignments", sa.Integer, nullable=False),
        sa.Column("masters", sa.Boolean, nullable=False),
        sa.Column("released", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("settled_at", sa.DateTime),
        sa.Column("deleted_at", sa.DateTime),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        LEDGER,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("hit_id", sa.String(128)),
        sa.Column("assignment_id", sa.String(128), nullable=False),
        sa.Column("worker_id", sa.String(128), nullable=False),
        sa.Column("uniqueid", sa.String(256)),
        sa.Column("amount_cents", sa.Integer, nullable=False),
        sa.Column("fee_cents", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("token", sa.String(64), unique=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("override", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sending_at", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("settled_at", sa.DateTime),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_psiturk_async_mturk_ledger_assignment", LEDGER, ["assignment_id", "kind"])
    op.create_index("ix_psiturk_async_mturk_ledger_mode", LEDGER, ["mode", "kind", "state"])


def downgrade(settings) -> None:
    op.drop_index("ix_psiturk_async_mturk_ledger_mode", table_name=LEDGER)
    op.drop_index("ix_psiturk_async_mturk_ledger_assignment", table_name=LEDGER)
    op.drop_table(LEDGER)
    op.drop_table(HITS)
