"""Routes requested names to pull-through repositories or to local ones (hybrid)."""

from __future__ import annotations

from collections.abc import Mapping

from mirror.cache.pullthrough.source import MirrorSource
from mirror.cache.pullthrough.state import PullThroughState
from mirror.cache.pullthrough.view import PullThroughView
from mirror.store.store import Store
from mirror.store.view import LocalView, Resolved, remember
from mirror.upstream.api import Upstream
from mirror.upstream.routing import RoutingTable


class MirrorResolver:
    def __init__(
        self,
        store: Store,
        table: RoutingTable,
        sources: Mapping[str, MirrorSource],
        state: PullThroughState,
        *,
        read_only: bool = False,
    ) -> None:
        self.store = store
        self.table = table
        self.sources = dict(sources)  # by upstream name
        self.state = state
        self.read_only = read_only
        self._known: dict[tuple[str, str | None], Resolved] = {}

    def resolve(self, name: str, namespace: str | None) -> Resolved:
        found = self._known.get((name, namespace))
        if found is None:
            found = self._resolve(name, namespace)
            remember(self._known, (name, namespace), found)
        return found

    def upstream(self, name: str) -> Upstream:
        """The configured upstream `name` (its whole stack); KeyError when there is none."""
        return self.sources[name].upstream

    def cache_view(self, upstream: str, remote: str) -> PullThroughView:
        """The cache repository of `remote` (as the upstream names it) at the configured
        upstream `upstream`, as a request with `?ns=<upstream>` reaches it. Raises
        NameInvalid / NameUnknown."""
        view = self.resolve(remote, upstream).view
        assert isinstance(view, PullThroughView)  # a namespace always routes to one
        return view

    def _resolve(self, name: str, namespace: str | None) -> Resolved:
        match = self.table.route(name, namespace)
        if match.upstream is None:
            return Resolved(LocalView(self.store.repository(name), read_only=self.read_only))
        view = PullThroughView(
            self.store.repository(match.local_name),
            self.sources[match.upstream.name],
            match.remote_name,
            self.state,
        )
        headers = (("OCI-Namespace", match.upstream.name),) if namespace else ()
        return Resolved(view, headers)
