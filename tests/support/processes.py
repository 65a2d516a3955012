"""Start real server processes for tests, wait until they answer, and always stop them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

LOG_TAIL_LINES = 40
# Sent by readiness probes so access-log assertions can tell them from client traffic.
PROBE_USER_AGENT = "mirror-tests-readiness-probe"


class ProcessStartError(RuntimeError):
    """A process exited or never became ready; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on `host` a moment ago.

    Another process may take it before the caller binds; callers that can should retry on
    "address already in use".
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file, or a note that it does not exist."""
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {log_path})"
    return "\n".join(text.splitlines()[-lines:])


def wait_for_http(
    url: str,
    timeout: float = 10.0,
    *,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll `url` until any HTTP response arrives (any status counts: the server answers).

    Requests carry the User-Agent PROBE_USER_AGENT.
    `alive` is checked between attempts; when it returns False the wait stops early.
    Raises TimeoutError after `timeout` seconds, ProcessStartError when `alive` fails.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02
    last_error = "no attempt made"
    headers = {"User-Agent": PROBE_USER_AGENT}
    with httpx.Client(timeout=1.0, trust_env=False, headers=headers) as client:
        while True:
            if alive is not None and not alive():
                raise ProcessStartError(f"process exited before {url} answered")
            try:
                client.get(url)
                return
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{url} did not answer within {timeout}s ({last_error})")
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    *,
    what: str,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll `check` until it returns True; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while not check():
        if alive is not None and not alive():
            raise ProcessStartError(f"process exited before {what}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> int:
    """Send SIGTERM, wait up to `grace` seconds, then SIGKILL; return the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=grace)


@contextmanager
def running(
    cmd: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ready_url: str | None = None,
    ready: Callable[[], bool] | None = None,
    start_timeout: float = 15.0,
    stop_grace: float = 5.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd` for the duration of the with-block.

    stdout and stderr go (appended) to `log_path`. `env` entries are added on top of the
    current environment. Readiness is `ready_url` answering HTTP, or `ready()` returning
    True, or (with neither) simply having been spawned. If the process exits or is not
    ready within `start_timeout`, it is stopped and ProcessStartError is raised with the
    last lines of its log. On exit the process gets SIGTERM, then SIGKILL after
    `stop_grace` seconds.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
        )

    def alive() -> bool:
        return proc.poll() is None

    try:
        try:
            if ready_url is not None:
                wait_for_http(ready_url, start_timeout, alive=alive)
            if ready is not None:
                wait_until(ready, start_timeout, what=f"{cmd[0]} to become ready", alive=alive)
        except (TimeoutError, ProcessStartError) as exc:
            stop(proc, stop_grace)
            raise ProcessStartError(
                f"{' '.join(cmd)} failed to start (exit status {proc.returncode}): {exc}\n"
                f"--- last lines of {log_path} ---\n{log_tail(log_path)}"
            ) from None
        yield proc
    finally:
        stop(proc, stop_grace)
