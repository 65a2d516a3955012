"""The allocator settings of a server worker."""

from __future__ import annotations

import platform

import pytest

from mirror.memory import tune_allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_glibc_takes_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert tune_allocator() is True
    # Large buffers still work (mmapped now) and are given back.
    big = [bytearray(1024 * 1024) for _ in range(8)]
    assert sum(len(b) for b in big) == 8 * 1024 * 1024
