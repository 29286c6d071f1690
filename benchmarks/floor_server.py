"""The floor: the least a server can do for the participant driver's flow, to calibrate a machine.

A framework-free ASGI app on uvicorn that answers the routes participants_driver.py calls with the bare
minimum — an HTML page naming the uniqueId and a cell, each save one SQLite UPDATE (WAL,
synchronous=NORMAL), the bonus computed from the stored record — and nothing of what makes a real server
(no templates, no statuses, no secrets, no checks). The issue that set the bar measured such a server at
about 1.7 ms of CPU per flow; what it measures on this machine says how fast this machine is, so
psiturk-async's figures can be read against it (benchmarks/README.md).

    python benchmarks/floor_server.py --port 18200 --database /tmp/floor.db
    python benchmarks/servercpu.py --port 18200 --flows 400 -- python ../shared/tools/participants_driver.py \\
        --base-url http://127.0.0.1:18200 -n 400 -c 50 -t 100 -k 10 -b 200

Not part of the package and never served to participants.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from urllib.parse import parse_qsl

SCHEMA = ("CREATE TABLE IF NOT EXISTS participants (uniqueid TEXT PRIMARY KEY, cond INTEGER, counterbalance "
          "INTEGER, status INTEGER, bonus REAL, datastring TEXT)")
CELLS = [(c, b) for c in range(2) for b in range(2)]


class Floor:
    def __init__(self, database: str) -> None:
        self.db = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"):
            self.db.execute(pragma)
        self.db.execute(SCHEMA)
        self.arrivals = 0

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status, content_type, content = self.answer(scope["method"], scope["path"],
                                                     dict(parse_qsl(scope["query_string"].decode())), body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})

    def answer(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, bytes, bytes]:
        html, js = b"text/html", b"application/json"
        if path in ("/ad", "/consent"):
            return 200, html, b"<html><body>page</body></html>"
        if path == "/exp":
            uid = f"{query['workerId']}:{query['assignmentId']}"
            cond, counter = CELLS[self.arrivals % len(CELLS)]
            self.arrivals += 1
            self.db.execute("INSERT OR IGNORE INTO participants VALUES (?, ?, ?, 1, 0, NULL)",
                            (uid, cond, counter))
            page = (f'<script>var uniqueId = "{uid}"; var condition = {cond}; '
                    f'var counterbalance = {counter};</script>')
            return 200, html, page.encode()
        if path.startswith("/sync/"):
            uid = path[len("/sync/"):]
            if method == "PUT":
                json.loads(body)
                self.db.execute("UPDATE participants SET datastring = ? WHERE uniqueid = ?", (body.decode(), uid))
                return 200, js, b'{"status": "user data saved"}'
            row = self.db.execute("SELECT datastring FROM participants WHERE uniqueid = ?", (uid,)).fetchone()
            return 200, js, (row[0] or "{}").encode() if row else b"{}"
        if path == "/inexp":
            uid = dict(parse_qsl(body.decode())).get("uniqueId")
            self.db.execute("UPDATE participants SET status = 2 WHERE uniqueid = ?", (uid,))
            return 200, js, b'{"status": "success"}'
        if path == "/compute_bonus":
            uid = query["uniqueId"]
            row = self.db.execute("SELECT datastring FROM participants WHERE uniqueid = ?", (uid,)).fetchone()
            trials = json.loads(row[0])["data"] if row and row[0] else []
            hits = [t for t in trials if isinstance(t["trialdata"], dict) and t["trialdata"].get("hit") is True]
            bonus = 0.02 * len(hits)
            self.db.execute("UPDATE participants SET bonus = ? WHERE uniqueid = ?", (round(bonus, 2), uid))
            return 200, js, b'{"bonusComputed": "success"}'
        if path in ("/complete", "/worker_complete"):
            self.db.execute("UPDATE participants SET status = 3 WHERE uniqueid = ?", (query["uniqueId"],))
            return 200, html, b"<html><body>thanks</body></html>"
        if path == "/worker_submitted":
            self.db.execute("UPDATE participants SET status = 4 WHERE uniqueid = ?", (query["uniqueId"],))
            return 200, js, b'{"status": "success"}'
        return 404, js, b'{"error": "not_found"}'


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18200)
    parser.add_argument("--database", default="floor.db")
    args = parser.parse_args()
    uvicorn.run(Floor(args.database), host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
