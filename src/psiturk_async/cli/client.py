"""The admin API seen from the CLI: where the server is, the token, and a sync httpx client whose every
failure becomes a CliError of one line. Import-light: httpx, pydantic and the settings reader, no more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from .. import __version__
from ..admin_token import TOKEN_FILE, read_token

Model = TypeVar("Model", bound=BaseModel)
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Listening on every address means the server is reachable on this machine's loopback.
LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


class CliError(Exception):
    """A failure the CLI reports as one line before exiting with status 1."""


@dataclass
class Connection:
    """Where the remote commands go and how they print: the global options, or a test's injected client."""

    url: str | None = None
    token: str | None = None
    json_output: bool = False
    http: httpx.Client | None = None
    project_dir: Path = field(default_factory=lambda: Path("."))
    _owned: bool = field(default=False, init=False, repr=False)

    def client(self) -> AdminClient:
        """The admin API client; the URL and token fall back on the project in the current folder."""
        settings, problem = None, None
        if not (self.token and (self.url or self.http)):
            settings, problem = _project_settings(self.project_dir)
        token = self.token or (settings.admin_token if settings else None) or read_token(self.project_dir)
        if not token:
            raise CliError(f"no admin token: pass --token or set PSITURK_ADMIN_TOKEN, or run this in the "
                           f"project folder where `psiturk-async serve` wrote {TOKEN_FILE}")
        if self.http is None:
            if not self.url and settings is None:
                raise CliError(f"cannot work out the server's address ({problem}); pass --url or set PSITURK_URL")
            self.url = self.url or server_url(settings.host, settings.port, tls=settings.uses_tls)
            self.http = httpx.Client(base_url=self.url, timeout=TIMEOUT,
                                     headers={"User-Agent": f"psiturk-async-cli/{__version__}"})
            self._owned = True
        return AdminClient(self.http, token=token, where=self.url or str(self.http.base_url))

    def close(self) -> None:
        """Close the client this connection opened (never an injected one)."""
        if self.http is not None and self._owned:
            self.http.close()


def _project_settings(project_dir: Path) -> tuple[Any, str | None]:
    from ..settings import SettingsError, load_settings

    try:
        return load_settings(project_dir), None
    except SettingsError as exc:
        return None, str(exc)


def server_url(host: str, port: int, *, tls: bool) -> str:
    """The URL of a server configured with this host and port, as seen from this machine."""
    host = LOOPBACK.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


class AdminClient:
    """Calls to the admin API. Answers are JSON; anything else raises CliError."""

    def __init__(self, http: httpx.Client, *, token: str, where: str) -> None:
        self.http = http
        self.where = where.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, model: type[Model], *, params: dict[str, Any] | None = None) -> Model:
        return self._parse(self._send("GET", path, params=params), model)

    def patch(self, path: str, model: type[Model], *, body: dict[str, Any]) -> Model:
        return self._parse(self._send("PATCH", path, json=body), model)

    def post(self, path: str, model: type[Model], *, body: dict[str, Any]) -> Model:
        return self._parse(self._send("POST", path, json=body), model)

    @contextmanager
    def stream(self, path: str, *, params: dict[str, Any] | None = None) -> Iterator[httpx.Response]:
        """A streamed GET; the response is checked before the body is read."""
        with self._failures():
            with self.http.stream("GET", path, params=params, headers=self.headers) as response:
                if response.is_error:
                    response.read()
                    raise CliError(failure_message(response))
                yield response

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._failures():
            response = self.http.request(method, path, headers=self.headers, **kwargs)
        if response.is_error:
            raise CliError(failure_message(response))
        return response

    def _parse(self, response: httpx.Response, model: type[Model]) -> Model:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise CliError(f"{self.where} answered {response.request.url.path} with something other than "
                           f"the admin API's JSON (is it a psiturk-async {__version__} server?): "
                           f"{first_line(str(exc.errors()[0].get('msg', exc)))}") from None

    @contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException:
            raise CliError(f"{self.where} did not answer in time (is the server overloaded or "
                           f"unreachable?)") from None
        except httpx.ConnectError as exc:
            raise CliError(f"cannot connect to {self.where}: {first_line(str(exc))} (is `psiturk-async serve` "
                           f"running there? --url or PSITURK_URL say where it is)") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise CliError(f"bad server URL {self.where!r}: {first_line(str(exc))}") from None
        except httpx.HTTPError as exc:
            raise CliError(f"the connection to {self.where} failed: {type(exc).__name__}: "
                           f"{first_line(str(exc))}") from None


def failure_message(response: httpx.Response) -> str:
    """One line for an error answer: the API's {"error", "detail"} when it sent one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    code = response.reason_phrase or "error"
    detail = ""
    if isinstance(body, dict):
        code = str(body.get("error", code))
        raw = body.get("detail", "")
        detail = raw if isinstance(raw, str) else json.dumps(raw)
    if response.status_code == 401:
        return (f"the server refused the admin token ({first_line(detail) or 'unauthorized'}); "
                f"pass --token or set PSITURK_ADMIN_TOKEN")
    if response.status_code == 429:
        wait = response.headers.get("Retry-After")
        return f"{first_line(detail) or 'too many requests'}" + (f" (retry after {wait} s)" if wait else "")
    where = response.request.url.path
    return f"{response.status_code} {code} from {where}" + (f": {first_line(detail)}" if detail else "")


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""
