"""`psiturk-async serve` as a real process: health, docs, TLS, clean shutdown; and `setup-example`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import free_port, stop_process
from psiturk_async.settings import KEYS

CLI = [sys.executable, "-m", "psiturk_async.cli"]


def wait_healthy(url: str, process: subprocess.Popen, *, verify: bool | str = True, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"server exited with {process.returncode}: {output}")
        try:
            if httpx.get(f"{url}/healthz", verify=verify, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become healthy")


@pytest.fixture
def served(project_dir: Path, environ: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    process = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "2"], cwd=project_dir,
                               env={**os.environ, **environ, "PSITURK_ACCESSLOG": "-"}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url, process
    finally:
        stop_process(process)


def test_serve_answers_health_docs_and_openapi(served: tuple[str, subprocess.Popen]) -> None:
    url, _process = served
    health = httpx.get(f"{url}/healthz").json()
    assert health["status"] == "ok" and health["database"] in {"sqlite", "postgresql"}
    assert "swagger" in httpx.get(f"{url}/docs").text.lower()
    assert "/healthz" in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_serve_answers_back_to_back_on_one_connection_with_and_without_bodies(
        served: tuple[str, subprocess.Popen]) -> None:
    # Each response's head and body leave in one write (http_protocol.py); one without a body must too.
    url, _process = served
    with httpx.Client(base_url=url, timeout=30) as http:
        script = http.get("/static/js/psiturk.js")
        assert script.status_code == 200 and int(script.headers["content-length"]) == len(script.content) > 0
        head = http.head("/static/css/style.css")
        assert head.status_code == 200 and head.content == b""
        style = http.get("/static/css/style.css")
        again = http.get("/static/css/style.css", headers={"If-None-Match": style.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        for _ in range(3):
            assert http.get("/consent", params={"hitId": "h", "assignmentId": "a", "workerId": "w",
                                               "mode": "debug"}).status_code == 200
        assert http.get("/sync/nobody").status_code in (403, 404)


def test_serve_logs_requests_and_stops_on_sigterm(served: tuple[str, subprocess.Popen]) -> None:
    url, process = served
    httpx.get(f"{url}/ad?hitId=h&assignmentId=a&workerId=w&mode=debug&secret=leak")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    log = process.stderr.read()
    assert "GET /ad 200" in log
    assert "leak" not in log


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("accesslog", ["/dev/null", "requests.log"])
def test_request_lines_go_where_accesslog_says(project_dir: Path, environ: dict[str, str], accesslog: str) -> None:
    port = free_port()
    process = subprocess.Popen([*CLI, "serve", "--port", str(port)], cwd=project_dir,
                               env={**os.environ, **environ, "PSITURK_ACCESSLOG": accesslog},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        httpx.get(f"http://127.0.0.1:{port}/ad?hitId=h&assignmentId=a&workerId=w&mode=debug&secret=leak")
        httpx.get(f"http://127.0.0.1:{port}/api/status")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    console = process.stderr.read()
    assert "Application shutdown complete" in console
    assert "GET /ad" not in console and "leak" not in console
    access_file = project_dir / "requests.log"
    if accesslog == "/dev/null":
        assert not access_file.exists()
    else:
        requests = [line.split(": ", 1)[1].rsplit(" ", 1)[0] for line in access_file.read_text().splitlines()]
        assert [line for line in requests if not line.startswith("GET /healthz")] == [
            "GET /ad 200", "GET /api/status 401"]
        assert "leak" not in access_file.read_text()


def test_healthz_is_503_without_a_database(project_dir: Path, environ: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    process = subprocess.Popen([*CLI, "serve", "--port", str(port), "--no-migrate"], cwd=project_dir, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(process.stderr.read() if process.poll() is not None else "no answer")
        assert response.status_code == 503
        assert "nobody" not in response.text
    finally:
        stop_process(process)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_over_tls(project_dir: Path, environ: dict[str, str], tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    certificate.cert_chain_pems[0].write_to_path(project_dir / "cert.pem")
    certificate.private_key_pem.write_to_path(project_dir / "key.pem")
    authority.cert_pem.write_to_path(tmp_path / "ca.pem")
    port = free_port()
    env = {**os.environ, **environ, "PSITURK_CERTFILE": "cert.pem", "PSITURK_KEYFILE": "key.pem"}
    process = subprocess.Popen([*CLI, "serve", "--port", str(port)], cwd=project_dir, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_healthy(f"https://127.0.0.1:{port}", process, verify=str(tmp_path / "ca.pem"))
        page = httpx.get(f"https://127.0.0.1:{port}/exp?hitId=h&assignmentId=a&workerId=w&mode=debug",
                         verify=str(tmp_path / "ca.pem"))
        cookie = page.headers["set-cookie"].lower()
        assert "secure" in cookie and "samesite=none" in cookie and "httponly" in cookie
    finally:
        stop_process(process)


def test_version() -> None:
    result = subprocess.run([*CLI, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("psiturk-async ")


def test_setup_example_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "study"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    result = subprocess.run([*CLI, "setup-example", str(target)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "already exists" in result.stderr
    assert [path.name for path in target.iterdir()] == ["mine.txt"]


def test_setup_example_writes_a_complete_project(tmp_path: Path) -> None:
    result = subprocess.run([*CLI, "setup-example", str(tmp_path / "study")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    config = (tmp_path / "study" / "config.txt").read_text()
    assert all(f"{key.name} = " in config for key in KEYS)
    assert ";port = 22362" in config  # defaults stay commented out, so they never shadow other layers
    for name in ("templates/ad.html", "templates/exp.html", "static/js/task.js", "custom.py"):
        assert (tmp_path / "study" / name).is_file()


def test_setup_example_default_folder(tmp_path: Path) -> None:
    subprocess.run([*CLI, "setup-example"], cwd=tmp_path, capture_output=True, check=True)
    assert (tmp_path / "psiturk-example" / "config.txt").is_file()
