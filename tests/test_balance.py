"""200 simultaneous arrivals across 4 server processes fill the condition cells evenly (psiTurk's did not)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import text

from conftest import free_port, stop_process
from psiturk_async.db import create_engine
from psiturk_async.settings import load_settings
from test_serve import wait_healthy

ARRIVALS = 200


async def _arrive_all(url: str) -> list[int]:
    limits = httpx.Limits(max_connections=ARRIVALS, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        start = asyncio.Event()

        async def arrive(number: int) -> int:
            await start.wait()
            response = await client.get("/exp", params={"hitId": "HIT1", "assignmentId": f"A{number}",
                                                        "workerId": f"W{number}", "mode": "live"})
            return response.status_code

        tasks = [asyncio.create_task(arrive(number)) for number in range(ARRIVALS)]
        await asyncio.sleep(0.5)
        start.set()
        return await asyncio.gather(*tasks)


async def _cells(project_dir: Path, environ: dict[str, str]) -> Counter:
    settings = load_settings(project_dir, environ=environ)
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT cond, counterbalance FROM assignments"))
            return Counter((row.cond, row.counterbalance) for row in rows)
    finally:
        await engine.dispose()


def test_simultaneous_arrivals_are_balanced_across_processes(project_dir: Path, environ: dict[str, str],
                                                             tmp_path: Path) -> None:
    environ = {**environ, "PSITURK_NUM_CONDS": "2", "PSITURK_NUM_COUNTERS": "3"}
    port = free_port()
    # The log goes to a file: a pipe nobody reads fills up and stalls the server.
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "psiturk_async.cli", "serve", "--port", str(port),
                                "--workers", "4"], cwd=project_dir, env={**os.environ, **environ},
                               stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, timeout=120)
        # Let every worker finish starting, so the arrivals really meet several processes.
        for _ in range(20):
            httpx.get(f"{url}/healthz")
        statuses = asyncio.run(_arrive_all(url))
    finally:
        stop_process(process)
        log.close()
    assert Counter(statuses) == {200: ARRIVALS}
    cells = asyncio.run(_cells(project_dir, environ))
    assert sum(cells.values()) == ARRIVALS
    assert set(cells) == {(cond, counter) for cond in range(2) for counter in range(3)}
    assert max(cells.values()) - min(cells.values()) <= 1, cells
