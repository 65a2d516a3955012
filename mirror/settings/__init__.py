"""The vocabulary settings are declared in: by the configuration and by the storage drivers.

Layer 0, so that a driver (layer 1) declares its parameters without importing the
configuration that reads them. `declare` holds the `@settings` decorator and the field
specifiers, `types` the value types, `problems` the one-line explanation of what is wrong.
"""

from __future__ import annotations

from mirror.settings.declare import (
    RawText,
    derived,
    field_type,
    fields_of,
    ignored,
    is_settings,
    items_of,
    key_of,
    keys_of,
    prepare,
    role_of,
    section_of,
    setting,
    settings,
)
from mirror.settings.problems import Problem, adapter, explain, format_path, within
from mirror.settings.types import (
    REDACTED,
    ByteSize,
    Duration,
    Flag,
    FromYAML,
    Integer,
    MaybeDuration,
    OneOf,
    PositiveDuration,
    Secret,
    SecretText,
    Text,
    TextList,
    TypeName,
)

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
    "Problem",
    "RawText",
    "Secret",
    "SecretText",
    "Text",
    "TextList",
    "TypeName",
    "adapter",
    "derived",
    "explain",
    "field_type",
    "fields_of",
    "format_path",
    "ignored",
    "is_settings",
    "items_of",
    "key_of",
    "keys_of",
    "prepare",
    "role_of",
    "section_of",
    "setting",
    "settings",
    "within",
]
