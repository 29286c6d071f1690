"""The admin API's bearer token: which token is right, the check every /api route makes, the brake on guessing."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections import deque
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .admin_token import read_token
from .deps import SettingsDep
from .errors import error_responses
from .identity import client_ip
from .settings import Settings

logger = logging.getLogger(__name__)

FAILURES_ALLOWED = 5
FAILURE_WINDOW_SECONDS = 60.0
TRACKED_ADDRESSES = 4096
CHALLENGE = {"WWW-Authenticate": "Bearer"}

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="The admin token: the admin_token setting, or the one `psiturk-async serve` wrote to "
                ".psiturk/admin_token in the project folder.",
)


class FailureLimiter:
    """Wrong tokens per address within a sliding window; an address past the limit waits for the window."""

    def __init__(self, *, allowed: int = FAILURES_ALLOWED, window: float = FAILURE_WINDOW_SECONDS,
                 tracked: int = TRACKED_ADDRESSES) -> None:
        self.allowed = allowed
        self.window = window
        self.tracked = tracked
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, address: str, now: float) -> float | None:
        """Seconds the address must still wait, or None when it may try."""
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures[0] + self.window - now if len(failures) >= self.allowed else None

    def record(self, address: str, now: float) -> None:
        if address not in self._failures and len(self._failures) >= self.tracked:
            self._forget(now)
        self._failures.setdefault(address, deque(maxlen=self.allowed)).append(now)

    def _forget(self, now: float) -> None:
        # Bounded memory whatever the number of addresses: drop the stale, else the longest-known one.
        stale = [address for address, failures in self._failures.items() if failures[-1] <= now - self.window]
        for address in stale:
            del self._failures[address]
        if len(self._failures) >= self.tracked:
            del self._failures[next(iter(self._failures))]


def expected_token(app: FastAPI, settings: Settings) -> str | None:
    """The configured token, else the one in the project's token file (read once found)."""
    if settings.admin_token:
        return settings.admin_token
    token: str | None = getattr(app.state, "admin_token_from_file", None)
    if token is None:
        token = read_token(settings.project_dir)
        app.state.admin_token_from_file = token
    return token


def same_token(offered: str, expected: str) -> bool:
    """Compared in constant time; hashed first so that not even the length is told."""
    digest = hashlib.sha256
    return hmac.compare_digest(digest(offered.encode()).digest(), digest(expected.encode()).digest())


def failure_limiter(app: FastAPI) -> FailureLimiter:
    limiter: FailureLimiter | None = getattr(app.state, "admin_failures", None)
    if limiter is None:
        limiter = app.state.admin_failures = FailureLimiter()
    return limiter


async def require_admin(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through only with the admin token; 401 JSON otherwise, 429 after repeated guesses."""
    address = client_ip(request, settings.trusted_proxy_set())
    limiter = failure_limiter(request.app)
    now = time.monotonic()
    wait = limiter.retry_after(address, now)
    if wait is not None:
        raise HTTPException(429, "too many wrong admin tokens from this address; try again later",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})
    if credentials is None:
        raise HTTPException(401, "the admin API needs the header Authorization: Bearer <admin token>",
                            headers=CHALLENGE)
    expected = expected_token(request.app, settings)
    if expected is None:
        raise HTTPException(401, "the server has no admin token: set admin_token, or start it with "
                                 "`psiturk-async serve`, which writes one", headers=CHALLENGE)
    if not same_token(credentials.credentials, expected):
        limiter.record(address, now)
        logger.warning("admin API: wrong token from %s for %s %s", address, request.method, request.url.path)
        raise HTTPException(401, "wrong admin token", headers=CHALLENGE)


def admin_router(**kwargs: Any) -> APIRouter:
    """A router under /api whose every route needs the admin token: build every admin router with it."""
    return APIRouter(prefix="/api", dependencies=[Depends(require_admin)],
                     responses=error_responses(401, 429), **kwargs)
