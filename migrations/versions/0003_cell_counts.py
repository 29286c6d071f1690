"""Finished participants per condition cell, kept by triggers, so choosing a cell does not slow as a study grows.

`psiturk_async_cell_counts` holds, for each (codeversion, mode, cond, counterbalance), how many participants
of the participants table are finished. Triggers on that table keep it exact in the same transaction as every
insert, delete and change of those columns, whoever writes (psiTurk 3 too). Rows with any of the four NULL
are never counted: counterbalancing ignores them anyway. Rows already there (a psiTurk database adopted by
0001) are counted once, after the triggers exist; on PostgreSQL creating a trigger locks the table against
writers until this transaction commits, and on SQLite the write lock does the same, so no write is missed.

A partial index of the unfinished rows serves the other half of psiTurk's rule (unfinished participants
within the cutoff) without touching the finished rows.

A later migration that rebuilds the participants table on SQLite (batch mode copies it) drops these triggers
and must create them again; until then the server counts row by row (see cell_counts.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from psiturk_async.cell_counts import COUNTS_TABLE, FINISHED_SQL, UNFINISHED, trigger_name, unfinished_index_name

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CELL = ("codeversion", "mode", "cond", "counterbalance")
COLUMNS = ("status", *CELL)


def _counted(row: str) -> str:
    """SQL true when the OLD or NEW row is a finished participant in a cell."""
    terms = [f"{row}.status IN ({FINISHED_SQL})", *(f"{row}.{column} IS NOT NULL" for column in CELL)]
    return f"({' AND '.join(terms)})"


def _same_cell(row: str) -> str:
    return " AND ".join(f"{column} = {row}.{column}" for column in CELL)


def _increment(counts: str, row: str) -> str:
    # SQLite needs a WHERE on the SELECT of an INSERT ... SELECT ... ON CONFLICT to parse it; both have one.
    return (f"INSERT INTO {counts} ({', '.join(CELL)}, finished) "
            f"SELECT {', '.join(f'{row}.{column}' for column in CELL)}, 1 WHERE {_counted(row)} "
            f"ON CONFLICT ({', '.join(CELL)}) DO UPDATE SET finished = {counts}.finished + 1")


def _decrement(counts: str, row: str) -> str:
    return (f"UPDATE {counts} SET finished = finished - 1 "
            f"WHERE {_same_cell(row)} AND {row}.status IN ({FINISHED_SQL})")


def _sqlite_triggers(table: str, quote) -> list[str]:
    on = quote(table)
    return [
        f"CREATE TRIGGER {quote(trigger_name(table, 'insert'))} AFTER INSERT ON {on} "
        f"FOR EACH ROW WHEN {_counted('NEW')} BEGIN {_increment(COUNTS_TABLE, 'NEW')}; END",
        f"CREATE TRIGGER {quote(trigger_name(table, 'delete'))} AFTER DELETE ON {on} "
        f"FOR EACH ROW WHEN {_counted('OLD')} BEGIN {_decrement(COUNTS_TABLE, 'OLD')}; END",
        # Only these columns: the saves that rewrite datastring many times a flow do not fire it.
        f"CREATE TRIGGER {quote(trigger_name(table, 'update'))} AFTER UPDATE OF {', '.join(COLUMNS)} ON {on} "
        f"FOR EACH ROW WHEN {_counted('OLD')} OR {_counted('NEW')} "
        f"BEGIN {_decrement(COUNTS_TABLE, 'OLD')}; {_increment(COUNTS_TABLE, 'NEW')}; END",
    ]


def _postgres_triggers(table: str, quote, schema: str) -> list[str]:
    # Named with its schema: the function runs with the search_path of whoever writes (psiTurk 3 included).
    counts = f"{quote(schema)}.{quote(COUNTS_TABLE)}"
    function = f"{quote(schema)}.{quote(trigger_name(table, 'row'))}"
    return [
        f"""CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                DELETE FROM {counts};
                RETURN NULL;
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                {_decrement(counts, 'OLD')};
            END IF;
            IF TG_OP IN ('UPDATE', 'INSERT') THEN
                {_increment(counts, 'NEW')};
            END IF;
            RETURN NULL;
        END $$""",
        f"CREATE TRIGGER {quote(trigger_name(table, 'row'))} "
        f"AFTER INSERT OR DELETE OR UPDATE OF {', '.join(COLUMNS)} ON {quote(table)} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
        f"CREATE TRIGGER {quote(trigger_name(table, 'truncate'))} AFTER TRUNCATE ON {quote(table)} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    ]


def upgrade(settings) -> None:
    bind = op.get_bind()
    quote = bind.dialect.identifier_preparer.quote
    table = settings.table_name
    op.create_table(
        COUNTS_TABLE,
        sa.Column("codeversion", sa.String(128), primary_key=True, nullable=False),
        sa.Column("mode", sa.String(128), primary_key=True, nullable=False),
        sa.Column("cond", sa.Integer, primary_key=True, nullable=False, autoincrement=False),
        sa.Column("counterbalance", sa.Integer, primary_key=True, nullable=False, autoincrement=False),
        sa.Column("finished", sa.Integer, nullable=False),
    )
    if bind.dialect.name == "postgresql":
        schema = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
        statements = _postgres_triggers(table, quote, schema)
    else:
        statements = _sqlite_triggers(table, quote)
    for statement in statements:
        op.execute(statement)
    op.execute(
        f"INSERT INTO {COUNTS_TABLE} ({', '.join(CELL)}, finished) "
        f"SELECT {', '.join(CELL)}, count(*) FROM {quote(table)} "
        f"WHERE status IN ({FINISHED_SQL}) AND {' AND '.join(f'{column} IS NOT NULL' for column in CELL)} "
        f"GROUP BY {', '.join(CELL)}")
    op.execute(f"CREATE INDEX {quote(unfinished_index_name(table))} ON {quote(table)} "
               f"(codeversion, mode, beginhit) WHERE {UNFINISHED}")


def downgrade(settings) -> None:
    bind = op.get_bind()
    quote = bind.dialect.identifier_preparer.quote
    table = settings.table_name
    op.execute(f"DROP INDEX {quote(unfinished_index_name(table))}")
    if bind.dialect.name == "postgresql":
        for event in ("row", "truncate"):
            op.execute(f"DROP TRIGGER {quote(trigger_name(table, event))} ON {quote(table)}")
        op.execute(f"DROP FUNCTION {quote(trigger_name(table, 'row'))}()")
    else:
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER {quote(trigger_name(table, event))}")
    op.drop_table(COUNTS_TABLE)
