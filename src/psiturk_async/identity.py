"""Who is asking: the participant secret that lets a browser write only its own record, and the client IP."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from .models import AppState

SECRET_HEADER = "X-PsiTurk-Secret"
COOKIE_PREFIX = "psiturk_secret_"
COOKIE_MAX_AGE = 14 * 24 * 3600
KEY_NAME = "participant_key"


async def load_participant_key(engine: AsyncEngine) -> bytes:
    """The key participant secrets derive from, made once per database so every process agrees on it."""
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    table = AppState.__table__  # type: ignore[attr-defined]
    async with engine.begin() as connection:
        await connection.execute(insert(table).values(key=KEY_NAME, value=secrets.token_hex(32))
                                 .on_conflict_do_nothing(index_elements=["key"]))
        value = (await connection.execute(select(table.c.value).where(table.c.key == KEY_NAME))).scalar_one()
    return bytes.fromhex(value)


# Every request of a participant in a study's busy hour asks for the same two hashes again; remembering the
# participants in flight saves two SHA-256 runs a request. Both are derived from the id alone (and the key).
CACHED_PARTICIPANTS = 4096


@lru_cache(maxsize=CACHED_PARTICIPANTS)
def participant_secret(key: bytes, unique_id: str) -> str:
    """A participant's secret: derived, so nothing per participant is stored and old rows have one too."""
    return hmac.new(key, unique_id.encode(), hashlib.sha256).hexdigest()[:32]


@lru_cache(maxsize=CACHED_PARTICIPANTS)
def cookie_name(unique_id: str) -> str:
    # One cookie per participant, so a researcher can run several debug participants in one browser.
    return COOKIE_PREFIX + hashlib.sha256(unique_id.encode()).hexdigest()[:12]


def presented_secret(request: Request, unique_id: str) -> str | None:
    return request.headers.get(SECRET_HEADER) or request.cookies.get(cookie_name(unique_id))


def holds_secret(request: Request, key: bytes, unique_id: str) -> bool:
    offered = presented_secret(request, unique_id)
    # Bytes, not str: compare_digest raises on non-ASCII text, and any header value can arrive.
    expected = participant_secret(key, unique_id)
    return offered is not None and hmac.compare_digest(offered.encode(), expected.encode())


def set_secret_cookie(response: Response, request: Request, *, unique_id: str, secret: str, https: bool) -> None:
    # MTurk frames the ad (and some labs the whole task): a framed page only sends SameSite=None cookies,
    # which browsers accept only when Secure. Over plain HTTP, Lax is the strictest that still works.
    response.set_cookie(cookie_name(unique_id), secret, max_age=COOKIE_MAX_AGE, path="/", httponly=True,
                        secure=https, samesite="none" if https else "lax")


def is_https(request: Request, trusted_proxies: frozenset[str]) -> bool:
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    return peer in trusted_proxies and request.headers.get("x-forwarded-proto", "").lower() == "https"


def client_ip(request: Request, trusted_proxies: frozenset[str]) -> str:
    """The socket's address, or X-Forwarded-For's nearest untrusted hop when the peer is a trusted proxy."""
    peer = request.client.host if request.client else "UNKNOWN"
    forwarded = request.headers.get("x-forwarded-for")
    if peer not in trusted_proxies or not forwarded:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop if _is_address(hop) else peer
    return hops[0] if hops and _is_address(hops[0]) else peer


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
