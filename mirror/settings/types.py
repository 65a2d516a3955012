"""The value types settings are declared with: each checks its value and says what is wrong.

Scalars are strict (no "5" for an integer, no "yes" for a boolean: YAML already typed them,
and an environment variable's text is parsed as YAML before it gets here). Durations hold
float seconds and sizes whole bytes; both print back in the form they are written in.
A `Secret` reads and compares as its text but never shows it: in a repr, in a dump (this
is how `check-config` redacts), in a log line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, get_args

from pydantic import BeforeValidator, GetCoreSchemaHandler, PlainSerializer, StrictBool, StrictInt
from pydantic import StrictStr as Text  # a strict str
from pydantic_core import CoreSchema, core_schema

from mirror.durations import format_duration, parse_duration
from mirror.settings.problems import QUOTE_IT, Problem
from mirror.sizes import format_size, parse_size

__all__ = [
    "REDACTED",
    "ByteSize",
    "Duration",
    "Flag",
    "FromYAML",
    "Integer",
    "MaybeDuration",
    "OneOf",
    "PositiveDuration",
    "Secret",
    "SecretText",
    "Text",
    "TextList",
    "TypeName",
]

REDACTED: Final = "<redacted>"
Flag = StrictBool
Integer = StrictInt


@dataclass(frozen=True, slots=True)
class TypeName:
    """How the reference table names a type (metadata of an Annotated type)."""

    name: str


@dataclass(frozen=True, slots=True)
class FromYAML:
    """Marks a text-valued key whose environment variable is parsed as YAML anyway.

    Any other key holding text takes its variable verbatim (REGISTRY_PROXY_PASSWORD=0123
    is the string "0123"); `version` is the exception (registry:2 parses it).
    """


def _duration(value: object) -> float:
    try:
        return parse_duration(value)
    except ValueError:
        raise Problem(f"expected a duration like 30s, 5m, 1h30m or 168h, got {value!r}") from None


def _positive_duration(value: object) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        raise Problem("must be longer than zero")
    return seconds


def _maybe_duration(value: object) -> float | None:
    return None if value is None else _duration(value)


def _print_duration(seconds: float | None) -> str | None:
    return None if seconds is None else format_duration(seconds)


def _size(value: object) -> int:
    try:
        return parse_size(value)
    except ValueError:
        raise Problem(
            f"expected a size like 512MB, 50GiB or a number of bytes, got {value!r}"
        ) from None


def _texts(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise Problem(f"expected a list of strings, got {value!r}")
    return tuple(items)


_print_seconds = PlainSerializer(_print_duration, return_type=str | None)
Duration = Annotated[float, BeforeValidator(_duration), _print_seconds, TypeName("duration")]
PositiveDuration = Annotated[
    float, BeforeValidator(_positive_duration), _print_seconds, TypeName("duration (> 0)")
]
# Unset means "whoever uses it decides" (a client library's own default).
MaybeDuration = Annotated[
    float | None, BeforeValidator(_maybe_duration), _print_seconds, TypeName("duration")
]
ByteSize = Annotated[
    int, BeforeValidator(_size), PlainSerializer(format_size, return_type=str), TypeName("size")
]
# One string is a list of one.
TextList = Annotated[tuple[str, ...], BeforeValidator(_texts), TypeName("list of strings")]


class SecretText(str):
    """The value of a `Secret` key: a str for whoever uses it, `<redacted>` in any repr."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(REDACTED) if self else "''"


@dataclass(frozen=True, slots=True)
class _SecretSchema:
    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(
            SecretText,
            core_schema.str_schema(strict=True),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: REDACTED if value else ""
            ),
        )


# A password, key or token. Equal to the plain string it holds; declaring a key as Secret
# is all it takes for `check-config` (any dump of a declaration) to hide it.
Secret = Annotated[str, _SecretSchema(), TypeName("secret")]


class OneOf:
    """Metadata for `Annotated[Literal[...], OneOf()]`: a choice among the Literal's words.

    The value is lower-cased first (registry:2 reads `level: INFO`), then looked up in the
    `synonyms` (`OneOf(warning="warn")`).
    """

    __slots__ = ("synonyms",)

    def __init__(self, **synonyms: str) -> None:
        self.synonyms = tuple(sorted(synonyms.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OneOf) and other.synonyms == self.synonyms

    def __hash__(self) -> int:
        return hash(self.synonyms)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(
            self._checker(tuple(str(option) for option in get_args(source))), handler(source)
        )

    def _checker(self, options: tuple[str, ...]) -> Callable[[object], str]:
        synonyms = dict(self.synonyms)

        def check(value: object) -> str:
            if not isinstance(value, str):
                raise Problem(QUOTE_IT.format(value=value))
            word = value.lower()
            word = synonyms.get(word, word)
            if word not in options:
                raise Problem(f"expected one of {', '.join(options)}, got {word!r}")
            return word

        return check
