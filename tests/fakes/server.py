"""Serve an ASGI app with uvicorn on 127.0.0.1, on a free port, in a background thread.

aiobotocore talks to its endpoint through aiohttp, so a fake has to listen on a real socket; its own thread and
event loop keep it independent of whichever loop (or none) the test runs in.
"""

import socket
import threading
import time
from typing import Any

import uvicorn


class BackgroundServer:
    """start() binds a free port and serves `app` until stop(); `url` is "http://127.0.0.1:<port>"."""

    def __init__(self, app: Any, *, startup_timeout: float = 10.0) -> None:
        self.app = app
        self.startup_timeout = startup_timeout
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"fake-server-{port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> "BackgroundServer":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
