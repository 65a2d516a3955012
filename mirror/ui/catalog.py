"""The repository list: grouped as local or cached per upstream, searched and paged.

The names come from the store's repository index (the catalog the API serves), a
sorted list kept in memory; grouping is a split on the first name component, remembered
while the index hands out the same list, so a page of 10,000 repositories costs one
pass over the names for the search and nothing per repository outside the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mirror.store.store import Store
from mirror.ui.access import PULL, Permit

LOCAL = ""  # the group key of local repositories
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class UpstreamInfo:
    """A configured upstream as the dashboard shows it."""

    name: str  # the configured name (`docker.io`), the label of its metrics
    prefix: str  # first component of its cache repositories' stored names
    url: str  # where it is, without credentials


@dataclass(frozen=True, slots=True)
class Group:
    key: str  # LOCAL or an upstream's name
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class RepositoryRow:
    name: str
    group: str  # LOCAL or an upstream's name


@dataclass(frozen=True, slots=True)
class CatalogPage:
    rows: list[RepositoryRow]
    groups: list[Group]  # every group with what the search matches in it
    total: int  # what the search matches in the chosen group
    page: int  # 1-based
    pages: int
    query: str
    group: str | None  # None: all groups


class Catalog:
    def __init__(self, store: Store, upstreams: Sequence[UpstreamInfo]) -> None:
        self.store = store
        self.upstreams = tuple(upstreams)
        self._by_prefix = {u.prefix: u.name for u in self.upstreams}
        self._grouped: tuple[list[str], list[str]] | None = None  # (names, their groups)

    def group_of(self, name: str) -> str:
        """The upstream a stored repository is a cache of, LOCAL for a local one."""
        first, sep, _ = name.partition("/")
        return self._by_prefix.get(first, LOCAL) if sep else LOCAL

    def label(self, group: str) -> str:
        return "local" if group == LOCAL else f"cached from {group}"

    async def _names(self) -> tuple[list[str], list[str]]:
        names = await self.store.repositories()
        grouped = self._grouped
        if grouped is None or grouped[0] is not names or len(grouped[1]) != len(names):
            grouped = (names, [self.group_of(name) for name in names])
            self._grouped = grouped
        return grouped

    async def page(
        self,
        permit: Permit,
        *,
        query: str = "",
        group: str | None = None,
        page: int = 1,
        size: int = PAGE_SIZE,
    ) -> CatalogPage:
        """Page `page` of the repositories matching `query` (every word, anywhere in the
        name, case-insensitive) in `group` (None: all) that `permit` may pull."""
        names, groups = await self._names()
        words = query.lower().split()
        counts: dict[str, int] = {}
        chosen: list[int] = []
        for position, name in enumerate(names):
            if words:
                lowered = name.lower()
                if not all(word in lowered for word in words):
                    continue
            if not permit.unrestricted and not await permit.may(name, PULL):
                continue
            key = groups[position]
            counts[key] = counts.get(key, 0) + 1
            if group is None or key == group:
                chosen.append(position)
        total = len(chosen)
        pages = max(1, -(-total // size))
        page = min(max(page, 1), pages)
        start = (page - 1) * size
        rows = [RepositoryRow(names[i], groups[i]) for i in chosen[start : start + size]]
        order = [LOCAL, *(u.name for u in self.upstreams)]
        shown = [Group(key, self.label(key), counts.get(key, 0)) for key in order]
        return CatalogPage(rows, shown, total, page, pages, query, group)
