"""Sizes with units ("200MB", "50GiB"), as `cache.maxsize`-like keys are written."""

from __future__ import annotations

import pytest

from mirror.sizes import format_size, parse_size


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("200MB", 200_000_000),
        ("50GiB", 50 * 1024**3),
        ("512k", 512_000),
        ("512KiB", 512 * 1024),
        ("1kb", 1000),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("5g", 5_000_000_000),
        ("5 GB", 5_000_000_000),
        ("2TB", 2 * 1000**4),
        ("1PiB", 1024**5),
        ("4096", 4096),
        ("10b", 10),
        (" 7MiB ", 7 * 1024**2),
        (".5KiB", 512),
        (0, 0),
        (12345, 12345),
        (2.0, 2),
    ],
)
def test_parse_size(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(
    "value",
    ["", "MB", "-1", "-1MB", "5XB", "5 M B", "1.5", "1.2b", "0.0003kB", True, -3, 1.5, None, []],
)
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_size(value)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0"),
        (1, "1"),
        (4096, "4KiB"),
        (200_000_000, "200MB"),
        (50 * 1024**3, "50GiB"),
        (1536 * 1024**2, "1536MiB"),
        (1000, "1kB"),
        (1001, "1001"),
    ],
)
def test_format_size_round_trips(size: int, text: str) -> None:
    assert format_size(size) == text
    assert parse_size(text) == size


def test_format_size_rejects_negative() -> None:
    with pytest.raises(ValueError):
        format_size(-1)
