"""`psiturk.user_utils`: the `nocache` decorator, HTTP Basic protection for routes, and `print_to_log`."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from configparser import ConfigParser
from typing import Any

from flask import Response, current_app, make_response, request

from .config import PsiturkException

SERVER = "Server Parameters"
MISSING_LOGIN = ("Secure route specified, but at least one of `login_username`, `login_pw`, and `secret_key` not "
                 "set in config! Set them and try again.")
UNAUTHORIZED_TEXT = "Could not verify your access level for that URL.\nYou have to login with proper credentials"


def print_to_log(stuff_to_print: Any) -> None:
    """Write to the server log at INFO, through the Flask app's logger."""
    current_app.logger.info(stuff_to_print)


def nocache(func: Callable[..., Any]) -> Callable[..., Any]:
    """Answer with `Cache-Control: no-cache`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        response = make_response(func(*args, **kwargs))
        response.cache_control.no_cache = True
        return response

    return wrapper


def _same(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode(), expected.encode())


class PsiTurkAuthorization:
    """HTTP Basic protection with the login_username and login_pw settings, as psiTurk had it."""

    def __init__(self, config: ConfigParser) -> None:
        username = config.get(SERVER, "login_username", fallback="")
        password = config.get(SERVER, "login_pw", fallback="")
        secret_key = config.get(SERVER, "secret_key", fallback="")
        if not username or not password or not secret_key:
            raise PsiturkException(message=MISSING_LOGIN)
        self.queryname = username
        self.querypw = password

    @classmethod
    def wrapper(cls, func: Callable[..., Any], args: Any) -> Any:
        return func(*args)

    def check_auth(self, username: str | None, password: str | None) -> bool:
        """Whether the pair is the configured login (compared in constant time)."""
        # Both compared every time, so the answer takes as long whichever one is wrong.
        return _same(username, self.queryname) & _same(password, self.querypw)

    @classmethod
    def authenticate(cls) -> Response:
        """The 401 that makes a browser ask for the login."""
        return Response(UNAUTHORIZED_TEXT, 401, {"WWW-Authenticate": 'Basic realm="Login Required"'})

    def requires_auth(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: the route answers only to the configured HTTP Basic login."""

        @functools.wraps(func)
        def decorated(*args: Any, **kwargs: Any) -> Any:
            auth = request.authorization
            if auth is None or not self.check_auth(auth.username, auth.password):
                return self.authenticate()
            return func(*args, **kwargs)

        return decorated
