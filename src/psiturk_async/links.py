"""Public links to the experiment: the ad URL the settings describe, and randomized debug links."""

from __future__ import annotations

import secrets
import string

from .settings import Settings

DEBUG_ID_ALPHABET = string.ascii_uppercase + string.digits


def ad_url(settings: Settings) -> str | None:
    """The public ad URL: ad_url, else one built from the ad_url_* keys; None when no domain is set."""
    if settings.ad_url:
        return settings.ad_url
    if not settings.ad_url_domain:
        return None
    return (f"{settings.ad_url_protocol}://{settings.ad_url_domain}:{settings.ad_url_port}/"
            f"{settings.ad_url_route.lstrip('/')}")


def debug_id() -> str:
    return "debug" + "".join(secrets.choice(DEBUG_ID_ALPHABET) for _ in range(6))


def debug_link(ad: str) -> str:
    """`ad` with fresh debug ids, as psiTurk's `debug` command makes them."""
    separator = "&" if "?" in ad else "?"
    return (f"{ad}{separator}assignmentId={debug_id()}&hitId={debug_id()}&workerId={debug_id()}"
            f"&mode=debug")
