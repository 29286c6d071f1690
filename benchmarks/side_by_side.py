"""Two source trees of psiturk-async measured at the same moment: the way to see a change of a few per cent.

This machine's speed wanders by up to a half between quarter hours, so two runs one after the other differ
more than most changes do. Here both servers run at once, each from its own tree (PYTHONPATH=<tree>/src) in a
fresh example folder on SQLite, pinned together to CPU 0, and the shared participant driver runs against
each at once, both drivers pinned to CPU 1: whatever the machine does meanwhile, it does to both. The two
servers slow each other down, so the absolute figures are higher than a run alone; compare the pair, never a
figure of this script with one of a run alone.

    python benchmarks/side_by_side.py --a ../baseline-checkout --b . --rounds 4

prints, per round, each server's CPU milliseconds per participant flow, errors and lost records. A tree
needs `src/` and `migrations/` (a `git worktree` of another commit will do).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
DRIVER = HERE.parents[1] / "shared" / "tools" / "participants_driver.py"
FLOWS = 400


def wait_until_up(port: int, deadline_s: float = 60) -> None:
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server on port {port} did not start")


def start_server(tree: Path, folder: Path, port: int) -> subprocess.Popen[bytes]:
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "psiturk-async", "setup-example", str(folder)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(tree.resolve() / "src")}
    log = (folder / "server.log").open("wb")
    return subprocess.Popen(["taskset", "-c", "0", bin_dir / "psiturk-async", "serve", "--port", str(port)],
                            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)


def start_driver(port: int, folder: Path, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    command = ["taskset", "-c", "1", sys.executable, str(HERE / "servercpu.py"), "--port", str(port), "--flows",
               str(FLOWS), "--", sys.executable, str(args.driver), "--base-url", f"http://127.0.0.1:{port}",
               "-n", str(FLOWS), "-c", str(args.concurrency), "-t", "100", "-k", "10", "-b", "200"]
    return subprocess.Popen(command, stdout=(folder / "driver.out").open("wb"),
                            stderr=(folder / "driver.err").open("wb"))


def summary(folder: Path) -> str:
    report = ast.literal_eval((folder / "driver.err").read_text().strip().splitlines()[-1][len("servercpu: "):])
    result = json.loads((folder / "driver.out").read_text())
    return (f"{report['server']['cpu_ms_per_flow']:6.2f} ms/flow, {result['errors_total']} errors, "
            f"{result['verification']['lost_vs_last_sent']} lost")


def one_round(args: argparse.Namespace, work: Path) -> str:
    pairs = [("a", args.a, args.port), ("b", args.b, args.port + 1)]
    servers, drivers, folders = [], [], {}
    try:
        for name, tree, port in pairs:
            folders[name] = work / name
            shutil.rmtree(folders[name], ignore_errors=True)
            servers.append(start_server(tree, folders[name], port))
        for _name, _tree, port in pairs:
            wait_until_up(port)
        drivers = [start_driver(port, folders[name], args) for name, _tree, port in pairs]
        for driver in drivers:
            driver.wait()
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
    return " | ".join(f"{name.upper()} {summary(folders[name])}" for name, _tree, _port in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="one source tree (with src/ and migrations/)")
    parser.add_argument("--b", type=Path, required=True, help="the other")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--port", type=int, default=18400, help="A's port; B's is the next one")
    parser.add_argument("--driver", type=Path, default=DRIVER)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="side-by-side-") as work:
        for number in range(1, args.rounds + 1):
            print(f"round {number}: {one_round(args, Path(work))}", flush=True)


if __name__ == "__main__":
    main()
