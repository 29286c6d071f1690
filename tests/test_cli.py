"""The remote CLI end to end in-process (Starlette's TestClient is an httpx.Client), and its failures."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from admin_data import FIXTURE, FIXTURE_UID, GOLDEN, TOKEN, golden_participants, seed
from conftest import free_port
from psiturk_async.admin_token import ensure_token, read_token
from psiturk_async.cli import app
from psiturk_async.cli.client import Connection, server_url
from psiturk_async.main import create_app
from psiturk_async.migrate import upgrade
from psiturk_async.settings import Settings

CLEAN_ENV = {"PSITURK_URL": None, "PSITURK_ADMIN_TOKEN": None, "PSITURK_DEBUG": None, "COLUMNS": "200"}
DEBUG_LINK = re.compile(r"^http://testserver/ad\?assignmentId=debug[A-Z0-9]{6}&hitId=debug[A-Z0-9]{6}"
                        r"&workerId=debug[A-Z0-9]{6}&mode=debug$")


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings(admin_token=TOKEN, experiment_code_version="1.0")


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    """The server in-process, with the export goldens' study in its database."""
    upgrade(settings)
    seed(settings, golden_participants())
    with TestClient(create_app(settings)) as client:
        yield client


def cli(http: httpx.Client, *args: str, token: str | None = TOKEN) -> Result:
    options = ["--token", token] if token else []
    return CliRunner().invoke(app, [*options, *args], obj=Connection(http=http), env=CLEAN_ENV)


def test_status_prints_the_server_in_a_table(http: TestClient) -> None:
    result = cli(http, "status")
    assert result.exit_code == 0, result.output
    assert re.search(r"Mode\s+sandbox", result.stdout) and re.search(r"Code version\s+1\.0", result.stdout)
    assert re.search(r"Participants\s+5 \(0 finished in code version 1\.0, sandbox\)", result.stdout)
    assert re.search(r"COMPLETED\s+3", result.stdout)


def test_status_prints_json_with_the_json_option(http: TestClient, database_url: str) -> None:
    result = cli(http, "--json", "status")
    status = json.loads(result.stdout)
    assert status["participants"] == 5 and status["database"] == database_url.split(":")[0]


def test_mode_prints_and_sets_the_mode_but_never_toggles(http: TestClient) -> None:
    assert cli(http, "mode").stdout == "mode: sandbox\n"
    assert cli(http, "mode").stdout == "mode: sandbox\n"
    assert cli(http, "mode", "live").stdout == "Entered live mode\n"
    assert cli(http, "mode", "live").stdout == "mode is already live\n"
    assert json.loads(cli(http, "--json", "mode").stdout) == {"mode": "live"}
    refused = cli(http, "mode", "debug")
    assert refused.exit_code == 2 and cli(http, "mode").stdout == "mode: live\n"


def test_config_print_shows_sources_and_hides_the_token(http: TestClient) -> None:
    result = cli(http, "config", "print")
    assert result.exit_code == 0 and TOKEN not in result.stdout
    assert re.search(r"admin_token\s+\*{8}\s+PSITURK_ADMIN_TOKEN", result.stdout)
    entries = json.loads(cli(http, "--json", "config", "print").stdout)["entries"]
    assert {"section": "Task Parameters", "key": "experiment_code_version", "value": "1.0",
            "source": "PSITURK_EXPERIMENT_CODE_VERSION", "secret": False} in entries


def test_debug_prints_a_fresh_link_and_opens_it_unless_told_not_to(http: TestClient,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    printed = cli(http, "debug", "-p")
    assert printed.exit_code == 0 and DEBUG_LINK.match(printed.stdout.strip()) and opened == []
    shown = cli(http, "debug")
    assert opened == [shown.stdout.strip()] and shown.stdout != printed.stdout


@pytest.mark.parametrize("command", ["download-datafiles", "download_datafiles"])
def test_download_datafiles_writes_psiturks_three_csvs(http: TestClient, tmp_path: Path, command: str) -> None:
    result = cli(http, command, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    for kind in ("trialdata", "eventdata", "questiondata"):
        assert (tmp_path / f"{kind}.csv").read_bytes() == (GOLDEN / f"{kind}.csv").read_bytes()
        assert f"wrote {tmp_path / kind}.csv (" in result.stdout
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("file_format", ["json", "jsonl"])
def test_download_datafiles_writes_json_formats(http: TestClient, tmp_path: Path, file_format: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli(http, "--json", "download-datafiles", "--format", file_format)
    assert result.exit_code == 0, result.output
    assert [item["file"] for item in json.loads(result.stdout)["files"]] == [
        f"{kind}.{file_format}" for kind in ("trialdata", "eventdata", "questiondata")]
    for kind in ("trialdata", "eventdata", "questiondata"):
        assert (tmp_path / f"{kind}.{file_format}").read_bytes() == (GOLDEN / f"{kind}.{file_format}").read_bytes()


def test_download_datafiles_takes_the_participant_filters(http: TestClient, tmp_path: Path) -> None:
    result = cli(http, "download-datafiles", "--out", str(tmp_path), "--completed", "--condition", "1")
    assert result.exit_code == 0, result.output
    questions = (tmp_path / "questiondata.csv").read_text()
    assert questions and all(line.startswith(FIXTURE_UID) for line in questions.splitlines() if "," in line)


def test_participants_list_shows_a_table_and_pages(http: TestClient) -> None:
    result = cli(http, "participants", "list", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert FIXTURE_UID in result.stdout and "B2WORKER:B2ASSIGNMENT" in result.stdout
    assert "2 of 5 matching participants shown." in result.stdout
    assert "Next page: --after 'B2WORKER:B2ASSIGNMENT'" in result.stdout
    following = json.loads(cli(http, "--json", "participants", "list", "--after", "B2WORKER:B2ASSIGNMENT").stdout)
    assert [item["uniqueid"] for item in following["items"]] == [
        "C3BROKEN:C3ASSIGNMENT", "D4EMPTY:D4ASSIGNMENT", "E5PARTIAL:E5ASSIGNMENT"]


def test_participants_list_filters_by_status_name(http: TestClient) -> None:
    page = json.loads(cli(http, "--json", "participants", "list", "--status", "quitearly", "--status", "1").stdout)
    assert [item["uniqueid"] for item in page["items"]] == ["D4EMPTY:D4ASSIGNMENT", "E5PARTIAL:E5ASSIGNMENT"]


def test_participants_counts_shows_cells_and_statuses(http: TestClient) -> None:
    result = cli(http, "participants", "counts", "--mode", "live")
    assert result.exit_code == 0, result.output
    assert re.search(r"^\s*0\s+1\s+1\s*$", result.stdout, re.M) and re.search(r"3 COMPLETED\s+3", result.stdout)
    assert "4 matching participants." in result.stdout
    counts = json.loads(cli(http, "--json", "participants", "counts").stdout)
    assert counts["total"] == 5 and {"cond": 1, "counterbalance": 0, "count": 1} in counts["cells"]


def test_participants_show_summarises_the_data(http: TestClient) -> None:
    result = cli(http, "participants", "show", FIXTURE_UID)
    assert result.exit_code == 0, result.output
    assert re.search(r"status\s+3 COMPLETED", result.stdout) and re.search(r"trials\s+14", result.stdout)
    assert re.search(r"engagement\s+8", result.stdout)
    shown = json.loads(cli(http, "--json", "participants", "show", FIXTURE_UID).stdout)
    assert shown["data"] == json.loads(FIXTURE.read_text())
    broken = cli(http, "participants", "show", "C3BROKEN:C3ASSIGNMENT")
    assert broken.exit_code == 0 and "Data cannot be read: not JSON" in broken.stdout


def test_an_unknown_participant_is_one_line_and_exit_1(http: TestClient) -> None:
    result = cli(http, "participants", "show", "nobody:none")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == ("Error: 404 not_found from /api/participants/nobody:none: "
                             "no participant 'nobody:none'\n")


def test_a_wrong_token_is_one_line_and_exit_1(http: TestClient) -> None:
    result = cli(http, "status", token="not-the-token")
    assert result.exit_code == 1
    assert result.stderr == ("Error: the server refused the admin token (wrong admin token); "
                             "pass --token or set PSITURK_ADMIN_TOKEN\n")


def mocked(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler), base_url="http://psiturk.example")


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc
    return handler


def answering(status: int, **kwargs: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, **kwargs)


FAILURES = {
    "refused": (raising(httpx.ConnectError("[Errno 111] Connection refused")),
                "Error: cannot connect to http://psiturk.example: [Errno 111] Connection refused (is "
                "`psiturk-async serve` running there? --url or PSITURK_URL say where it is)"),
    "read timeout": (raising(httpx.ReadTimeout("timed out")),
                     "Error: http://psiturk.example did not answer in time (is the server overloaded or "
                     "unreachable?)"),
    "dropped": (raising(httpx.RemoteProtocolError("Server disconnected\nwithout a response")),
                "Error: the connection to http://psiturk.example failed: RemoteProtocolError: Server "
                "disconnected"),
    "401": (answering(401, json={"error": "unauthorized", "detail": "wrong admin token"}),
            "Error: the server refused the admin token (wrong admin token); pass --token or set "
            "PSITURK_ADMIN_TOKEN"),
    "429": (answering(429, json={"error": "too_many_requests", "detail": "too many wrong admin tokens"},
                      headers={"Retry-After": "42"}),
            "Error: too many wrong admin tokens (retry after 42 s)"),
    "422": (answering(422, json={"error": "invalid_request", "detail": "limit: too big\nsecond line"}),
            "Error: 422 invalid_request from /api/status: limit: too big"),
    "500 html": (answering(500, text="<html><body>Internal\nServer Error</body></html>"),
                 "Error: 500 Internal Server Error from /api/status"),
    "not the API": (answering(200, text="<!doctype html><p>a different web server</p>"),
                    "Error: http://psiturk.example answered /api/status with something other than the admin "
                    "API's JSON (is it a psiturk-async 0.1.0 server?): Invalid JSON: expected value at line 1 "
                    "column 1"),
    "wrong shape": (answering(200, json={"hello": "world"}),
                    "Error: http://psiturk.example answered /api/status with something other than the admin "
                    "API's JSON (is it a psiturk-async 0.1.0 server?): Field required"),
}


@pytest.mark.parametrize("name", list(FAILURES))
def test_every_failure_is_one_line_and_exit_1(name: str) -> None:
    handler, message = FAILURES[name]
    result = cli(mocked(handler), "status")
    assert result.exit_code == 1
    assert result.stdout == "" and result.stderr == message + "\n"
    assert "Traceback" not in result.output


def test_a_download_that_fails_halfway_leaves_no_file(tmp_path: Path) -> None:
    class Broken(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b"W1:A1,0,1,{}\r\n"
            raise httpx.ReadError("connection reset")

    result = cli(mocked(lambda request: httpx.Response(200, stream=Broken())), "download-datafiles",
                 "--out", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == "Error: the connection to http://psiturk.example failed: ReadError: connection reset\n"
    assert list(tmp_path.iterdir()) == []


def test_bad_filters_are_caught_before_any_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request should be sent")

    result = cli(mocked(handler), "participants", "list", "--status", "finished")
    assert result.exit_code == 1 and result.stderr.startswith("Error: --status: ")
    assert len(result.stderr.splitlines()) == 1


def test_a_server_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["--url", url, "--token", "t", "status"], env=CLEAN_ENV)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot connect to {url}: ") and len(result.stderr.splitlines()) == 1


def test_without_a_token_anywhere_the_cli_says_where_to_put_one(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PSITURK_GLOBAL_CONFIG_LOCATION", str(tmp_path))
    result = CliRunner().invoke(app, ["status"], env=CLEAN_ENV)
    assert result.exit_code == 1
    assert result.stderr == ("Error: no admin token: pass --token or set PSITURK_ADMIN_TOKEN, or run this in the "
                             "project folder where `psiturk-async serve` wrote .psiturk/admin_token\n")


def test_the_project_folder_gives_the_url_and_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSITURK_GLOBAL_CONFIG_LOCATION", str(tmp_path))
    for name in ("PORT", "PSITURK_PORT", "PSITURK_HOST", "PSITURK_ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config.txt").write_text("[Server Parameters]\nhost = 0.0.0.0\nport = 23456\n")
    ensure_token(tmp_path)
    api = Connection(project_dir=tmp_path).client()
    assert api.where == "http://127.0.0.1:23456"
    assert api.headers == {"Authorization": f"Bearer {read_token(tmp_path)}"}


def test_a_configured_token_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSITURK_GLOBAL_CONFIG_LOCATION", str(tmp_path))
    monkeypatch.delenv("PSITURK_ADMIN_TOKEN", raising=False)
    (tmp_path / ".env").write_text("PSITURK_ADMIN_TOKEN=from-dotenv\n")
    ensure_token(tmp_path)
    api = Connection(project_dir=tmp_path, url="http://x").client()
    assert api.headers["Authorization"] == "Bearer from-dotenv"


@pytest.mark.parametrize(("host", "tls", "expected"), [
    ("localhost", False, "http://localhost:22362"),
    ("0.0.0.0", True, "https://127.0.0.1:22362"),
    ("::", False, "http://[::1]:22362"),
    ("fd00::5", False, "http://[fd00::5]:22362"),
])
def test_the_url_of_a_configured_server(host: str, tls: bool, expected: str) -> None:
    assert server_url(host, 22362, tls=tls) == expected
