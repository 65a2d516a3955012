"""The `sync` section: images kept cached and fresh in the background (pre-seeding).

Each `content` entry names an upstream of `proxy`, repositories there, which of their
tags and which platforms of an index. `mirror serve` syncs every entry once per its
`interval` (one process or replica at a time); `mirror sync --once` makes one pass.
"""

from __future__ import annotations

import re
from typing import Annotated

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import AfterValidator

from mirror.settings import (
    Integer,
    MaybeDuration,
    PositiveDuration,
    Problem,
    Text,
    TextList,
    TypeName,
    setting,
    settings,
)

_PLATFORM = re.compile(r"[a-z0-9_.-]+/[a-z0-9_.-]+(?:/[a-z0-9_.-]+)?")


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise Problem(f"not a regular expression: {exc}") from None
    return value


def _specifiers(value: str) -> str:
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        raise Problem(f"not a version range like '>=1.2,<2' or '~=3.19.0', got {value!r}") from None
    return value


def _platforms(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if _PLATFORM.fullmatch(value) is None:
            raise Problem(f"expected os/arch[/variant] like linux/arm64/v8, got {value!r}")
    return values


def _some(values: tuple[str, ...]) -> tuple[str, ...]:
    if not values:
        raise Problem("name at least one repository")
    return values


Repositories = Annotated[TextList, AfterValidator(_some), TypeName("list of names or globs")]
Regex = Annotated[str, AfterValidator(_regex), TypeName("regular expression")]
VersionRange = Annotated[str, AfterValidator(_specifiers), TypeName("version range")]
Platforms = Annotated[TextList, AfterValidator(_platforms), TypeName("list of os/arch")]


@settings
class SyncTagsConfig:
    """A tag is synced when it matches both (an empty one matches every tag)."""

    regex: Regex = setting(default="", doc="tags matching this regular expression (re.fullmatch)")
    semver: VersionRange = setting(
        default="",
        doc="tags that are versions in this range (PEP 440 specifiers: `>=3.18,<4`, "
        "`~=1.25.0`, `==3.*`; a leading `v` is allowed; pre-releases and tags that are "
        "no version never match)",
    )


@settings
class SyncContentConfig:
    upstream: Text = setting(doc="the upstream to copy from (a name or alias in `proxy`)")
    repositories: Repositories = setting(
        doc="repository names as the upstream knows them (`library/alpine`); a name with "
        "`*`, `?` or `[...]` is a glob matched against the upstream's catalog",
    )
    tags: SyncTagsConfig = setting(default_factory=SyncTagsConfig, doc="which tags")
    platforms: Platforms = setting(
        default=(), doc="of an index, the images of these platforms only (default: all)"
    )
    interval: MaybeDuration = setting(default=None, doc="how often (default: `sync.interval`)")


@settings
class SyncConfig:
    interval: PositiveDuration = setting(default=3600.0, doc="how often each entry is synced")
    concurrency: Integer = setting(default=4, ge=1, doc="blobs downloaded at once")
    reserve: Integer = setting(
        default=10,
        ge=0,
        doc="pulls of an upstream's reported quota (Docker Hub's `ratelimit-remaining`) "
        "left to clients: sync pauses below it",
    )
    content: tuple[SyncContentConfig, ...] = setting(
        default=(), doc="what to keep cached: one entry per upstream and repositories"
    )
