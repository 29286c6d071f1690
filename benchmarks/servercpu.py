"""CPU time of a running server, read from /proc: the processes listening on a port and all their descendants.

Used by participants.py, and on its own to measure a command run against the server (another load driver):

    python benchmarks/servercpu.py --port 23401 -- python other_driver.py --base-url http://127.0.0.1:23401

prints the server's CPU milliseconds during the command (and per flow with --flows N).

A process's utime+stime counts only itself, so a server of several workers is measured by summing the whole
live process tree. PostgreSQL backends are separate processes: `backend_pids` finds the ones connected to one
database by their process title ("postgres: user database host(port) state").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may itself hold spaces or parentheses.
    return raw[raw.rindex(")") + 2:].split()


def process_cpu_s(pid: int) -> float | None:
    """utime + stime of one live process, in seconds (None when it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    return (int(fields[11]) + int(fields[12])) / TICKS


def all_pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def parents() -> dict[int, int]:
    found = {}
    for pid in all_pids():
        fields = _stat_fields(pid)
        if fields is not None:
            found[pid] = int(fields[1])
    return found


def with_descendants(roots: list[int]) -> list[int]:
    """The roots and every live process below them."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents().items():
        children.setdefault(ppid, []).append(pid)
    seen, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stack.extend(children.get(pid, []))
    return sorted(seen)


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def pids_on_port(port: int) -> list[int]:
    """The processes holding a socket that listens on `port` (the server and any worker that inherited it)."""
    targets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    holders = []
    for pid in all_pids():
        try:
            fds = os.listdir(PROC / str(pid) / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(PROC / str(pid) / "fd" / fd) in targets:
                    holders.append(pid)
                    break
            except OSError:
                continue
    return holders


def server_pids(port: int) -> list[int]:
    """The outermost processes listening on `port`, and all their descendants."""
    holders = pids_on_port(port)
    if not holders:
        return []
    ppid = parents()
    roots = [pid for pid in holders if ppid.get(pid) not in holders]
    return with_descendants(roots)


def postmaster_pid(port: int = 5432) -> int | None:
    """The PostgreSQL server process listening on `port` (when it runs on this machine)."""
    holders = pids_on_port(port)
    return min(holders) if holders else None


def children_of(pid: int) -> list[int]:
    found = []
    try:
        threads = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return found
    for thread in threads:
        try:
            found += [int(child) for child in (PROC / str(pid) / "task" / thread / "children").read_text().split()]
        except OSError:
            continue
    return found


def backend_pids(database: str, postmaster: int | None = None) -> list[int]:
    """PostgreSQL backends connected to `database`, found by their process titles."""
    found = []
    for pid in children_of(postmaster) if postmaster else all_pids():
        try:
            title = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # "postgres: [cluster: ]user database host(port) state"
        words = title.split()
        if words[:1] == ["postgres:"] and len(words) > 1 and words[1].endswith(":"):
            words = words[1:]
        if len(words) >= 3 and words[2] == database:
            found.append(pid)
    return found


class CpuMeter:
    """CPU seconds a changing set of processes spends between start() and stop().

    A process that appears in between counts from zero. One that exits in between would take its CPU time
    with it, so with `sample_every` a thread re-reads the set that often and a process that exits counts up
    to its last reading (PostgreSQL backends come and go as the server's connection pool opens and closes
    connections); `exited_pids` says how many did.
    """

    def __init__(self, find_pids, sample_every: float | None = None) -> None:  # type: ignore[no-untyped-def]
        self.find_pids = find_pids
        self.sample_every = sample_every
        self.before: dict[int, float] = {}
        self.latest: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict[int, float]:
        taken = {}
        for pid in self.find_pids():
            cpu = process_cpu_s(pid)
            if cpu is not None:
                taken[pid] = cpu
        return taken

    def _sample(self) -> None:
        while not self._stop.wait(self.sample_every):
            self.latest.update(self.snapshot())

    def start(self) -> None:
        self.before = self.snapshot()
        self.latest = dict(self.before)
        if self.sample_every:
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def stop(self) -> dict[str, object]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        after = self.snapshot()
        self.latest.update(after)
        spent = sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.latest.items())
        return {"cpu_s": round(spent, 3), "pids": sorted(after),
                "exited_pids": len(set(self.latest) - set(after))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Server CPU spent while a command runs.")
    parser.add_argument("--port", type=int, help="the server's port (its processes are found from it)")
    parser.add_argument("--pid", type=int, action="append", default=[], help="server process(es), instead")
    parser.add_argument("--pg-database", default="", help="also measure PostgreSQL backends of this database")
    parser.add_argument("--flows", type=int, default=0, help="divide by this many participant flows")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or not (args.port or args.pid):
        parser.error("give --port or --pid, then -- and a command")
    roots = args.pid or pids_on_port(args.port)
    if not roots:
        parser.error(f"nothing listens on port {args.port}")
    server = CpuMeter(lambda: with_descendants(roots) if args.pid else server_pids(args.port))
    postmaster = postmaster_pid()
    database = CpuMeter(lambda: backend_pids(args.pg_database, postmaster),
                        sample_every=0.1) if args.pg_database else None
    server.start()
    if database:
        database.start()
    started = time.perf_counter()
    returncode = subprocess.call(command)
    wall = time.perf_counter() - started
    report = {"command_s": round(wall, 2), "server": server.stop()}
    if database:
        report["database"] = database.stop()
    for part in ("server", "database"):
        if part in report and args.flows:
            report[part]["cpu_ms_per_flow"] = round(report[part]["cpu_s"] * 1000 / args.flows, 2)
    print(f"servercpu: {report}", file=sys.stderr)
    return returncode


if __name__ == "__main__":
    sys.exit(main())
