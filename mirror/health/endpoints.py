"""The health answers over HTTP: registry:2's ``/debug/health`` and Kubernetes probes.

``/debug/health`` (on the debug listener) answers as the reference does: ``GET`` gives
200 ``{}`` when no critical check fails, else 503 with ``{"<check>": "<error>"}``;
other methods are 404. ``/livez`` answers 200 while the process serves (draining
included: a draining process must not be restarted). ``/readyz`` answers 200 when every
critical check has passed and is not failing and the process is not draining, else 503
with the reasons; ``?verbose`` lists every check, non-critical ones (upstreams) marked
as such, in the Kubernetes style (``[+]name ok``, ``[-]name failed: ...``).
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.health.registry import FAILING, PASSING, HealthRegistry

logger = logging.getLogger("mirror.health")

_TEXT = b"text/plain; charset=utf-8"
_JSON = b"application/json"


async def _respond(
    scope: Scope, send: Send, status: int, body: bytes, content_type: bytes = _TEXT
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-cache"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


async def _not_found(scope: Scope, send: Send) -> None:
    await _respond(scope, send, 404, b"404 page not found\n")


def debug_health_app(registry: HealthRegistry) -> ASGIApp:
    """``/debug/health`` exactly as registry:2 answers it (any other path: 404)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/debug/health":
            await _not_found(scope, send)
            return
        if scope["method"] != "GET":
            await _not_found(scope, send)
            return
        failing = registry.failing()
        body = json.dumps(failing, separators=(",", ":")).encode()
        await _respond(scope, send, 503 if failing else 200, body, _JSON)

    return app


class Probes:
    """Liveness and readiness of one process, and the drain switch."""

    def __init__(self, registry: HealthRegistry) -> None:
        self.registry = registry
        self._draining = False

    @property
    def draining(self) -> bool:
        return self._draining

    def drain(self) -> None:
        """Report not ready from now on (SIGTERM: let the load balancer stop sending
        requests while running ones finish). Idempotent; there is no undrain."""
        if not self._draining:
            logger.info("draining: /readyz answers 503 from now on")
        self._draining = True

    def not_ready(self) -> dict[str, str]:
        """Why the process is not ready, by check name (``draining`` for the drain);
        empty when ready."""
        reasons = self.registry.not_ready()
        if self._draining:
            reasons = {"draining": "shutting down", **reasons}
        return reasons

    def _verbose(self) -> list[str]:
        lines = ["[-]draining shutting down" if self._draining else "[+]draining ok"]
        for status in self.registry.statuses():
            role = "" if status.critical else " (not critical)"
            if status.state == PASSING:
                lines.append(f"[+]{status.name} ok{role}")
            elif status.state == FAILING:
                lines.append(f"[-]{status.name} failed: {status.error}{role}")
            else:
                pending = f": {status.error}" if status.error else ""
                lines.append(f"[-]{status.name} not passed yet{pending}{role}")
        return lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``/livez`` and ``/readyz`` (GET and HEAD); anything else is 404."""
        path = scope.get("path") if scope["type"] == "http" else None
        if path not in ("/livez", "/readyz") or scope["method"] not in ("GET", "HEAD"):
            await _not_found(scope, send)
            return
        verbose = "verbose" in parse_qs(scope.get("query_string", b"").decode("latin-1"), True)
        if path == "/livez":
            await _respond(
                scope, send, 200, b"[+]ping ok\nlivez check passed\n" if verbose else b"ok\n"
            )
            return
        reasons = self.not_ready()
        if verbose:
            verdict = "readyz check failed" if reasons else "readyz check passed"
            body = "\n".join([*self._verbose(), verdict]) + "\n"
        elif reasons:
            body = "".join(f"not ready: {name}: {why}\n" for name, why in reasons.items())
        else:
            body = "ok\n"
        await _respond(scope, send, 503 if reasons else 200, body.encode())
