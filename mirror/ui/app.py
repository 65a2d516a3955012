"""The dashboard's ASGI app and the wrapper that puts it on the main port.

`Dashboard.wrap(app)` answers `/ui/...` itself, sends a browser asking for `/` to
`/ui/`, and passes every other request on. Pages are rendered from Jinja2 templates
(`templates/`, autoescaped); `static/` holds the stylesheet and the vendored htmx.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.coordination.metadata import MetadataStore
from mirror.digests import Digest
from mirror.errors import (
    Denied,
    DigestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    RegistryError,
    TagInvalid,
    Unauthorized,
    Unsupported,
)
from mirror.metrics import MetricsRegistry
from mirror.store.store import Store
from mirror.store.view import Resolver
from mirror.types import Reference, validate_name
from mirror.ui import units
from mirror.ui.access import DELETE, PULL, Permissions, everything
from mirror.ui.catalog import LOCAL, Catalog, UpstreamInfo
from mirror.ui.details import Details
from mirror.ui.figures import Samples, cache_figures
from mirror.ui.history import SavingsHistory, Totals
from mirror.ui.plot import Line, line_plot

log = logging.getLogger("mirror.ui")

HERE = Path(__file__).resolve().parent
PREFIX = "/ui"
FORM_TYPE = "application/x-www-form-urlencoded"
FORM_LIMIT = 8192
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class DashboardParts:
    """What the dashboard reads: the API's own store, resolver, metrics and metadata."""

    store: Store
    resolver: Resolver
    metrics: MetricsRegistry
    upstreams: tuple[UpstreamInfo, ...] = ()
    metadata: MetadataStore | None = None
    permissions: Permissions = everything
    read_only: bool = False
    registry_host: str = ""  # host[:port] in pull commands; "": the request's Host
    history_interval: float = field(default=300.0)


class Dashboard:
    def __init__(self, parts: DashboardParts) -> None:
        self.parts = parts
        self.catalog = Catalog(parts.store, parts.upstreams)
        self.history = (
            SavingsHistory(parts.metadata, self.totals, interval=parts.history_interval)
            if parts.metadata is not None and parts.upstreams
            else None
        )
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters.update(
            bytes=units.human_bytes,
            when=units.when,
            percent=units.percent,
            num=units.count,
            short=units.short_digest,
            urlpart=lambda text: quote(str(text), safe="/"),
        )
        self.app = Starlette(
            routes=[
                Route(f"{PREFIX}/", self.repositories, methods=["GET", "HEAD"]),
                Route(f"{PREFIX}/cache", self.cache, methods=["GET", "HEAD"]),
                Route(f"{PREFIX}/login", self.login, methods=["GET", "HEAD"]),
                Route(f"{PREFIX}/repo/{{name:path}}", self.repository, methods=["GET", "HEAD"]),
                Route(f"{PREFIX}/image/{{ref:path}}", self.image, methods=["GET", "HEAD"]),
                Route(f"{PREFIX}/delete", self.delete, methods=["POST"]),
                Mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="static"),
            ],
            exception_handlers={404: self._not_found, 405: self._not_allowed},
        )

    # -- the wrapper ------------------------------------------------------------------

    def wrap(self, inner: ASGIApp) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            path: str = scope.get("path", "")
            if scope["type"] == "http":
                if path == PREFIX or path.startswith(PREFIX + "/"):
                    if path == PREFIX:
                        await RedirectResponse(f"{PREFIX}/", 308)(scope, receive, send)
                    else:
                        await self.app(scope, receive, send)
                    return
                if path == "/" and scope["method"] in ("GET", "HEAD") and _wants_html(scope):
                    await RedirectResponse(f"{PREFIX}/", 307)(scope, receive, send)
                    return
            await inner(scope, receive, send)

        return app

    # -- figures ----------------------------------------------------------------------

    def totals(self) -> Totals:
        figures = cache_figures(Samples.from_registry(self.parts.metrics), self.parts.upstreams)
        return Totals(saved=figures.saved, fetched=figures.fetched)

    async def record_history(self) -> None:
        if self.history is not None:
            await self.history.record()

    # -- pages ------------------------------------------------------------------------

    def _page(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        body = self.templates.get_template(template).render(
            prefix=PREFIX,
            path=request.url.path,
            has_cache=bool(self.parts.upstreams),
            **values,
        )
        return HTMLResponse(body, status, headers=SECURITY_HEADERS)

    def _error(self, request: Request, status: int, message: str, **headers: str) -> Response:
        response = self._page(request, "error.html", status, status_code=status, message=message)
        response.headers.update(headers)
        return response

    async def _guarded(self, request: Request, render: Any, *, login: bool = False) -> Response:
        """Run `render(permit)`, turning the errors a page can meet into error pages."""
        try:
            permit = await self.parts.permissions(request, login)
            return await render(permit)  # type: ignore[no-any-return]
        except Unauthorized as exc:
            challenge = getattr(exc, "headers", None)
            extra = dict(challenge) if isinstance(challenge, dict) else {}
            return self._error(request, 401, "Sign in to see this registry.", **extra)
        except (NameUnknown, ManifestUnknown) as exc:
            return self._error(request, 404, str(exc) or "not found")
        except (NameInvalid, DigestInvalid, TagInvalid) as exc:
            return self._error(request, 400, str(exc) or "invalid request")
        except (Denied, Unsupported) as exc:
            return self._error(request, 403, str(exc) or "not allowed")
        except RegistryError as exc:
            log.warning("dashboard page failed: %s", exc)
            return self._error(request, 503, "The registry could not answer this now.")
        except Exception:
            log.exception("dashboard page %s failed", request.url.path)
            return self._error(request, 500, "Something went wrong; it is in the log.")

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return self._error(request, 404, "There is no such page.")

    async def _not_allowed(self, request: Request, exc: Exception) -> Response:
        return self._error(request, 405, "That method is not allowed here.")

    async def repositories(self, request: Request) -> Response:
        params = request.query_params
        query = params.get("q", "")[:200]
        group = params.get("group")
        page = _number(params.get("page"))

        async def render(permit: Any) -> Response:
            result = await self.catalog.page(
                permit,
                query=query,
                group=group if group is not None and self._known_group(group) else None,
                page=page,
            )
            return self._page(request, "repositories.html", catalog=result, local=LOCAL)

        return await self._guarded(request, render)

    def _known_group(self, group: str) -> bool:
        return group == LOCAL or any(u.name == group for u in self.parts.upstreams)

    async def login(self, request: Request) -> Response:
        async def render(permit: Any) -> Response:
            return RedirectResponse(f"{PREFIX}/", 303)

        return await self._guarded(request, render, login=True)

    async def _visible(self, permit: Any, name: str) -> None:
        """NameUnknown unless `name` is a stored repository `permit` may pull (a
        repository one may not see is not there, as the API says)."""
        names = await self.parts.store.repositories()
        position = bisect.bisect_left(names, name)
        known = position < len(names) and names[position] == name
        if not known or not await permit.may(name, PULL):
            raise NameUnknown(f"repository {name} unknown")

    def _deletable(self) -> bool:
        return self.parts.store.delete_enabled and not self.parts.read_only

    async def repository(self, request: Request) -> Response:
        name = request.path_params["name"]
        page = _number(request.query_params.get("page"))

        async def render(permit: Any) -> Response:
            validate_name(name)
            await self._visible(permit, name)
            details = Details(self.parts.store.repository(name), self.parts.metadata)
            try:
                tags = await details.tags(page)
            except NameUnknown:
                tags = None
            return self._page(
                request,
                "repository.html",
                name=name,
                group=self.catalog.label(self.catalog.group_of(name)),
                tags=tags,
                pull=self._pull_name(request, name),
                can_delete=self._deletable() and await permit.may(name, DELETE),
                message=request.query_params.get("deleted", ""),
            )

        return await self._guarded(request, render)

    async def image(self, request: Request) -> Response:
        name, _, digest_text = request.path_params["ref"].rpartition("@")

        async def render(permit: Any) -> Response:
            validate_name(name)
            digest = Digest.parse(digest_text)
            await self._visible(permit, name)
            details = Details(self.parts.store.repository(name), self.parts.metadata)
            image = await details.image(digest)
            return self._page(
                request,
                "image.html",
                name=name,
                image=image,
                pull=self._pull_name(request, name),
                can_delete=self._deletable() and await permit.may(name, DELETE),
            )

        return await self._guarded(request, render)

    async def cache(self, request: Request) -> Response:
        async def render(permit: Any) -> Response:
            figures = cache_figures(Samples.from_registry(self.parts.metrics), self.parts.upstreams)
            plot = None
            if self.history is not None:
                points = await self.history.series()
                plot = line_plot(
                    "Bytes saved (served from the cache) and fetched from upstreams",
                    [p.at for p in points],
                    [
                        Line("saved", "saved", [p.saved for p in points]),
                        Line("fetched", "fetched", [p.fetched for p in points]),
                    ],
                )
            return self._page(request, "cache.html", figures=figures, plot=plot)

        return await self._guarded(request, render)

    async def delete(self, request: Request) -> Response:
        if not _same_origin(request):
            return self._error(request, 403, "Deletes are accepted from this dashboard only.")
        form = await _small_form(request)
        if form is None:
            return self._error(request, 400, "The form could not be read.")
        name, reference = form.get("name", ""), form.get("reference", "")

        async def render(permit: Any) -> Response:
            validate_name(name)
            ref = Reference.parse(reference)
            await self._visible(permit, name)
            if not self._deletable() or not await permit.may(name, DELETE):
                return self._error(request, 403, "Deleting is not allowed here.")
            view = self.parts.resolver.resolve(name, None).view
            await view.delete_manifest(ref)
            log.info("dashboard deleted %s from %s", ref, name)
            target = f"{PREFIX}/repo/{quote(name)}?deleted={quote(str(ref), safe='')}"
            return RedirectResponse(target, 303)

        return await self._guarded(request, render)

    def _pull_name(self, request: Request, name: str) -> str:
        host = self.parts.registry_host or request.headers.get("host", "localhost:5000")
        return f"{host}/{name}"


def _number(text: str | None) -> int:
    return int(text) if text is not None and text.isascii() and text.isdigit() else 1


async def _small_form(request: Request) -> dict[str, str] | None:
    """An url-encoded form of at most FORM_LIMIT bytes (first value of each field); None
    for anything else."""
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            return None
    try:
        fields = parse_qs(body.decode("ascii"), max_num_fields=16, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    return {key: values[0] for key, values in fields.items()}


def _wants_html(scope: Scope) -> bool:
    for key, value in scope.get("headers", ()):
        if key == b"accept" and b"text/html" in value:
            return True
    return False


def _same_origin(request: Request) -> bool:
    """A state-changing form must come from a page of this host: Origin (or, without
    one, Referer) names the Host the request was sent to."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or not host:
        return False
    return urlsplit(origin).netloc == host
