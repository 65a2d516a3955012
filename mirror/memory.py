"""glibc's allocator, set for a server that moves blobs in megabyte buffers.

Downloads and file reads allocate and free buffers of 128 KiB to 1 MiB all the time, many
of them in worker threads. glibc's defaults then hold on to memory: a freed mmapped
buffer raises its mmap threshold (up to 32 MiB), so later buffers of that size come from
the heap and stay there fragmented, and every thread may get an arena of its own. With
the threshold fixed at `MMAP_THRESHOLD` (big buffers are mmapped and given back when
freed) and `ARENAS` arenas, 8 concurrent cold pulls of a 256 MiB layer (bench workload
5) peaked at 175-181 MiB of server RSS instead of 194-199.

Applied in each server worker at start (`mirror.worker`); settings given through the
MALLOC_* environment variables are left alone. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_MMAP_THRESHOLD = -3  # mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024
ARENAS = 2


def tune_allocator() -> bool:
    """Set glibc's mmap threshold and arena count; True when glibc took them."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = True
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        done = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and done
    if "MALLOC_ARENA_MAX" not in os.environ:
        done = mallopt(M_ARENA_MAX, ARENAS) == 1 and done
    return done
