"""Whether the process that holds a lease is still alive, where that can be known.

A lease names its holder with `holder_id()`: the pid, the process's start time (so a
reused pid is not mistaken for the holder) and the scope those mean something in - the
boot of the kernel and the pid namespace. Another process in the same scope can tell
from /proc that the holder died (`is_dead`) instead of waiting for the lease to expire;
from anywhere else (another host, another container) nothing can be told, and the ttl
stays the only way a dead holder's lease ends. Without /proc (not Linux) nothing is told
either.
"""

from __future__ import annotations

import os

# By pid: a forked worker gets its own.
_ids: dict[int, bytes] = {}
_scopes: dict[int, str | None] = {}


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _scope() -> str | None:
    pid = os.getpid()
    if pid not in _scopes:
        boot = _read("/proc/sys/kernel/random/boot_id")
        try:
            namespace: str | None = os.readlink("/proc/self/ns/pid")
        except OSError:
            namespace = None
        _scopes[pid] = None if boot is None or namespace is None else f"{boot}/{namespace}"
    return _scopes[pid]


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks after boot), None when it is gone or
    a zombie."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ")" ends it.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def holder_id() -> bytes:
    """This process, as a lease names its holder (empty where it cannot be told apart)."""
    pid = os.getpid()
    found = _ids.get(pid)
    if found is None:
        found = _ids[pid] = id_of(pid)
    return found


def id_of(pid: int) -> bytes:
    """Process `pid` of this scope as `holder_id` names it (empty when it cannot be)."""
    scope, start = _scope(), _start_time(pid)
    return b"" if scope is None or start is None else f"{scope} {pid} {start}".encode()


def is_dead(holder: bytes) -> bool:
    """True when `holder` (a `holder_id` of some process) is known to have exited; False
    when it lives, or cannot be told (another host or container, or no /proc)."""
    if holder == holder_id():
        return False
    try:
        scope, pid, start = holder.decode("ascii").split(" ")
        number = int(pid)
    except (UnicodeDecodeError, ValueError):
        return False
    if number <= 0 or scope != _scope():
        return False
    return _start_time(number) != start
