"""How numbers, sizes and times read on the pages."""

from __future__ import annotations

import time

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(size: float | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def when(moment: float | None) -> str:
    """An epoch time as UTC, '-' when unknown."""
    if moment is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


def count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def short_digest(digest: object) -> str:
    text = str(digest)
    algorithm, _, hex_ = text.partition(":")
    return f"{algorithm}:{hex_[:12]}" if hex_ else text
