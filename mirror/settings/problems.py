"""Validation problems in words: where (a key path) and what, in one line.

pydantic reports every error with its location and a message of its own; declarations
want the operator's wording ("expected an integer, got 'two'") and only the first problem.
`explain` turns a `ValidationError` into that one `Problem`. Validators raise `Problem`
(a ValueError, so pydantic records it) located relative to the value they check; `within`
validates a part of the input with another declaration and re-raises its first problem
located under that part, so locations add up across nested validations.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

Location = tuple[str | int, ...]

QUOTE_IT: Final = "expected a string, got {value!r} (quote it)"
MAPPING: Final = "expected a mapping of keys"
REQUIRED: Final = "required"


class Problem(ValueError):
    """One bad value: `message` about the key at `at` (relative to where it is raised).

    `unknown_key` marks a key that no declaration names (reported by its path alone).
    """

    def __init__(self, message: str, at: Location = (), *, unknown_key: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.at = at
        self.unknown_key = unknown_key

    def under(self, *prefix: str | int) -> Problem:
        """The same problem, located below `prefix`."""
        return Problem(self.message, (*prefix, *self.at), unknown_key=self.unknown_key)


def format_path(location: Location) -> str:
    """`("proxy", "upstreams", 0, "name")` as "proxy.upstreams[0].name"."""
    path = ""
    for step in location:
        if isinstance(step, int):
            path += f"[{step}]"
        elif step:  # an empty key: the section holding it is the place to look
            path += f".{step}" if path else step
    return path


# pydantic's error types, in the words of a config file's reader.
_MESSAGES: Final = {
    "string_type": QUOTE_IT,
    "int_type": "expected an integer, got {value!r}",
    "bool_type": "expected true or false, got {value!r}",
    "float_type": "expected a number, got {value!r}",
    "greater_than_equal": "must be at least {ge}, got {value}",
    "greater_than": "must be greater than {gt}, got {value}",
    "less_than_equal": "must be at most {le}, got {value}",
    "string_too_short": "must not be empty",
    "tuple_type": "expected a list, got {value!r}",
    "list_type": "expected a list, got {value!r}",
    "missing": REQUIRED,
    "missing_keyword_only_argument": REQUIRED,
}
_MAPPING_TYPES: Final = frozenset({"dataclass_type", "dataclass_args_type", "dict_type"})
_UNKNOWN_TYPES: Final = frozenset({"unexpected_keyword_argument", "extra_forbidden"})


def explain(error: ValidationError) -> Problem:
    """The first error of `error` as a Problem, located from the validated value's root."""
    first = error.errors(include_url=False)[0]
    location: Location = tuple(first["loc"])
    kind = first["type"]
    context: dict[str, Any] = dict(first.get("ctx") or {})
    value = first.get("input")
    cause = context.get("error")
    if isinstance(cause, Problem):
        return cause.under(*location)
    if kind in _UNKNOWN_TYPES:
        return Problem("unknown key", location, unknown_key=True)
    if kind in _MAPPING_TYPES:
        # A list item names no key of its own to show the value against.
        if location and isinstance(location[-1], int):
            return Problem(MAPPING, location)
        return Problem(f"{MAPPING}, got {value!r}", location)
    template = _MESSAGES.get(kind)
    if template is not None:
        return Problem(template.format(value=value, **context), location)
    if kind == "value_error" and cause is not None:
        return Problem(str(cause), location)
    return Problem(first["msg"], location)


@functools.cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def adapter(kind: Any) -> TypeAdapter[Any]:
    """A (cached) TypeAdapter for `kind`: building one compiles a validator."""
    return _adapter(kind)


def within(kind: Any, value: object, *at: str | int) -> Any:
    """`value` validated as `kind` (file input: keys by their declared names only).

    Raises the first problem as a Problem located under `at`, for the validator that calls
    this to pass on (it is itself located by pydantic, so the whole path adds up).
    """
    try:
        return adapter(kind).validate_python(value, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise explain(exc).under(*at) from None
