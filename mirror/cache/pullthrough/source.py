"""One configured upstream as the pull-through repositories use it."""

from __future__ import annotations

from dataclasses import dataclass

from mirror.upstream.api import Upstream


@dataclass(slots=True)
class MirrorSource:
    """The upstream (with its decorators) and the cache policy set for it.

    `freshness`: seconds a cached tag is served without asking the upstream.
    `serve_missing_tags`: a cached tag the upstream says it does not have (any more) is
    served with a warning; False passes the upstream's 404 on.
    `prefetch`: how many blobs of a pulled image manifest download at once before the
    client asks for them (0: none; `mirror.cache.pullthrough.prefetch`).
    """

    upstream: Upstream
    freshness: float = 300.0
    serve_missing_tags: bool = True
    prefetch: int = 0

    @property
    def name(self) -> str:
        return self.upstream.name
