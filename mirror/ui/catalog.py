"""The repository list: grouped as local or cached per upstream, searched and paged.

The names come from the store's repository index (the catalog the API serves), a
sorted list kept in memory; grouping is a split on the first name component, remembered
while the index hands out the same list, so a page of 10,000 repositories costs one
pass over the names for the search and nothing per repository outside the page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mirror.errors import NameUnknown
from mirror.store.store import Store
from mirror.ui.access import PULL, Permit

log = logging.getLogger("mirror.ui")

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
    tags: int | None = None  # how many tags it has (None: not read)


@dataclass(frozen=True, slots=True)
class CatalogPage:
    rows: list[RepositoryRow]
    groups: list[Group]  # every group with what the search matches in it
    total: int  # what the search matches in the chosen group
    page: int  # 1-based
    pages: int
    query: str
    group: str | None  # None: all groups


@dataclass(frozen=True, slots=True)
class _Grouped:
    """The index's names with what a page needs of each, computed once per list."""

    names: list[str]
    groups: list[str]
    lowered: list[str]
    by_group: dict[str, list[int]]

    @classmethod
    def of(cls, names: list[str], group_of: Callable[[str], str]) -> _Grouped:
        groups = [group_of(name) for name in names]
        by_group: dict[str, list[int]] = {}
        for position, key in enumerate(groups):
            by_group.setdefault(key, []).append(position)
        return cls(names, groups, [name.lower() for name in names], by_group)


class Catalog:
    def __init__(self, store: Store, upstreams: Sequence[UpstreamInfo]) -> None:
        self.store = store
        self.upstreams = tuple(upstreams)
        self._by_prefix = {u.prefix: u.name for u in self.upstreams}
        self._grouped: _Grouped | None = None

    def group_of(self, name: str) -> str:
        """The upstream a stored repository is a cache of, LOCAL for a local one."""
        first, sep, _ = name.partition("/")
        return self._by_prefix.get(first, LOCAL) if sep else LOCAL

    def label(self, group: str) -> str:
        return "local" if group == LOCAL else f"cached from {group}"

    async def _names(self) -> _Grouped:
        names = await self.store.repositories()
        grouped = self._grouped
        # The index hands out the same list until it changes; it may grow in place.
        if grouped is None or grouped.names is not names or len(grouped.groups) != len(names):
            grouped = self._grouped = _Grouped.of(names, self.group_of)
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
        grouped = await self._names()
        names, groups = grouped.names, grouped.groups
        words = query.lower().split()
        counts: dict[str, int]
        chosen: Sequence[int]
        if not words and permit.unrestricted:
            counts = {key: len(found) for key, found in grouped.by_group.items()}
            chosen = range(len(names)) if group is None else grouped.by_group.get(group, [])
        else:
            lowered = grouped.lowered
            matching: Sequence[int] = range(len(names))
            for word in words:  # each word narrows what the one before kept
                matching = [i for i in matching if word in lowered[i]]
            if not permit.unrestricted:
                matching = [i for i in matching if await permit.may(names[i], PULL)]
            counts = {}
            for i in matching:
                counts[groups[i]] = counts.get(groups[i], 0) + 1
            chosen = matching if group is None else [i for i in matching if groups[i] == group]
        total = len(chosen)
        pages = max(1, -(-total // size))
        page = min(max(page, 1), pages)
        start = (page - 1) * size
        shown_names = [names[i] for i in chosen[start : start + size]]
        counts_of_tags = await asyncio.gather(*(self._tag_count(n) for n in shown_names))
        rows = [
            RepositoryRow(name, groups[i], tags)
            for name, i, tags in zip(
                shown_names, chosen[start : start + size], counts_of_tags, strict=True
            )
        ]
        order = [LOCAL, *(u.name for u in self.upstreams)]
        shown = [Group(key, self.label(key), counts.get(key, 0)) for key in order]
        return CatalogPage(rows, shown, total, page, pages, query, group)

    async def _tag_count(self, name: str) -> int | None:
        """The number of tags (the store's cached listing); None when unreadable."""
        try:
            return len(await self.store.repository(name).tags.all())
        except NameUnknown:
            return 0
        except Exception:  # a count is a detail: the list shows without it
            log.warning("counting the tags of %s failed", name, exc_info=True)
            return None
