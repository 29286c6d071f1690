"""The MTurk clients (one per mode, made on first use) and the three ways an MTurk call can fail.

A call either succeeds, is refused by MTurk (`MTurkError`: nothing happened, MTurk's code and message say why),
or gets no usable answer (`MTurkUnavailable`: it may or may not have taken effect). Callers that move money
treat the last one as "outcome unknown" and reconcile before trying again. `MTurkNotConfigured` means no
credentials were found; the server runs without them and only MTurk operations refuse.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Any, Literal

import aioboto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)

from ..settings import Settings

logger = logging.getLogger(__name__)

Mode = Literal["sandbox", "live"]
REGION = "us-east-1"  # MTurk exists only there; botocore would build other regions' (non-existent) hosts
ENDPOINTS: dict[str, str] = {
    "sandbox": "https://mturk-requester-sandbox.us-east-1.amazonaws.com",
    "live": "https://mturk-requester.us-east-1.amazonaws.com",
}
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
ATTEMPTS = 3  # every try counted; botocore's "standard" mode retries throttling, 5xx and lost connections
# Answers that mean "MTurk could not take the request now": the call may have taken effect.
UNAVAILABLE_CODES = frozenset({"ServiceFault", "ThrottlingException", "ServiceUnavailable", "InternalFailure",
                               "RequestTimeout", "RequestTimeoutException"})
CREDENTIALS_HELP = ("set aws_access_key_id and aws_secret_access_key under [AWS Access] in ~/.psiturkconfig, "
                    "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the server's environment")


class MTurkError(Exception):
    """MTurk refused the call: it did not take effect. `code` is MTurk's TurkErrorCode when it sent one."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.operation = operation
        self.code = code
        self.message = message


class MTurkUnavailable(Exception):
    """No usable answer (timeout, lost connection, service fault): the call may or may not have taken effect."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"{operation}: {reason}")
        self.operation = operation
        self.reason = reason


class MTurkNotConfigured(Exception):
    """No AWS credentials: MTurk operations cannot run until some are configured."""


def endpoint_for(settings: Settings, mode: Mode) -> str:
    """The URL calls of this mode go to: mturk_endpoint_url when set (tests, proxies), else AWS's."""
    return settings.mturk_endpoint_url or ENDPOINTS[mode]


class MTurkClients:
    """One aiobotocore MTurk client per mode, opened on first use and closed with the app."""

    def __init__(self, settings: Settings, *, connect_timeout: float = CONNECT_TIMEOUT,
                 read_timeout: float = READ_TIMEOUT, attempts: int = ATTEMPTS) -> None:
        self.settings = settings
        self.config = Config(
            region_name=REGION,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": attempts},
        )
        self._clients: dict[str, Any] = {}
        self._stack = AsyncExitStack()
        self._opening = asyncio.Lock()

    @property
    def call_budget_seconds(self) -> float:
        """The longest one call can take, retries included (a bound for leases on work in flight)."""
        attempts = self.config.retries["total_max_attempts"]
        return attempts * (self.config.connect_timeout + self.config.read_timeout) + 30

    async def client(self, mode: Mode) -> Any:
        """The client for `mode`, created on first use; credentials come from the settings, else boto's chain."""
        async with self._opening:
            if mode not in self._clients:
                keys: dict[str, str] = {}
                if self.settings.aws_access_key_id and self.settings.aws_secret_access_key:
                    keys = {"aws_access_key_id": self.settings.aws_access_key_id,
                            "aws_secret_access_key": self.settings.aws_secret_access_key}
                session = aioboto3.Session(region_name=REGION, **keys)
                self._clients[mode] = await self._stack.enter_async_context(session.client(
                    "mturk", endpoint_url=endpoint_for(self.settings, mode), config=self.config))
            return self._clients[mode]

    async def call(self, mode: Mode, operation: str, **params: Any) -> dict[str, Any]:
        """Call one MTurk operation (botocore's snake_case name); failures become the errors above."""
        try:
            client = await self.client(mode)
            response: dict[str, Any] = await getattr(client, operation)(**params)
        except Exception as exc:
            raise translate(operation, exc) from exc
        response.pop("ResponseMetadata", None)
        return response

    async def pages(self, mode: Mode, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a listing operation, following NextToken page by page."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await self.call(mode, operation, MaxResults=100, **params,
                                   **({"NextToken": token} if token else {}))
            items.extend(page.get(key, []))
            token = page.get("NextToken")
            if not token:
                return items

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._clients.clear()


def translate(operation: str, exc: Exception) -> Exception:
    """The typed error for whatever botocore or the network raised."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return MTurkNotConfigured(f"no AWS credentials for MTurk: {CREDENTIALS_HELP}")
    if isinstance(exc, ClientError):
        response: dict[str, Any] = exc.response  # type: ignore[assignment]
        error = response.get("Error", {})
        kind = str(error.get("Code", "Unknown"))
        code = str(response.get("TurkErrorCode") or kind)
        message = str(error.get("Message") or response.get("Message") or "")
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) or 400)
        if kind in UNAVAILABLE_CODES or status >= 500:
            return MTurkUnavailable(operation, f"{code}: {message}")
        if kind in ("UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
                    "IncompleteSignatureException", "AccessDeniedException"):
            message = f"{message} (the AWS credentials were refused: {CREDENTIALS_HELP})"
        return MTurkError(operation, code, message)
    if isinstance(exc, ParamValidationError | NoRegionError):
        return MTurkError(operation, type(exc).__name__, str(exc))
    if isinstance(exc, BotoCoreError | OSError | asyncio.TimeoutError):
        return MTurkUnavailable(operation, f"{type(exc).__name__}: {exc}")
    return exc
