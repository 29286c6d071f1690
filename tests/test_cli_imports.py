"""The CLI stays a thin client: importing it, or running a remote command, loads no database or AWS code."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ["psiturk_async.db", "psiturk_async.models", "sqlalchemy", "aioboto3", "botocore"]

REMOTE_COMMAND = """
import httpx
from typer.testing import CliRunner
from psiturk_async.cli import app
from psiturk_async.cli.client import Connection

status = {"version": "0.1.0", "mode": "sandbox", "codeversion": "1.0", "database": "sqlite", "participants": 0,
          "finished": 0, "by_status": {}, "started_at": "2026-11-25T12:00:00Z", "uptime_seconds": 1.0}
http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=status)),
                    base_url="http://psiturk.example")
result = CliRunner().invoke(app, ["--token", "t", "status"], obj=Connection(http=http))
assert result.exit_code == 0, result.output
"""


def loaded_after(code: str) -> list[str]:
    """The forbidden modules a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([name for name in {FORBIDDEN!r} if name in sys.modules]))"
    finished = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.splitlines()[-1])


def test_the_probe_sees_a_module_that_is_loaded() -> None:
    assert loaded_after("import psiturk_async.models") == ["psiturk_async.models", "sqlalchemy"]


def test_importing_the_cli_loads_no_database_or_aws_code() -> None:
    assert loaded_after("import psiturk_async.cli") == []


def test_a_remote_command_loads_no_database_or_aws_code() -> None:
    assert loaded_after(REMOTE_COMMAND) == []
