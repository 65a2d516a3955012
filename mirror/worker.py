"""What each server worker process runs: the app factory behind the request edge.

`mirror serve` names `create` as the app of both servers; `create` imports and calls
the factory `mirror.server` put in ``MIRROR_APP_TARGET`` (the real app, or a test's)
and wraps it in the `RequestEdge`, which gives every request its id and writes the
access log (``MIRROR_ACCESS_LOG``) in the format the server's logging configuration
set, for whatever app is served. The servers' own access logs are off: theirs cannot
carry a request id.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
from typing import Final

from starlette.types import ASGIApp

from mirror.logs import lean_records
from mirror.memory import tune_allocator
from mirror.proxy.edge import RequestEdge

TARGET: Final = "mirror.worker:create"
TARGET_ENV: Final = "MIRROR_APP_TARGET"
SERVER_PID_ENV: Final = "MIRROR_SERVER_PID"
_PR_SET_PDEATHSIG: Final = 1
ACCESS_LOG_ENV: Final = "MIRROR_ACCESS_LOG"
DEFAULT_APP: Final = "mirror.proxy.app:create_app_from_env"


def load(target: str) -> ASGIApp:
    """Call the zero-argument factory named "module:function"."""
    module_name, _, name = target.partition(":")
    factory = getattr(importlib.import_module(module_name), name)
    app: ASGIApp = factory()
    return app


def die_with_server() -> None:
    """In a worker process (not `mirror serve`'s own, whose pid the server put in
    ``MIRROR_SERVER_PID``): have the kernel send SIGTERM when that process dies, however
    it dies - a SIGKILL or the OOM killer leaves no supervisor to stop the workers, and
    an orphan would go on serving on the shared port. Linux only; elsewhere nothing."""
    server = os.environ.get(SERVER_PID_ENV)
    if not server or not server.isdigit() or int(server) == os.getpid():
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(server):  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def create() -> ASGIApp:
    die_with_server()
    tune_allocator()
    lean_records()
    app = load(os.environ.get(TARGET_ENV) or DEFAULT_APP)
    return RequestEdge(app, access_log=os.environ.get(ACCESS_LOG_ENV) == "1")
