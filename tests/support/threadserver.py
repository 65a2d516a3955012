"""Serve an ASGI app on loopback from a background thread (its own event loop).

For tests that drive blocking clients (skopeo, a registry process) while the app must
keep answering: `serving` in `asgiserver.py` shares the test's loop, which a blocking
call would stall.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp

_START_TIMEOUT = 10.0


@contextmanager
def serving_in_thread(app: ASGIApp, **options: Any) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 at a free port; yields the base URL. `options` go to
    `uvicorn.Config` (`http=` a protocol class, say)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ASGI server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(_START_TIMEOUT)
        sock.close()
