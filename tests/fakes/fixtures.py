"""The `fake_mturk` pytest fixture and the handle it yields.

tests/ is on sys.path (it has no __init__.py), so this package imports as `fakes`. Use the fixture from a test
module with `from fakes import fixtures; fake_mturk = fixtures.fake_mturk`, or for the whole suite with
`pytest_plugins = ["fakes.fixtures"]` in tests/conftest.py.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from botocore.config import Config

from .mturk import create_app
from .mturk_state import FakeMTurkState
from .server import BackgroundServer

ACCESS_KEY = "AKIDFAKEMTURK"
SECRET_KEY = "fake-mturk-secret"


class FakeMTurk:
    """A running fake: `url` for endpoint_url, `state` to inspect directly, helpers that drive /_fake/."""

    def __init__(self, url: str, state: FakeMTurkState) -> None:
        self.url = url
        self.state = state
        self._http = httpx.Client(base_url=f"{url}/_fake", timeout=10)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"fake MTurk refused {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def client_kwargs(
        self, *, attempts: int = 3, read_timeout: float = 5, connect_timeout: float = 2, **config: Any
    ) -> dict[str, Any]:
        """Arguments for `aioboto3.Session().client("mturk", **...)` against this fake.

        `attempts` counts every try (1 disables retries); timeouts are short so a stuck call fails fast."""
        retries = {"mode": "legacy", "total_max_attempts": attempts}
        return {
            "region_name": "us-east-1",
            "endpoint_url": self.url,
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
            "config": Config(
                retries=retries, read_timeout=read_timeout, connect_timeout=connect_timeout, **config
            ),
        }

    def accept(self, hit_id: str, worker_id: str | None = None) -> str:
        """A worker accepts the HIT; returns the new assignment's id."""
        body = {"worker_id": worker_id} if worker_id else {}
        return str(self._call("POST", f"/hits/{hit_id}/accept", json=body)["AssignmentId"])

    def submit(self, assignment_id: str, answers: dict[str, str] | None = None) -> dict[str, Any]:
        """The worker submits the assignment (it becomes Submitted)."""
        return dict(self._call("POST", f"/assignments/{assignment_id}/submit", json={"answers": answers or {}}))

    def return_assignment(self, assignment_id: str) -> dict[str, Any]:
        """The worker returns the assignment; its slot opens again."""
        return dict(self._call("POST", f"/assignments/{assignment_id}/return"))

    def assignments(self, hit_id: str | None = None) -> list[dict[str, Any]]:
        """Every assignment, including accepted, returned and abandoned ones the API does not show."""
        return list(self._call("GET", "/assignments", params={"hit_id": hit_id} if hit_id else {}))

    def set_balance(self, balance: str | None = None, *, charge: bool | None = None) -> dict[str, Any]:
        """Set the available balance and/or whether approvals and bonuses are charged."""
        body: dict[str, Any] = {"balance": balance} if balance is not None else {}
        if charge is not None:
            body["charge"] = charge
        return dict(self._call("PUT", "/balance", json=body))

    def advance_clock(self, seconds: float) -> float:
        """Move the fake's clock (expiry, deadlines, auto-approval); returns its new now."""
        return float(self._call("POST", "/clock", json={"seconds": seconds})["now"])

    def inject(
        self,
        kind: str,
        *,
        operation: str | None = None,
        times: int = 1,
        seconds: float = 0.0,
        status: int = 500,
        patch: dict[str, Any] | None = None,
    ) -> None:
        """Make the next `times` calls (of `operation`, or any) fail: throttle, service_fault (HTTP `status`),
        delay (`seconds` before anything happens), delay_after_commit (the call takes effect, then the answer
        waits `seconds`), corrupt_response (`patch` merged into the answer, which the shape check then catches)."""
        fault = {"kind": kind, "operation": operation, "times": times, "seconds": seconds, "status": status}
        self._call("POST", "/faults", json=fault | {"patch": patch or {}})

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def bonuses(self) -> list[dict[str, Any]]:
        """Every bonus paid, with its fee and UniqueRequestToken."""
        return list(self._call("GET", "/bonuses"))

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        """Requests seen on the MTurk endpoint: operation, request, status, error, attempt."""
        return list(self._call("GET", "/calls", params={"operation": operation} if operation else {}))

    @property
    def problems(self) -> list[str]:
        """Shape and protocol mismatches seen so far."""
        return list(self.state.problems)

    def take_problems(self) -> list[str]:
        """Return and forget the mismatches, for tests that provoke them on purpose."""
        return list(self._call("DELETE", "/problems"))

    def reset(self) -> None:
        self._call("POST", "/reset")

    def assert_no_problems(self) -> None:
        if self.state.problems:
            listing = "\n  ".join(self.state.problems)
            raise AssertionError(
                f"the fake MTurk saw requests or responses that do not fit botocore's model:\n  {listing}"
            )


def isolate_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, no profile, no config files, no instance metadata: botocore never probes the cloud."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)


@contextmanager
def running_fake_mturk() -> Iterator[FakeMTurk]:
    """Serve a fresh fake MTurk on 127.0.0.1 for the block; raise at its end if any call broke the model."""
    state = FakeMTurkState()
    with BackgroundServer(create_app(state)) as server:
        fake = FakeMTurk(server.url, state)
        try:
            yield fake
        finally:
            state.stopping.set()
            fake.close()
    fake.assert_no_problems()


@pytest.fixture
def fake_mturk(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMTurk]:
    """A fresh fake MTurk on 127.0.0.1; the test fails at teardown if any request or response broke the model."""
    isolate_aws_environment(monkeypatch)
    with running_fake_mturk() as fake:
        yield fake
