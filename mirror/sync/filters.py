"""Which repositories, tags and platforms a sync target selects."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class TagFilter:
    """Tags matching `regex` (whole tag) and, when given, versions within `semver` (PEP 440
    specifiers; `v1.2.3` reads as 1.2.3; pre-releases and non-versions never match)."""

    regex: str = ""
    semver: str = ""
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _range: SpecifierSet | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(self.regex) if self.regex else None)
        object.__setattr__(self, "_range", SpecifierSet(self.semver) if self.semver else None)

    def matches(self, tag: str) -> bool:
        if self._pattern is not None and self._pattern.fullmatch(tag) is None:
            return False
        if self._range is None:
            return True
        try:
            version = Version(tag)
        except InvalidVersion:
            return False
        return self._range.contains(version, prereleases=False)


def is_glob(name: str) -> bool:
    return _GLOB.search(name) is not None


def expand(patterns: Iterable[str], catalog: Iterable[str]) -> list[str]:
    """The names of `catalog` that a glob among `patterns` matches (`*` crosses `/`)."""
    globs = [p for p in patterns if is_glob(p)]
    return sorted({name for name in catalog for glob in globs if fnmatch.fnmatchcase(name, glob)})


def platform_of(descriptor_platform: dict[str, Any] | None) -> str | None:
    """`os/arch[/variant]` of an index entry's platform, None when it has none."""
    if not descriptor_platform:
        return None
    os_name = descriptor_platform.get("os")
    arch = descriptor_platform.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        return None
    variant = descriptor_platform.get("variant")
    return (
        f"{os_name}/{arch}/{variant}"
        if isinstance(variant, str) and variant
        else (f"{os_name}/{arch}")
    )


def platform_wanted(platform: str | None, wanted: tuple[str, ...]) -> bool:
    """Whether an index child of `platform` is kept: all are when nothing is asked for;
    `linux/arm64` takes every variant of it, `linux/arm64/v8` that one only. A child of
    no platform (an attestation) goes with the ones kept."""
    if not wanted or platform is None:
        return True
    return any(platform == w or platform.startswith(w + "/") for w in wanted)
