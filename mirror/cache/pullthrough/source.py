"""One configured upstream as the pull-through repositories use it."""

from __future__ import annotations

from dataclasses import dataclass

from mirror.upstream.api import Upstream


@dataclass(slots=True)
class MirrorSource:
    """The upstream (with its decorators) and the cache policy set for it.

    `freshness`: seconds a cached tag is served without asking the upstream.
    """

    upstream: Upstream
    freshness: float = 300.0

    @property
    def name(self) -> str:
        return self.upstream.name
