"""Peak memory of the server and of the CLI while `download-datafiles` exports a large study.

    .venv/bin/python benchmarks/export.py                       # SQLite, 10,000 participants × 100 trials
    .venv/bin/python benchmarks/export.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/export.py --participants 1000   # a quick run

It writes an example project in a temporary folder, fills its database (each trial's trialdata is 200 bytes of
JSON), then for each format starts `psiturk-async serve` afresh (one worker), runs the CLI's
`download-datafiles` against it, and reads the peak resident memory of both processes (VmHWM of the server,
VmHWM of the CLI). Peaks are also taken after a `status` call, so what the export adds can be seen. One
unmeasured export first warms the database's files into the page cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx

from psiturk_async.db import create_engine
from psiturk_async.migrate import upgrade
from psiturk_async.models import Participant
from psiturk_async.settings import load_settings

CLI = [sys.executable, "-m", "psiturk_async.cli"]
TOKEN = "benchmark-" + secrets.token_hex(8)
FORMATS = ("csv", "json", "jsonl")


def trialdata(number: int, size: int) -> dict[str, object]:
    """A Stroop-like trial whose JSON is `size` bytes long."""
    trial: dict[str, object] = {"phase": "TEST", "word": "GREEN", "color": "red", "relation": "incongruent",
                                "response": "red", "hit": number % 3 != 0, "rt": 400 + number % 500, "pad": ""}
    trial["pad"] = "x" * max(0, size - len(json.dumps(trial)))
    return trial


def datastring(uid: str, trials: int, trial_bytes: int) -> str:
    worker, assignment = uid.split(":")
    start = 1764072000000
    return json.dumps({
        "condition": 0, "counterbalance": 0, "workerId": worker, "assignmentId": assignment, "hitId": "BENCHHIT",
        "currenttrial": trials, "bonus": 0, "useragent": "Mozilla/5.0 (benchmark)", "mode": "live", "id": uid,
        "data": [{"uniqueid": uid, "current_trial": n, "dateTime": start + 1000 * n,
                  "trialdata": trialdata(n, trial_bytes)} for n in range(trials)],
        "eventdata": [{"eventtype": "focus", "value": "off" if n % 2 else "on", "timestamp": start + 5000 * n,
                       "interval": 5000} for n in range(10)],
        "questiondata": {"engagement": "7", "difficulty": "3", "comments": "Fine, thanks.\nNo problems."},
    })


async def fill(settings: object, participants: int, trials: int, trial_bytes: int) -> int:
    engine = create_engine(settings)  # type: ignore[arg-type]
    stored = 0
    table = Participant.__table__  # type: ignore[attr-defined]
    try:
        for first in range(0, participants, 500):
            rows = []
            for number in range(first, min(first + 500, participants)):
                uid = f"W{number:06d}:A{number:06d}"
                text = datastring(uid, trials, trial_bytes)
                stored += len(text)
                rows.append({"uniqueid": uid, "workerid": uid.split(":")[0], "assignmentid": uid.split(":")[1],
                             "hitid": "BENCHHIT", "status": 3, "cond": number % 2, "counterbalance": 0,
                             "codeversion": "1.0", "mode": "live", "beginhit": datetime(2026, 11, 25),
                             "datastring": text})
            async with engine.begin() as connection:
                await connection.execute(table.insert(), rows)
    finally:
        await engine.dispose()
    return stored


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(project: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    process = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "1", "--no-migrate"],
                               cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


# The CLI reports its own peak at exit: ru_maxrss seen by a parent can carry the parent's size over the fork.
CLI_WITH_PEAK = """
import atexit, sys
from pathlib import Path
report = Path(sys.argv.pop(1))
def record():
    peak = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    report.write_text(peak.split()[1])
atexit.register(record)
from psiturk_async.cli import main
main()
"""


def run_cli(args: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Seconds taken and peak resident memory (KiB) of one CLI run."""
    report = cwd / "cli-peak.txt"
    started = time.perf_counter()
    finished = subprocess.run([sys.executable, "-c", CLI_WITH_PEAK, str(report), *args], cwd=cwd, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if finished.returncode != 0:
        raise RuntimeError(f"CLI {args} failed: {finished.stderr}")
    return elapsed, int(report.read_text())


async def on_server(admin_url: str, statement: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--trial-bytes", type=int, default=200)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server to make a scratch database on")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="psiturk-export-bench-"))
    project = folder / "project"
    scratch = f"psiturk_bench_{secrets.token_hex(4)}"
    if options.postgres:
        asyncio.run(on_server(options.postgres, f'CREATE DATABASE "{scratch}"'))
        database_url = options.postgres.rsplit("/", 1)[0] + f"/{scratch}"
    else:
        database_url = f"sqlite:///{project / 'participants.db'}"
    env = {**os.environ, "DATABASE_URL": database_url, "PSITURK_ADMIN_TOKEN": TOKEN,
           "PSITURK_GLOBAL_CONFIG_LOCATION": str(folder), "PSITURK_LOGFILE": "-", "PSITURK_LOGLEVEL": "3"}
    try:
        subprocess.run([*CLI, "setup-example", str(project)], check=True, env=env, stdout=subprocess.DEVNULL)
        settings = load_settings(project, environ=env)
        upgrade(settings)
        started = time.perf_counter()
        stored = asyncio.run(fill(settings, options.participants, options.trials, options.trial_bytes))
        print(f"database: {database_url.split('://')[0]}; {options.participants:,} participants × "
              f"{options.trials} trials of {options.trial_bytes} B; {stored / 2**20:,.0f} MiB of datastrings "
              f"stored in {time.perf_counter() - started:.0f} s")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, max RSS of this driver "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        with server(project, env) as (url, _process):
            # Unmeasured: brings the database into the page cache, so the first format measured is not slower.
            run_cli(["download-datafiles", "--format", "jsonl", "--out", str(folder / "warm-up")], cwd=folder,
                    env={**env, "PSITURK_URL": url})
        shutil.rmtree(folder / "warm-up")
        print("| format | files (MiB) | time (s) | server peak RSS (MiB) | server idle peak | CLI peak RSS (MiB) "
              "| CLI `status` peak |")
        print("|---|---|---|---|---|---|---|")
        for file_format in options.formats:
            out = folder / f"out-{file_format}"
            with server(project, env) as (url, process):
                client_env = {**env, "PSITURK_URL": url}
                _seconds, status_peak = run_cli(["status"], cwd=folder, env=client_env)
                idle = peak_kib(process.pid)
                seconds, cli_peak = run_cli(["download-datafiles", "--format", file_format, "--out", str(out)],
                                            cwd=folder, env=client_env)
                server_peak = peak_kib(process.pid)
            size = sum(path.stat().st_size for path in out.iterdir())
            print(f"| {file_format} | {size / 2**20:,.0f} | {seconds:.1f} | {server_peak / 1024:.0f} | "
                  f"{idle / 1024:.0f} | {cli_peak / 1024:.0f} | {status_peak / 1024:.0f} |", flush=True)
            shutil.rmtree(out)
    finally:
        if options.postgres:
            asyncio.run(on_server(options.postgres, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
