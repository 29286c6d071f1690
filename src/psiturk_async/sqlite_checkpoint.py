"""WAL checkpoints of a served SQLite database, on a thread of their own instead of the event loop.

In WAL mode every commit appends pages to the -wal file, and by default the commit that takes the log past
1000 pages also copies it back into the database file and waits for the disk twice (fsync). The server's
connections run on the event loop (sqlite_inline.py, drivers.py), so that commit held up every request in
flight: with a study saving 30 KiB records, a 16 MiB checkpoint and its fsyncs every few tenths of a second,
tens of milliseconds each (benchmarks/README.md). The server's connections therefore never checkpoint
(`PRAGMA wal_autocheckpoint=0`); this thread runs a PASSIVE checkpoint twice a second on its own connection.
SQLite's step releases the GIL, so the copy and the fsyncs run beside the loop. A PASSIVE checkpoint never
waits for or blocks readers and writers; what it cannot copy yet it copies next time. Other processes on the
same file (a second server process, psiTurk's tools) keep their own defaults and may checkpoint too: SQLite
lets one checkpoint run at a time and this one simply tries again later.

A PASSIVE checkpoint alone never lets the log start again while participants keep saving: SQLite rewinds the
-wal file only for a write that begins when every frame in it has been copied back, and under steady saves
new frames always arrive during the copy. The file then grew by every byte ever saved (405 MiB for a
400-participant benchmark run, whose database is 13 MiB), each frame a new block for the file system to
allocate and a longer log for every read to search. So each round ends with a RESTART checkpoint: it copies
the few frames the PASSIVE one left, holding the write lock for that short while, and waits briefly for the
readers of the old log to finish, so that the next write starts the log from its beginning. It waits at most
RESTART_PATIENCE_MS for the write lock or for readers; when it cannot have them (a long export reading, say)
it does what it can without them and the next round tries again. Writers on the loop that meet the lock
meanwhile wait their turn with asyncio sleeps, as they do for any other writer.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 0.5
RESTART_PATIENCE_MS = 5


class WalCheckpointer:
    """Checkpoints the SQLite file at `path` every `every_s` seconds until stopped."""

    def __init__(self, path: str, *, every_s: float = CHECKPOINT_EVERY_S) -> None:
        self.path = path
        self.every_s = every_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="psiturk-sqlite-checkpoint", daemon=True)

    def start(self) -> WalCheckpointer:
        self._thread.start()
        return self

    def checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            # The bulk of the copy and its fsyncs, with no lock held against the loop's writers.
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            # What arrived meanwhile, then the log's rewind (see the module's docstring).
            connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        except sqlite3.Error as exc:
            # Locked or busy elsewhere: the next round copies what this one could not.
            logger.debug("WAL checkpoint skipped: %s", exc)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stopping.wait(self.every_s):
                # Never the one to create the file: its page size is chosen by whoever makes the schema.
                if connection is None and os.path.exists(self.path):
                    connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                                 timeout=RESTART_PATIENCE_MS / 1000)
                if connection is not None:
                    self.checkpoint(connection)
        finally:
            if connection is not None:
                connection.close()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
