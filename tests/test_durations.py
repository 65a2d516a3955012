"""Durations in Go syntax or seconds, as registry:2 configs write them."""

from __future__ import annotations

import pytest

from mirror.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("168h", 168 * 3600.0),
        ("1h30m", 5400.0),
        ("10s", 10.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("2m0.5s", 120.5),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),
        ("100ns", 1e-7),
        ("+5s", 5.0),
        (".5h", 1800.0),
        ("0", 0.0),
        ("30", 30.0),
        (30, 30.0),
        (0, 0.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", ["", "h", "-5s", "5x", "5 s", "1h 30m", "s5", -1, True, None, [], float("nan")]
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (5400, "1h30m"), (0.5, "500ms"), (604800, "168h"), (90.25, "1m30s250ms")],
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError):
        format_duration(-1)
