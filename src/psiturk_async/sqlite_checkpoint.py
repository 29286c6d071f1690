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
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 0.5


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
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
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
                                                 timeout=0)
                if connection is not None:
                    self.checkpoint(connection)
        finally:
            if connection is not None:
                connection.close()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
