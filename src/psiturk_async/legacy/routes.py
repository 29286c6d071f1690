"""One Starlette route that answers the Flask app's URL rules, through a WSGI adapter in threads.

It sits after every route of psiturk-async's own (they keep priority) and before the raw-page catch-all. It
matches a request only when the Flask URL map does, so paths Flask does not know fall through to the
catch-all as before; a known path with another method gets Flask's 405. The Flask code runs in the adapter's
thread pool, so a slow legacy route never holds up the event loop.
"""

from __future__ import annotations

from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

THREADS = 10


class FlaskRoutes(BaseRoute):
    def __init__(self, flask_app: Flask, *, threads: int = THREADS) -> None:
        self.flask_app = flask_app
        self.wsgi = WSGIMiddleware(flask_app, workers=threads)  # type: ignore[arg-type]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path = scope["path"][len(scope.get("root_path", "")):] or "/"
        urls = self.flask_app.url_map.bind("localhost")
        try:
            rule, _arguments = urls.match(path, method=scope["method"], return_rule=True)
        except NotFound:
            return Match.NONE, {}
        except MethodNotAllowed:
            return Match.PARTIAL, {}
        except RequestRedirect:
            # Werkzeug's redirect to the rule's canonical URL (a missing trailing slash): Flask sends it.
            return Match.FULL, {}
        if rule.endpoint == "static":
            # /static belongs to the server's own mount; a blueprint's static folder keeps its own prefix.
            return Match.NONE, {}
        return Match.FULL, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.wsgi(scope, receive, send)  # type: ignore[arg-type]

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    def close(self) -> None:
        self.wsgi.executor.shutdown(wait=False)
