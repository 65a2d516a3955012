"""The ASGI application: the HTTP edge (unread bodies, Host), dispatch by the route table,
error rendering, common headers, request metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mirror import requestid
from mirror.metrics import METRICS, MetricsRegistry
from mirror.proxy import requestbody, routes
from mirror.proxy.call import Call, Services
from mirror.proxy.edge import RequestEdge
from mirror.proxy.errors import (
    BAD_REQUEST,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    envelope,
    error_response,
    plain_error,
)
from mirror.proxy.inputs import host_problem

log = logging.getLogger("mirror.proxy")

API_VERSION = ("Docker-Distribution-Api-Version", "registry/2.0")
Wrapper = Callable[[ASGIApp], ASGIApp]


class DistributionApp:
    """Serves the distribution API; other paths go to `extra` (metrics, health)."""

    def __init__(
        self,
        services: Services,
        *,
        extra: Mapping[str, ASGIApp] | None = None,
        headers: Mapping[str, str] | None = None,
        metrics: MetricsRegistry = METRICS,
        startup: Sequence[Callable[[], Awaitable[None]]] = (),
        shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
        wrappers: Sequence[Wrapper] = (),
    ) -> None:
        """`wrappers` wrap every HTTP request, the first outermost, inside the request's
        edge (its id, `mirror.proxy.edge`)."""
        self.services = services
        self.startup = list(startup)
        self.shutdown = list(shutdown)
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})
        self.requests = metrics.counter(
            "mirror_http_requests_total",
            "HTTP requests by route, method and status",
            ("route", "method", "status"),
        )
        self.latency = metrics.histogram(
            "mirror_http_request_duration_seconds",
            "Time to the response start, by route",
            ("route",),
        )
        http: ASGIApp = self._http
        for wrap in reversed(wrappers):
            http = wrap(http)
        self._edge = RequestEdge(http)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        await self._edge(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        receive, send = requestbody.watch(scope, receive, send)
        problem = host_problem(scope["headers"], scope.get("http_version", "1.1"))
        if problem is not None:
            await self._refuse(problem, scope, receive, send)
            return
        path: str = scope["path"]
        extra = self.extra.get(path)
        if extra is not None:
            await extra(scope, receive, send)
            return
        await self._dispatch(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        head = method == "HEAD"
        found = routes.match(scope["path"])
        route = found[0].name if found else "unknown"
        status = 500

        async def send_wrapper(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])  # type: ignore[call-overload]
                self.latency.observe(route, value=time.perf_counter() - started)
            await send(message)

        app: ASGIApp
        headers = {API_VERSION[0]: API_VERSION[1], **self.headers}
        handler = found[0].handlers.get(method) if found else None
        if found is None:
            app = plain_error(NOT_FOUND, headers=headers, head=head)
        elif handler is None:
            app = plain_error(METHOD_NOT_ALLOWED, headers=headers, head=head)
        else:
            request = Request(scope, receive)
            call = Call(request, found[1], self.services, head, headers)
            try:
                app = await handler(call)
            except ClientDisconnect:
                self.requests.inc(route, method, "499")
                return
            except Exception as exc:
                request_id = requestid.current() or requestid.new()
                response = error_response(exc, head=head, request_id=request_id)
                response.headers.update(headers)
                app = response
        try:
            await app(scope, receive, send_wrapper)  # type: ignore[arg-type]
        finally:
            self.requests.inc(route, method, str(status))

    async def _refuse(self, problem: str, scope: Scope, receive: Receive, send: Send) -> None:
        """A 400 for a request the HTTP layer refuses; the connection is closed after it,
        as the reference registry does (the request's framing is not to be trusted)."""
        method: str = scope["method"]
        headers = {API_VERSION[0]: API_VERSION[1], **self.headers, "Connection": "close"}
        app = plain_error(
            BAD_REQUEST, envelope(BAD_REQUEST, problem), headers, head=method == "HEAD"
        )
        await app(scope, receive, send)
        self.requests.inc("unknown", method, str(BAD_REQUEST.status))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.startup:
                        await hook()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.shutdown:
                    try:
                        await hook()
                    except Exception:
                        log.exception("shut-down hook failed")
                await send({"type": "lifespan.shutdown.complete"})
                return
