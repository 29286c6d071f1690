"""The CLI against a real `psiturk-async serve` over real HTTP: no set-up in the project folder, --url and
--token from elsewhere, the mode shared by every worker, and the token never in a log."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from admin_data import GOLDEN, golden_participants, seed
from conftest import free_port, stop_process
from psiturk_async.admin_token import TOKEN_FILE, read_token
from psiturk_async.settings import load_settings
from test_serve import wait_healthy

CLI = [sys.executable, "-m", "psiturk_async.cli"]
KINDS = ("trialdata", "eventdata", "questiondata")


def clean_environment(environ: dict[str, str]) -> dict[str, str]:
    inherited = {name: value for name, value in os.environ.items()
                 if name not in {"PSITURK_URL", "PSITURK_ADMIN_TOKEN", "PORT", "PSITURK_PORT"}}
    return {**inherited, **environ, "COLUMNS": "200"}


@pytest.fixture
def served(project_dir: Path, environ: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The project served on a free port that its config.txt names, as a researcher would set it up."""
    port = free_port()
    config = project_dir / "config.txt"
    config.write_text(re.sub(r"^;port = .*$", f"port = {port}", config.read_text(), flags=re.M))
    # Request lines on the console too: the token must stay out of them.
    process = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "2"], cwd=project_dir,
                               env={**clean_environment(environ), "PSITURK_ACCESSLOG": "-"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        yield f"http://localhost:{port}", process
    finally:
        stop_process(process)


def run(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_cli_works_against_a_real_server(served: tuple[str, subprocess.Popen[str]], project_dir: Path,
                                             environ: dict[str, str], tmp_path: Path) -> None:
    url, process = served
    env = clean_environment(environ)
    token = read_token(project_dir)
    assert token and stat.S_IMODE((project_dir / TOKEN_FILE).stat().st_mode) == 0o600
    seed(load_settings(project_dir, environ=environ), golden_participants())

    # In the project folder nothing needs setting up: the URL and token come from the project.
    status = run("status", cwd=project_dir, env=env)
    assert status.returncode == 0, status.stderr
    assert f"Server        {url} (psiturk-async" in status.stdout and "Participants  5 (" in status.stdout

    debug = run("debug", "-p", cwd=project_dir, env=env)
    link = debug.stdout.strip()
    assert debug.returncode == 0 and link.startswith(f"{url}/ad?assignmentId=debug")
    assert "<b>Error</b>" not in httpx.get(link).text

    out = tmp_path / "data"
    download = run("download-datafiles", "--out", str(out), cwd=project_dir, env=env)
    assert download.returncode == 0, download.stderr
    for kind in KINDS:
        assert (out / f"{kind}.csv").read_bytes() == (GOLDEN / f"{kind}.csv").read_bytes()

    # Two worker processes answer; every one of them sees the mode set through another.
    assert run("mode", "live", cwd=project_dir, env=env).stdout == "Entered live mode\n"
    assert {run("mode", cwd=project_dir, env=env).stdout for _ in range(4)} == {"mode: live\n"}

    # From anywhere else, --url and --token (here through the environment) reach it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    remote = run("--json", "participants", "list", cwd=elsewhere,
                 env={**env, "PSITURK_URL": url, "PSITURK_ADMIN_TOKEN": token})
    assert remote.returncode == 0, remote.stderr
    assert '"total": 5' in remote.stdout
    refused = run("--url", url, "--token", "wrong", "status", cwd=elsewhere, env=env)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("Error: the server refused the admin token")
    assert refused.stderr.count("\n") == 1

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    log = process.stderr.read() + (project_dir / "server.log").read_text()
    assert "GET /api/status 200" in log and "GET /api/status 401" in log
    assert token not in log


def test_the_cli_says_so_in_one_line_when_no_server_answers(project_dir: Path, environ: dict[str, str]) -> None:
    port = free_port()
    finished = run("--url", f"http://127.0.0.1:{port}", "--token", "t", "status", cwd=project_dir,
                   env=clean_environment(environ))
    assert finished.returncode == 1 and finished.stdout == ""
    assert finished.stderr == (f"Error: cannot connect to http://127.0.0.1:{port}: [Errno 111] Connection refused "
                               f"(is `psiturk-async serve` running there? --url or PSITURK_URL say where it is)\n")
