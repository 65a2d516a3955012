"""Declaring settings (mirror.settings): types, defaults, file input, problems, dumps."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

import pytest

from mirror.settings import (
    REDACTED,
    ByteSize,
    Duration,
    Flag,
    Integer,
    MaybeDuration,
    OneOf,
    PositiveDuration,
    Problem,
    RawText,
    Secret,
    SecretText,
    Text,
    TextList,
    adapter,
    derived,
    fields_of,
    format_path,
    ignored,
    keys_of,
    role_of,
    setting,
    settings,
    within,
)


@settings
class Limits:
    retries: Integer = setting(default=3, ge=1, doc="how many times")
    pause: PositiveDuration = setting(default=1.0, doc="between tries")


@settings
class Sample:
    name: Text = setting(default="", doc="a name")
    remote_url: Text = setting(default="", key="remoteurl", doc="spelt as registry:2 does")
    token: Secret = setting(default="", doc="a secret")
    enabled: Flag = setting(default=False, doc="a switch")
    level: Annotated[Literal["low", "high"], OneOf(hi="high")] = setting(
        default="low", doc="a choice"
    )
    every: Duration = setting(default=60.0, doc="a duration")
    timeout: MaybeDuration = setting(default=None, doc="an optional duration")
    quota: ByteSize = setting(default=0, doc="a size")
    tags: TextList = setting(default=(), doc="strings")
    limits: Limits = setting(default_factory=Limits, doc="a section")
    spare: Limits | None = setting(default=None, doc="an optional section")
    items: tuple[Limits, ...] = setting(default=(), doc="a list of sections")
    legacy: Integer = ignored(default=7, ge=0, why="kept for old files")
    extra: Any = ignored(default=None, why="anything goes")
    chosen: Flag = derived(default=False, doc="decided by code")


def read(data: dict[str, object]) -> Sample:
    found: Sample = within(Sample, data)
    return found


def problem_of(data: dict[str, object]) -> tuple[str, str, bool]:
    with pytest.raises(Problem) as caught:
        read(data)
    return format_path(caught.value.at), caught.value.message, caught.value.unknown_key


def test_defaults_and_keys() -> None:
    sample = read({})
    assert sample == Sample()
    assert (sample.every, sample.timeout, sample.limits) == (60.0, None, Limits())
    assert read({"remoteurl": "https://x"}).remote_url == "https://x"
    assert keys_of(Sample)[:3] == ("name", "remoteurl", "token")
    assert "chosen" not in keys_of(Sample)


def test_python_names_are_for_code_only() -> None:
    assert Sample(remote_url="u").remote_url == "u"
    assert problem_of({"remote_url": "u"}) == ("remote_url", "unknown key", True)
    assert problem_of({"colour": "blue"}) == ("colour", "unknown key", True)


def test_null_means_the_default() -> None:
    sample = read({"name": None, "every": None, "limits": None, "spare": None})
    assert (sample.name, sample.every, sample.limits) == ("", 60.0, Limits())
    # A section written with no keys is there, with its defaults.
    assert sample.spare == Limits()
    assert read({}).spare is None


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"name": 5}, "name", "expected a string, got 5 (quote it)"),
        ({"enabled": "yes"}, "enabled", "expected true or false, got 'yes'"),
        ({"enabled": 1}, "enabled", "expected true or false, got 1"),
        ({"limits": {"retries": "2"}}, "limits.retries", "expected an integer, got '2'"),
        ({"limits": {"retries": True}}, "limits.retries", "expected an integer, got True"),
        ({"limits": {"retries": 2.0}}, "limits.retries", "expected an integer, got 2.0"),
        ({"limits": {"retries": 0}}, "limits.retries", "must be at least 1, got 0"),
        ({"limits": {"pause": 0}}, "limits.pause", "must be longer than zero"),
        ({"limits": 5}, "limits", "expected a mapping of keys, got 5"),
        ({"items": [{}, 5]}, "items[1]", "expected a mapping of keys"),
        ({"items": [{"pause": "x"}]}, "items[0].pause", "expected a duration like 30s, "),
        ({"items": {"a": 1}}, "items", "expected a list, got {'a': 1}"),
        ({"level": "medium"}, "level", "expected one of low, high, got 'medium'"),
        ({"level": 3}, "level", "expected a string, got 3 (quote it)"),
        ({"every": "soon"}, "every", "expected a duration like 30s, 5m, 1h30m or 168h, got 'soon'"),
        ({"quota": "lots"}, "quota", "expected a size like 512MB, 50GiB or a number of bytes"),
        ({"tags": [1]}, "tags", "expected a list of strings, got [1]"),
        ({"legacy": -1}, "legacy", "must be at least 0, got -1"),
    ],
)
def test_problems_name_the_key(data: dict[str, object], path: str, message: str) -> None:
    found = problem_of(data)
    assert found[0] == path
    assert found[1].startswith(message)
    assert not found[2]


def test_values_are_typed_once() -> None:
    sample = read(
        {
            "level": "HI",
            "every": "1h30m",
            "timeout": 5,
            "quota": "2GiB",
            "tags": "one",
            "items": [{"pause": "500ms"}],
        }
    )
    assert (sample.level, sample.every, sample.timeout) == ("high", 5400.0, 5.0)
    assert (sample.quota, sample.tags) == (2 * 1024**3, ("one",))
    assert sample.items == (Limits(pause=0.5),)


def test_raw_text_is_verbatim_for_text_and_yaml_for_the_rest() -> None:
    sample = read(
        {
            "name": RawText("0123"),
            "token": RawText("true"),
            "level": RawText("HIGH"),
            "enabled": RawText("true"),
            "tags": RawText("[a, b]"),
            "limits": RawText("{retries: 2}"),
            "extra": {"deep": RawText("[1, 2]")},
        }
    )
    assert (sample.name, sample.token, sample.level) == ("0123", "true", "high")
    assert (sample.enabled, sample.tags, sample.limits.retries) == (True, ("a", "b"), 2)
    assert sample.extra == {"deep": [1, 2]}
    assert problem_of({"limits": RawText("{")}) == (
        "limits",
        "not a valid YAML value: '{'",
        False,
    )
    assert problem_of({"enabled": RawText("maybe")})[1] == "expected true or false, got 'maybe'"


def test_secrets_read_as_text_and_never_show() -> None:
    sample = read({"token": "s3cr3t"})
    assert sample.token == "s3cr3t"
    assert isinstance(sample.token, SecretText)
    assert "s3cr3t" not in repr(sample)
    assert repr(sample.token) == repr(REDACTED)
    assert Sample(token="code").token == "code"
    dumped = adapter(Sample).dump_python(sample, mode="json", by_alias=True)
    assert dumped["token"] == REDACTED
    assert adapter(Sample).dump_python(Sample(), mode="json")["token"] == ""


def test_dumps_use_file_spellings_and_leave_ignored_keys_out() -> None:
    sample = read({"remoteurl": "u", "every": 90, "quota": 1000, "legacy": 3, "extra": [1]})
    assert sample.legacy == 3
    dumped = adapter(Sample).dump_python(sample, mode="json", by_alias=True, exclude_none=True)
    assert dumped["remoteurl"] == "u"
    assert (dumped["every"], dumped["quota"]) == ("1m30s", "1kB")
    assert {"legacy", "extra", "chosen", "timeout", "spare"}.isdisjoint(dumped)
    assert within(Sample, dumped) == dataclasses.replace(sample, legacy=7, extra=None)


def test_roles_and_meanings() -> None:
    fields = fields_of(Sample)
    assert role_of(fields["name"]) == "key"
    assert role_of(fields["legacy"]) == "ignored"
    assert fields["legacy"].description == "accepted, ignored: kept for old files"
    assert role_of(fields["chosen"]) == "derived"
    assert problem_of({"chosen": True}) == ("chosen", "unknown key", True)
    assert Sample(chosen=True).chosen


def test_declarations_are_frozen() -> None:
    sample = Sample()
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.name = "x"  # type: ignore[misc]


def test_lax_scalars_are_refused_at_declaration() -> None:
    with pytest.raises(TypeError, match=r"Lax\.count: declare it with a strict type"):

        @settings
        class Lax:
            count: int = setting(default=1, doc="would accept '1' and True")


def test_problem_locations_add_up() -> None:
    with pytest.raises(Problem) as caught:
        within(tuple[Limits, ...], [{}, {"retries": 0}], "outer", "list")
    assert format_path(caught.value.at) == "outer.list[1].retries"
    assert format_path(("storage", "")) == "storage"
