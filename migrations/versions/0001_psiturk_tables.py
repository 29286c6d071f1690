"""psiTurk 3's tables, created or adopted in place, plus psiturk-async's shared state.

A database psiTurk made already has its tables and no version table: they are kept with every row, and only
what psiturk-async adds (indexes, its own table) is created. Nothing here changes a psiTurk column, so
psiTurk 3 can still read and write the database afterwards.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _participant_columns() -> list[sa.Column]:
    text = sa.Text()
    return [
        sa.Column("uniqueid", sa.String(128), primary_key=True),
        sa.Column("assignmentid", sa.String(128), nullable=False),
        sa.Column("workerid", sa.String(128), nullable=False),
        sa.Column("hitid", sa.String(128), nullable=False),
        sa.Column("ipaddress", sa.String(128)),
        sa.Column("browser", sa.String(128)),
        sa.Column("platform", sa.String(128)),
        sa.Column("language", sa.String(128)),
        sa.Column("cond", sa.Integer),
        sa.Column("counterbalance", sa.Integer),
        sa.Column("codeversion", sa.String(128)),
        sa.Column("beginhit", sa.DateTime),
        sa.Column("beginexp", sa.DateTime),
        sa.Column("endhit", sa.DateTime),
        sa.Column("bonus", sa.Float),
        sa.Column("status", sa.Integer),
        sa.Column("mode", sa.String(128)),
        sa.Column("datastring", text),
    ]


PARTICIPANT_INDEXES = {
    "ix_psiturk_async_assignments_workerid": ["workerid"],
    "ix_psiturk_async_assignments_cells": ["codeversion", "mode", "status", "cond", "counterbalance"],
    "ix_psiturk_async_assignments_beginhit": ["codeversion", "mode", "beginhit"],
}


def upgrade(settings) -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    participants = settings.table_name
    if participants not in existing:
        op.create_table(participants, *_participant_columns())
    have = {index["name"] for index in inspector.get_indexes(participants)} if participants in existing else set()
    for name, columns in PARTICIPANT_INDEXES.items():
        if name not in have:
            op.create_index(name, participants, columns)
    if settings.hits_table_name not in existing:
        op.create_table(settings.hits_table_name, sa.Column("hitid", sa.String(128), primary_key=True))
    if settings.campaigns_table_name not in existing:
        op.create_table(
            settings.campaigns_table_name,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("codeversion", sa.String(128), nullable=False),
            sa.Column("mode", sa.String(128), nullable=False),
            sa.Column("goal", sa.Integer, nullable=False),
            sa.Column("minutes_between_rounds", sa.Integer, nullable=False),
            sa.Column("assignments_per_round", sa.Integer, nullable=False),
            sa.Column("hit_reward", sa.Float, nullable=False),
            sa.Column("hit_duration_hours", sa.Float, nullable=False),
            sa.Column("is_active", sa.Boolean),
            sa.Column("created", sa.DateTime),
            sa.Column("ended", sa.DateTime),
        )
    op.create_table(
        "psiturk_async_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade(settings) -> None:
    # Leave psiTurk's own tables (and their rows) alone: only what psiturk-async added goes.
    op.drop_table("psiturk_async_state")
    for name in PARTICIPANT_INDEXES:
        op.drop_index(name, table_name=settings.table_name)
