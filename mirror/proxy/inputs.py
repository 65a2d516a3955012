"""Raw client input checked at the HTTP edge: plain numbers.

Python's own parsers are lenient where a client's input must not be: `int()` takes
`1_0`, `+5`, ` 5` and the digits of other scripts (Arabic-Indic, fullwidth),
`str.isdigit()` takes superscripts (which `int()` then refuses: a 500), and `int()` of
more than 4300 digits raises.
"""

from __future__ import annotations

# Larger than any size, offset or count this registry handles; more digits than this
# are read as this (beyond any blob), never parsed.
HUGE = 10**18
_MAX_DIGITS = len(str(HUGE)) - 1


def plain_number(text: str) -> int | None:
    """The value of `text` if it is one or more ASCII digits (HUGE when longer than 18
    digits), else None."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    if len(text) > _MAX_DIGITS:
        return HUGE
    return int(text)
