"""How many participants each condition cell holds, by psiTurk's rule, read in time that does not grow.

psiTurk counts finished participants forever and the others while they are younger than the cutoff. Counting
the finished ones row by row costs more the longer a study runs, so migration 0003 keeps a table of them per
(codeversion, mode, cond, counterbalance), written by triggers on the participants table: every writer (this
package, the ORM, psiTurk 3's own code, SQL typed by hand) updates it in the transaction that changes the row.
What is left to count row by row is the unfinished participants inside the cutoff window, which a partial
index of unfinished rows finds without visiting the finished ones.

A table without those triggers (renamed after migrating, or rebuilt by a tool that dropped them) is counted
the old way, row by row: slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Callable

from .counterbalance import Cell, add_counts
from .drivers import Connection
from .models import FINISHED

COUNTS_TABLE = "psiturk_async_cell_counts"
FINISHED_SQL = ", ".join(str(int(status)) for status in sorted(FINISHED))
# Written once, used by the partial index and by the query: SQLite uses a partial index only when the query
# repeats its condition term for term.
UNFINISHED = f"(status NOT IN ({FINISHED_SQL}) OR status IS NULL)"
SQLITE_EVENTS = ("insert", "delete", "update")
POSTGRES_EVENTS = ("row", "truncate")


def trigger_name(table: str, event: str) -> str:
    """The name of a trigger (or PostgreSQL function) that keeps `table`'s counts, for one kind of event."""
    # The table's name is part of it, so it cannot clash with the triggers of another table; PostgreSQL cuts
    # names at 63 bytes, so they are cut here too and the look-up below finds what was created.
    return f"{COUNTS_TABLE}_{event}_{table}"[:63]


def unfinished_index_name(table: str) -> str:
    return f"ix_psiturk_async_{table}_unfinished"[:63]


class CellCounter:
    """The statements that count one participants table's cells, and whether its triggers keep the counts."""

    def __init__(self, table: str, quoted: str, *, postgres: bool, sql: Callable[[str], str]) -> None:
        self.table, self.quoted, self.postgres = table, quoted, postgres
        self.maintained: bool | None = None
        recent = (f"SELECT cond, counterbalance, count(*) FROM {quoted} WHERE codeversion = ? AND mode = ? "
                  f"AND beginhit > ? AND {UNFINISHED} GROUP BY cond, counterbalance")
        # One statement, so PostgreSQL reads both parts from one snapshot: a participant finishing meanwhile is
        # counted once, not in both parts or in neither.
        self.sql_from_table = sql(f"SELECT cond, counterbalance, finished FROM {COUNTS_TABLE} "
                                  f"WHERE codeversion = ? AND mode = ? UNION ALL {recent}")
        self.sql_by_scanning = sql(f"SELECT cond, counterbalance, count(*) FROM {quoted} WHERE codeversion = ? "
                                   f"AND mode = ? AND status IN ({FINISHED_SQL}) GROUP BY cond, counterbalance "
                                   f"UNION ALL {recent}")

    async def counts(self, connection: Connection, *, codeversion: str, mode: str,
                     started_after: object) -> dict[Cell, int]:
        """Each cell's count for this code version and mode; call inside the transaction that then inserts."""
        if self.maintained is None:
            # Once per process: the triggers come and go only with migrations, which a restart follows.
            self.maintained = await self._has_triggers(connection)
        sql = self.sql_from_table if self.maintained else self.sql_by_scanning
        return add_counts(await connection.fetchall(sql, codeversion, mode, codeversion, mode, started_after))

    async def _has_triggers(self, connection: Connection) -> bool:
        if self.postgres:
            # A disabled trigger (ALTER TABLE ... DISABLE TRIGGER) keeps nothing up to date.
            found = await connection.fetchall(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgenabled <> 'D'", self.quoted)
            events = POSTGRES_EVENTS
        else:
            found = await connection.fetchall("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                              "AND tbl_name = ? COLLATE NOCASE", self.table)
            events = SQLITE_EVENTS
        return {trigger_name(self.table, event) for event in events} <= {name for (name,) in found}
