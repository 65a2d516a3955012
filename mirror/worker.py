"""What each server worker process runs: the app factory behind the request edge.

`mirror serve` names `create` as the app of both servers; `create` imports and calls
the factory `mirror.server` put in ``MIRROR_APP_TARGET`` (the real app, or a test's)
and wraps it in the `RequestEdge`, which gives every request its id and writes the
access log (``MIRROR_ACCESS_LOG``) in the format the server's logging configuration
set, for whatever app is served. The servers' own access logs are off: theirs cannot
carry a request id.
"""

from __future__ import annotations

import importlib
import os
from typing import Final

from starlette.types import ASGIApp

from mirror.memory import tune_allocator
from mirror.proxy.edge import RequestEdge

TARGET: Final = "mirror.worker:create"
TARGET_ENV: Final = "MIRROR_APP_TARGET"
ACCESS_LOG_ENV: Final = "MIRROR_ACCESS_LOG"
DEFAULT_APP: Final = "mirror.proxy.app:create_app_from_env"


def load(target: str) -> ASGIApp:
    """Call the zero-argument factory named "module:function"."""
    module_name, _, name = target.partition(":")
    factory = getattr(importlib.import_module(module_name), name)
    app: ASGIApp = factory()
    return app


def create() -> ASGIApp:
    tune_allocator()
    app = load(os.environ.get(TARGET_ENV) or DEFAULT_APP)
    return RequestEdge(app, access_log=os.environ.get(ACCESS_LOG_ENV) == "1")
