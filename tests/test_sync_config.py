"""The sync section: what it accepts, what it refuses, and the filters it builds."""

from __future__ import annotations

import pytest

from mirror.sync.filters import TagFilter, expand, platform_of, platform_wanted
from tests.support.configs import HUB, MINIMAL, error_of, parse

SYNC = "sync:\n  content:\n    - upstream: docker.io\n      repositories: [library/alpine]\n"


def test_a_sync_section() -> None:
    config = parse(
        MINIMAL
        + HUB
        + SYNC
        + "      tags: {regex: '3\\..*', semver: '>=3.18,<4'}\n"
        + "      platforms: [linux/amd64, linux/arm64/v8]\n      interval: 10m\n"
    )
    assert config.sync is not None
    (content,) = config.sync.content
    assert content.upstream == "docker.io"
    assert content.repositories == ("library/alpine",)
    assert content.tags.semver == ">=3.18,<4"
    assert content.platforms == ("linux/amd64", "linux/arm64/v8")
    assert content.interval == 600.0
    assert config.sync.interval == 3600.0 and config.sync.reserve == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            MINIMAL + SYNC,
            "sync: needs a proxy section with the upstreams it names",
        ),
        (
            MINIMAL + HUB + SYNC.replace("docker.io", "quay.io"),
            "sync.content[0].upstream: 'quay.io' is not the name or alias of a configured upstream",
        ),
        (
            MINIMAL + HUB + SYNC + "      tags: {regex: '(unclosed'}\n",
            "sync.content[0].tags.regex: not a regular expression: missing ), unterminated "
            "subpattern at position 0",
        ),
        (
            MINIMAL + HUB + SYNC + "      tags: {semver: '>>3'}\n",
            "sync.content[0].tags.semver: not a version range like '>=1.2,<2' or '~=3.19.0', "
            "got '>>3'",
        ),
        (
            MINIMAL + HUB + SYNC + "      platforms: [amd64]\n",
            "sync.content[0].platforms: expected os/arch[/variant] like linux/arm64/v8, "
            "got 'amd64'",
        ),
        (
            MINIMAL + HUB + "sync:\n  content:\n    - {upstream: docker.io, repositories: []}\n",
            "sync.content[0].repositories: name at least one repository",
        ),
    ],
)
def test_bad_sync_sections(text: str, message: str) -> None:
    assert error_of(text) == message


def test_tag_filters() -> None:
    versions = TagFilter(semver=">=1.25,<2")
    assert [
        t
        for t in ["1.24", "1.25.0", "v1.26.3", "2.0", "1.25.1-rc1", "latest"]
        if versions.matches(t)
    ] == ["1.25.0", "v1.26.3"]
    both = TagFilter(regex=r"1\.\d+", semver=">=1.25")
    assert [t for t in ["1.25", "1.25.1", "1.30"] if both.matches(t)] == ["1.25", "1.30"]
    assert TagFilter().matches("anything")


def test_globs_and_platforms() -> None:
    catalog = ["library/alpine", "library/busybox", "team/app/api", "team/app"]
    assert expand(["library/*", "team/app"], catalog) == ["library/alpine", "library/busybox"]
    assert expand(["team/*"], catalog) == ["team/app", "team/app/api"]
    arm = platform_of({"os": "linux", "architecture": "arm64", "variant": "v8"})
    assert arm == "linux/arm64/v8"
    assert platform_wanted(arm, ("linux/arm64",)) and platform_wanted(arm, ())
    assert not platform_wanted(arm, ("linux/arm64/v9", "linux/amd64"))
    assert platform_wanted(None, ("linux/amd64",))
