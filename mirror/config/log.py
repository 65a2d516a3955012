"""The `log` section: how much the servers and `mirror` log, and whether requests are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import PlainSerializer, PlainValidator

from mirror.settings import Flag, OneOf, Problem, RawText, TypeName, setting, settings
from mirror.settings.problems import MAPPING

Level = Annotated[Literal["error", "warn", "info", "debug"], OneOf(warning="warn")]
Formatter = Annotated[Literal["text", "json", "logstash"], OneOf()]
FieldValue = str | int | float | bool


def _fields(value: object) -> tuple[tuple[str, FieldValue], ...]:
    if isinstance(value, tuple):
        return value  # built by code
    if not isinstance(value, Mapping):
        raise Problem(f"{MAPPING}, got {value!r}")
    fields: list[tuple[str, FieldValue]] = []
    for key, raw in value.items():
        given = raw.parsed() if isinstance(raw, RawText) else raw
        if not isinstance(given, str | int | float | bool):
            raise Problem(f"expected a string, number or boolean, got {given!r}", (str(key),))
        fields.append((str(key), given))
    return tuple(fields)


Fields = Annotated[
    tuple[tuple[str, FieldValue], ...],
    PlainValidator(_fields),
    PlainSerializer(dict),
    TypeName("map of name to value"),
]


@settings
class AccessLogConfig:
    disabled: Flag = setting(default=False, doc="turn the access log off")


@settings
class LogConfig:
    level: Level = setting(
        default="info", doc="what the servers and `mirror` log (`warning` means `warn`)"
    )
    accesslog: AccessLogConfig = setting(default_factory=AccessLogConfig, doc="request logging")
    formatter: Formatter = setting(
        default="text", doc="`text` (one line each), `json` or `logstash` (a JSON object each)"
    )
    fields: Fields = setting(
        default=(), omit_empty=True, doc="extra fields on every line (`service: registry`)"
    )

    @property
    def access_log(self) -> bool:
        """Whether the servers log every request."""
        return not self.accesslog.disabled
