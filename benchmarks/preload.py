"""Fill a project's participants table with finished participants, straight through SQL, before a benchmark.

Every row has the project's code version and the given mode and a finished status, so all of them count for
counterbalancing: this is the table a long-running study has, and what makes psiTurk's /exp slow.

    python benchmarks/preload.py --project /tmp/bench/sqlite --count 20000 --mode live

The schema must exist (start the server once, or `psiturk-async db upgrade`). Rows are spread evenly over the
project's condition cells, so the benchmark's own arrivals still balance.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import orjson
from sqlalchemy import text

from psiturk_async.counterbalance import read_conditions_file
from psiturk_async.db import create_engine
from psiturk_async.models import Participant, Status, bind_table_names, utcnow
from psiturk_async.settings import load_settings

BATCH = 1000
FINISHED_MIX = (Status.COMPLETED, Status.SUBMITTED, Status.SUBMITTED, Status.CREDITED)


def _datastring(uid: str, worker: str, assignment: str, hit: str, cell: tuple[int, int], trials: int,
                mode: str, rng: random.Random) -> str:
    started = 1_700_000_000_000 + rng.randrange(10**9)
    rows = [{"uniqueid": uid, "current_trial": n, "dateTime": started + 1500 * n,
             "trialdata": {"phase": "TEST", "word": "RED", "color": "green", "relation": "incongruent",
                           "response": "green", "hit": True, "rt": rng.randint(300, 1500)}}
            for n in range(trials)]
    record = {"id": uid, "condition": cell[0], "counterbalance": cell[1], "assignmentId": assignment,
              "workerId": worker, "hitId": hit, "currenttrial": trials, "bonus": 0, "data": rows,
              "questiondata": {"engagement": "4", "difficulty": "2"},
              "eventdata": [{"eventtype": "initialized", "value": None, "timestamp": started, "interval": 0}],
              "useragent": "Mozilla/5.0 (preloaded)", "mode": mode}
    return orjson.dumps(record).decode()


async def preload(project: Path | str, *, count: int, mode: str, trials: int = 10, seed: int = 1,
                  analyze: bool = True) -> dict[str, object]:
    """Insert `count` finished participants; returns what was done and how long it took."""
    settings = load_settings(project)
    bind_table_names(participants=settings.table_name, hits=settings.hits_table_name,
                     campaigns=settings.campaigns_table_name)
    from_file = read_conditions_file(settings.project_dir)
    num_conds, num_counters = (from_file, 1) if from_file else (settings.num_conds, settings.num_counters)
    cells = [(cond, counter) for cond in range(num_conds) for counter in range(num_counters)]
    table = Participant.__table__  # type: ignore[attr-defined]
    rng = random.Random(seed)
    prefix = "pre" + uuid.uuid4().hex[:8]
    hit = f"{prefix}HIT"
    finished_at = utcnow() - timedelta(days=2)
    engine = create_engine(settings)
    started = time.perf_counter()
    try:
        for first in range(0, count, BATCH):
            rows = []
            for n in range(first, min(count, first + BATCH)):
                worker, assignment = f"{prefix}W{n}", f"{prefix}A{n}"
                uid = f"{worker}:{assignment}"
                cell = cells[n % len(cells)]
                begin = finished_at - timedelta(minutes=n % 5000)
                rows.append({
                    "uniqueid": uid, "assignmentid": assignment, "workerid": worker, "hitid": hit,
                    "ipaddress": "127.0.0.1", "browser": "chrome", "platform": "linux", "language": "en-US",
                    "cond": cell[0], "counterbalance": cell[1], "codeversion": settings.experiment_code_version,
                    "beginhit": begin, "beginexp": begin + timedelta(minutes=1),
                    "endhit": begin + timedelta(minutes=6), "bonus": 0.0,
                    "status": int(FINISHED_MIX[n % len(FINISHED_MIX)]), "mode": mode,
                    "datastring": _datastring(uid, worker, assignment, hit, cell, trials, mode, rng)})
            async with engine.begin() as connection:
                await connection.execute(table.insert(), rows)
        if analyze:
            # What autovacuum / a maintenance job does shortly after a bulk load anyway; without it the first
            # minutes after the load would be measured with PostgreSQL's planner statistics of an empty table.
            if engine.dialect.name == "postgresql":
                async with engine.connect() as connection:
                    connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
                    await connection.execute(text(f'VACUUM ANALYZE "{settings.table_name}"'))
        async with engine.connect() as connection:
            total = (await connection.execute(text(f'SELECT count(*) FROM "{settings.table_name}"'))).scalar_one()
    finally:
        await engine.dispose()
    return {"inserted": count, "rows_now": total, "seconds": round(time.perf_counter() - started, 2),
            "cells": len(cells), "mode": mode, "codeversion": settings.experiment_code_version,
            "vacuum_analyze": analyze and settings.database_url.startswith("postgres")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True, help="the project folder whose settings name the database")
    parser.add_argument("--count", "-n", type=int, required=True)
    parser.add_argument("--mode", default="live", choices=["live", "sandbox", "debug"])
    parser.add_argument("--trials", type=int, default=10, help="trial rows in each preloaded datastring")
    parser.add_argument("--no-analyze", action="store_true", help="PostgreSQL: skip VACUUM ANALYZE afterwards")
    args = parser.parse_args(argv)
    if not 0 < args.count <= 1_000_000 or not 0 <= args.trials <= 10_000:
        parser.error("--count must be 1..1000000 and --trials 0..10000")
    done = asyncio.run(preload(args.project, count=args.count, mode=args.mode, trials=args.trials,
                               analyze=not args.no_analyze))
    print(orjson.dumps(done).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
