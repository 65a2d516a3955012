"""Declaring settings: a frozen dataclass per section of keys, one field per key.

```python
@settings
class BreakerConfig:
    failures: Integer = setting(default=5, ge=1, doc="failures in a row that open the circuit")
    reset: PositiveDuration = setting(default=30.0, doc="how long it stays open")
```

The field is the whole declaration: its type checks the value, `default` applies when the
key is absent or null, `doc` is its meaning in the reference table, `key=` names it where
the key (registry:2's spelling, "remoteurl") is not the Python name (`remote_url`). Unknown
keys are refused. `ignored(...)` declares a key that is accepted for compatibility and has
no effect (not dumped; the table says so); `derived(...)` a value computed from other keys,
which no file may set.

Values that come from a file are prepared before their type checks them, by the
validator `settings` adds: keys become strings; a null value means the default (for a
section: the section with all its defaults); a `RawText` (the environment's untyped text)
is taken verbatim by a key holding text and parsed as YAML by any other. A class that must
rearrange a file's mapping into its fields (storage picks a driver) defines a classmethod
`arrange(data)` that receives the mapping, calls `prepare` itself and returns its fields.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable, Mapping
from typing import (
    Annotated,
    Any,
    Final,
    Literal,
    TypeVar,
    Union,
    dataclass_transform,
    get_args,
    get_origin,
)

import pydantic.dataclasses
import yaml
from pydantic import BeforeValidator, ConfigDict, Field, PlainValidator, Strict, model_validator
from pydantic.fields import FieldInfo

from mirror.settings.problems import Problem
from mirror.settings.types import FromYAML

T = TypeVar("T")
Role = Literal["key", "ignored", "derived"]

# Python code builds declarations by field name (tests, `dataclasses.replace`); files are
# validated with `by_name=False`, so only the declared key spellings reach a field.
_CONFIG: Final = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=True)
_NOTHING: Any = dataclasses.MISSING


class RawText:
    """A value that arrived as text with no type of its own (an environment variable).

    The key it lands on decides what it means: see the module docstring.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)  # as an operator sees it quoted in a message

    def parsed(self) -> object:
        """The text read as a YAML value; raises Problem when it is not one."""
        try:
            return yaml.safe_load(self.text)
        except yaml.YAMLError:
            raise Problem(f"not a valid YAML value: {self.text!r}") from None


def _field(
    role: Role,
    *,
    default: Any,
    default_factory: Callable[[], Any] | None,
    key: str | None,
    doc: str,
    **constraints: Any,
) -> Any:
    given = {name: value for name, value in constraints.items() if value is not None}
    if default is not _NOTHING:
        given["default"] = default
    if default_factory is not None:
        given["default_factory"] = default_factory
    return Field(
        validation_alias=key,
        serialization_alias=key,
        description=doc,
        exclude=role != "key",
        json_schema_extra={"role": role},
        **given,
    )


def setting(
    *,
    default: Any = _NOTHING,
    default_factory: Callable[[], Any] | None = None,
    key: str | None = None,
    doc: str,
    ge: int | None = None,
    min_length: int | None = None,
    omit_empty: bool = False,
    validate_default: bool | None = None,
) -> Any:
    """A key: its default, its file spelling (`key`, when not the field name) and meaning.

    `ge`/`min_length` constrain it; `omit_empty` leaves an empty value out of dumps.
    """
    return _field(
        "key",
        default=default,
        default_factory=default_factory,
        key=key,
        doc=doc,
        ge=ge,
        min_length=min_length,
        exclude_if=(lambda value: not value) if omit_empty else None,
        validate_default=validate_default,
    )


def ignored(
    *,
    default: Any = _NOTHING,
    default_factory: Callable[[], Any] | None = None,
    key: str | None = None,
    why: str,
    ge: int | None = None,
) -> Any:
    """A key accepted (and checked) for compatibility that has no effect, and says `why`."""
    return _field(
        "ignored",
        default=default,
        default_factory=default_factory,
        key=key,
        doc=f"accepted, ignored: {why}",
        ge=ge,
    )


def derived(*, default: Any = _NOTHING, doc: str) -> Any:
    """Not a key: a value computed from the keys (by an `arrange` or a validator)."""
    return _field("derived", default=default, default_factory=None, key=None, doc=doc)


@dataclass_transform(
    frozen_default=True, kw_only_default=True, field_specifiers=(setting, ignored, derived)
)
def settings(cls: type[T]) -> type[T]:
    """Make `cls` a declaration: a frozen, keyword-only pydantic dataclass refusing extras."""
    validator: Any = model_validator(mode="before")
    cls._from_file = validator(classmethod(_from_file))  # type: ignore[attr-defined]
    built: Any = pydantic.dataclasses.dataclass(frozen=True, kw_only=True, config=_CONFIG)(cls)
    for name, info in fields_of(built).items():
        if info.annotation in (str, int, bool, float) and not any(
            isinstance(item, Strict | BeforeValidator | PlainValidator)
            or hasattr(item, "__get_pydantic_core_schema__")
            for item in info.metadata
        ):
            raise TypeError(
                f"{built.__name__}.{name}: declare it with a strict type (Text, Integer, Flag, "
                "Duration, ...): YAML already typed the value, nothing may coerce it"
            )
    built.__settings__ = True
    return built  # type: ignore[no-any-return]


def is_settings(kind: object) -> bool:
    """True for a class made by `@settings`."""
    return isinstance(kind, type) and kind.__dict__.get("__settings__", False) is True


def fields_of(cls: type) -> dict[str, FieldInfo]:
    """The fields of a declaration, by Python name, in declaration order."""
    found: dict[str, FieldInfo] = getattr(cls, "__pydantic_fields__", {})
    return found


def key_of(name: str, info: FieldInfo) -> str:
    """How a file spells the key of field `name`."""
    return info.validation_alias if isinstance(info.validation_alias, str) else name


def role_of(info: FieldInfo) -> Role:
    extra = info.json_schema_extra
    role = extra.get("role", "key") if isinstance(extra, dict) else "key"
    return "ignored" if role == "ignored" else "derived" if role == "derived" else "key"


def section_of(annotation: object) -> type | None:
    """The declaration a field of this type holds (also when optional), else None."""
    if is_settings(annotation):
        return annotation  # type: ignore[return-value]
    if get_origin(annotation) in (Union, types.UnionType):
        found = [arg for arg in get_args(annotation) if is_settings(arg)]
        if len(found) == 1 and type(None) in get_args(annotation):
            return found[0]  # type: ignore[no-any-return]
    return None


def items_of(annotation: object) -> type | None:
    """The declaration of the items of a `tuple[Declaration, ...]` field, else None."""
    if get_origin(annotation) is tuple:
        args = get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis and is_settings(args[0]):
            return args[0]  # type: ignore[no-any-return]
    return None


def _takes_text(info: FieldInfo) -> bool:
    if any(isinstance(item, FromYAML) for item in info.metadata):
        return False
    annotation = info.annotation
    if isinstance(annotation, type):
        return issubclass(annotation, str)
    if get_origin(annotation) is Literal:
        return all(isinstance(arg, str) for arg in get_args(annotation))
    return False


def _plain(value: object) -> object:
    """A free-form value with the environment's text parsed, however deep."""
    if isinstance(value, RawText):
        return value.parsed()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


@functools.cache
def _by_key(cls: type) -> dict[str, FieldInfo]:
    return {key_of(name, info): info for name, info in fields_of(cls).items()}


def field_type(cls: type, key: str) -> Any:
    """The declared type of `cls`'s key `key`, constraints included (to validate it alone)."""
    info = _by_key(cls)[key]
    if not info.metadata:
        return info.annotation
    return Annotated[(info.annotation, *info.metadata)]


def keys_of(cls: type) -> tuple[str, ...]:
    """The keys a file may use in a section declared by `cls`."""
    return tuple(key for key, info in _by_key(cls).items() if role_of(info) != "derived")


def prepare(cls: type, data: Mapping[Any, object]) -> dict[str, object]:
    """`data` (a file's mapping for `cls`) made ready for validation; see the module doc."""
    declared = _by_key(cls)
    ready: dict[str, object] = {}
    for raw_key, raw_value in data.items():
        key = str(raw_key)
        info = declared.get(key)
        if info is None:
            ready[key] = raw_value  # refused by the validation itself, in its turn
            continue
        if role_of(info) == "derived":
            raise Problem("unknown key", (key,), unknown_key=True)
        value = raw_value
        if isinstance(value, RawText):
            try:
                value = value.text if _takes_text(info) else value.parsed()
            except Problem as problem:
                raise problem.under(key) from None
        elif info.annotation is Any:
            value = _plain(value)
        if value is None:
            if section_of(info.annotation) is None:
                continue
            value = {}
        ready[key] = value
    return ready


def _from_file(cls: type, data: object) -> object:
    if not isinstance(data, dict):
        return data  # a Python call's arguments, an instance, or a wrong type (refused)
    arrange = getattr(cls, "arrange", None)
    if arrange is not None:
        return arrange({str(key): value for key, value in data.items()})
    return prepare(cls, data)
