"""The MTurk clients: made on first use, endpoint by mode or setting, bounded retries and timeouts, typed
errors, and a server that runs without any AWS credentials."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError
from fastapi import FastAPI

from fakes.fixtures import FakeMTurk
from mturk_world import api, fake_settings, use_clients
from participant_flow import arrive, browser, running_app
from psiturk_async.mturk.client import (
    ENDPOINTS,
    MTurkError,
    MTurkNotConfigured,
    MTurkUnavailable,
    endpoint_for,
    translate,
)
from psiturk_async.settings import Settings


@pytest.fixture
def settings(make_settings: Any, fake_mturk: FakeMTurk) -> Settings:
    return make_settings(**fake_settings(fake_mturk))


def client_error(code: str, message: str, *, status: int = 400, turk_code: str | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message},
                                "ResponseMetadata": {"HTTPStatusCode": status}}
    if turk_code:
        response["TurkErrorCode"] = turk_code
    return ClientError(response, "SendBonus")  # type: ignore[arg-type]


def test_endpoints_by_mode_unless_overridden(make_settings: Any) -> None:
    plain = make_settings()
    assert endpoint_for(plain, "sandbox") == "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
    assert endpoint_for(plain, "live") == ENDPOINTS["live"] == "https://mturk-requester.us-east-1.amazonaws.com"
    proxied = make_settings(mturk_endpoint_url="http://127.0.0.1:9")
    assert endpoint_for(proxied, "live") == endpoint_for(proxied, "sandbox") == "http://127.0.0.1:9"


def test_errors_become_typed_errors_with_mturks_code_and_message() -> None:
    refused = translate("send_bonus", client_error("RequestError", "No such assignment (1700000000000)",
                                                   turk_code="AWS.MechanicalTurk.AssignmentDoesNotExist"))
    assert isinstance(refused, MTurkError)
    assert (refused.code, refused.message) == ("AWS.MechanicalTurk.AssignmentDoesNotExist",
                                               "No such assignment (1700000000000)")
    assert isinstance(translate("send_bonus", client_error("ServiceFault", "try again", status=500)),
                      MTurkUnavailable)
    assert isinstance(translate("send_bonus", client_error("ThrottlingException", "Rate exceeded")),
                      MTurkUnavailable)
    assert isinstance(translate("x", ReadTimeoutError(endpoint_url="http://h")), MTurkUnavailable)
    assert isinstance(translate("x", EndpointConnectionError(endpoint_url="http://h")), MTurkUnavailable)
    assert isinstance(translate("x", NoCredentialsError()), MTurkNotConfigured)
    signature = translate("x", client_error("InvalidSignatureException", "bad signature", status=403))
    assert isinstance(signature, MTurkError) and "AWS credentials were refused" in signature.message


async def test_clients_are_made_on_first_use(app: FastAPI, client: httpx.AsyncClient,
                                             fake_mturk: FakeMTurk) -> None:
    clients = app.state.mturk
    assert clients._clients == {}  # starting the server made none
    assert (await api(client, "GET", "/balance"))["available"] == "10000.00"
    assert list(clients._clients) == ["sandbox"]
    made = clients._clients["sandbox"]
    assert made.meta.region_name == "us-east-1" and made.meta.endpoint_url == fake_mturk.url
    assert clients.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert (clients.config.connect_timeout, clients.config.read_timeout) == (5.0, 20.0)


async def test_retries_are_bounded(app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    fake_mturk.inject("service_fault", operation="GetAccountBalance", times=10)
    failed = await api(client, "GET", "/balance", expect=504)
    assert failed["error"] == "mturk_unavailable" and "ServiceFault" in failed["detail"]
    assert [c["attempt"] for c in fake_mturk.calls("GetAccountBalance")] == [1, 2, 3]


async def test_throttling_is_retried(app: FastAPI, client: httpx.AsyncClient, fake_mturk: FakeMTurk) -> None:
    fake_mturk.inject("throttle", operation="GetAccountBalance")
    assert (await api(client, "GET", "/balance"))["available"] == "10000.00"
    assert [c["status"] for c in fake_mturk.calls("GetAccountBalance")] == [400, 200]


async def test_a_slow_mturk_times_out(app: FastAPI, settings: Settings, client: httpx.AsyncClient,
                                      fake_mturk: FakeMTurk) -> None:
    use_clients(app, settings, read_timeout=0.3, attempts=1)
    fake_mturk.inject("delay", operation="GetAccountBalance", seconds=2)
    failed = await api(client, "GET", "/balance", expect=504)
    assert "ReadTimeoutError" in failed["detail"] and "may or may not have taken effect" in failed["detail"]


async def test_the_server_runs_without_aws_credentials(
        make_settings: Any, fake_mturk: FakeMTurk, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    overrides = fake_settings(fake_mturk)
    del overrides["aws_access_key_id"], overrides["aws_secret_access_key"]
    settings = make_settings(**overrides)
    async with running_app(settings) as app:
        async with browser(app) as http:
            await arrive(http, worker="W1", assignment="A1", hit="H1", mode="sandbox")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as admin:
            refused = await api(admin, "GET", "/balance", expect=503)
    assert refused["error"] == "mturk_not_configured"
    assert "aws_access_key_id" in refused["detail"] and "AWS_ACCESS_KEY_ID" in refused["detail"]
    assert fake_mturk.calls() == []  # botocore refused before sending anything
