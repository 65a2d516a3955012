"""Running the ASGI app under granian (default) or uvicorn, as the configuration says.

Both servers start worker processes that each build the app themselves by calling a
zero-argument factory named by an import string (default
`mirror.proxy.app:create_app_from_env`), which reads the config file named by the
`MIRROR_CONFIG` environment variable (unset: the embedded default).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import signal
import socket
from pathlib import Path
from typing import Any, Final

from mirror import logs, metrics_dir, worker
from mirror.config import Config, ConfigError

APP_TARGET: Final = worker.DEFAULT_APP
CONFIG_ENV: Final = "MIRROR_CONFIG"
_LEVELS: Final = logs.LEVELS
# Lifespan shutdown after the drain (events, health, leases, Redis) gets this long
# before granian kills a worker that has not stopped.
SHUTDOWN_MARGIN: Final = 15.0


class ListenError(Exception):
    """The configured address cannot be listened on (in use, not local, no permission)."""


def serve(config: Config, config_path: str | None, *, app_target: str = APP_TARGET) -> None:
    """Serve until SIGINT/SIGTERM stops the server, then return.

    `config_path` is where each worker's app factory reads the configuration again (None:
    the embedded default); it is put in MIRROR_CONFIG in this process's environment, which
    the workers inherit. `app_target` ("module:factory") names the zero-argument ASGI app
    factory. Raises ConfigError when the address does not resolve, ListenError when it
    cannot be bound, SystemExit when the server fails to start.
    """
    if config_path is None:
        os.environ.pop(CONFIG_ENV, None)
    else:
        os.environ[CONFIG_ENV] = os.path.abspath(config_path)
    _worker_environment(config, app_target)
    host = bind_address(config.http.bind_host)
    sock = _listening_socket(host, config.http.bind_port, config.http.addr)
    if config.http.server == "uvicorn":
        _run_uvicorn(config, sock, worker.TARGET)
    else:
        # granian binds on its own (and panics on failure): the probe only reports problems.
        sock.close()
        _run_granian(config, host, worker.TARGET)


def _worker_environment(config: Config, app_target: str) -> None:
    """What the workers inherit: the app to serve behind the edge, whether it logs
    requests, and with several workers the directory their metrics add up in."""
    os.environ[worker.TARGET_ENV] = app_target
    os.environ[worker.SERVER_PID_ENV] = str(os.getpid())
    os.environ[worker.ACCESS_LOG_ENV] = "1" if config.log.access_log else "0"
    if config.http.workers > 1:
        base = os.path.join(config.cache.directory, "prometheus")
        os.environ[metrics_dir.MULTIPROC_ENV] = str(metrics_dir.prepare(base))
    else:
        os.environ.pop(metrics_dir.MULTIPROC_ENV, None)


def _logging_config(config: Config) -> dict[str, Any]:
    log = config.log
    return logs.dict_config(log.formatter, log.fields, log.level)


def bind_address(host: str) -> str:
    """The IP address to listen on for http.addr's `host`.

    "" (":port") means every interface: "::" (dual-stack) where IPv6 works, else
    "0.0.0.0". (uvicorn gets a socket bound here with IPV6_V6ONLY off; granian binds its
    own, dual-stack by the Linux default net.ipv6.bindv6only=0.) A host name resolves to
    its first address; raises ConfigError if it does not resolve.
    """
    if not host:
        return "::" if _dual_stack_available() else "0.0.0.0"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ConfigError(f"http.addr: cannot resolve {host!r}: {exc.strerror}") from None
    return str(infos[0][4][0])


def _dual_stack_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            probe.bind(("::", 0))
    except OSError:
        return False
    return True


def _listening_socket(host: str, port: int, addr: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # "::" must take IPv4 too, as ":5000" does for registry:2; asyncio would not.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {addr}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _run_granian(config: Config, host: str, app_target: str) -> None:
    from granian import Granian
    from granian.constants import Interfaces, SSLProtocols
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    from mirror.headertimeout import HEADER_TIMEOUT

    tls = config.http.tls
    server = Granian(
        app_target,
        address=host,
        port=config.http.bind_port,
        interface=Interfaces.ASGI,
        workers=config.http.workers,
        # A worker that dies (OOM killer, a crash) is replaced; by default granian would
        # stop the whole server. (uvicorn's Multiprocess supervisor replaces dead
        # workers on its own.) Its crash-loop guard still stops a server whose workers
        # fail again within seconds, such as an app that cannot start.
        respawn_failed_workers=True,
        # Slow request heads (slowloris) are cut: see mirror.headertimeout.
        http1_settings=HTTP1Settings(header_read_timeout=int(HEADER_TIMEOUT * 1000)),
        factory=True,
        log_level=LogLevels(logging.getLevelName(_LEVELS[config.log.level]).lower()),
        # The request edge (mirror.worker) writes the access log, with request ids.
        log_access=False,
        log_dictconfig=_logging_config(config),
        # A worker still running this long after SIGTERM is killed: the drain, then
        # the lifespan shutdown (mirror.proxy.shutdown bounds the requests by the drain).
        workers_kill_timeout=math.ceil(config.http.drain_timeout + SHUTDOWN_MARGIN),
        ssl_cert=Path(tls.certificate) if tls else None,
        ssl_key=Path(tls.key) if tls else None,
        # registry:2's default floor; granian's own (TLS 1.3) would turn older clients away.
        ssl_protocol_min=SSLProtocols.tls12,
    )
    server.serve()


def _run_uvicorn(config: Config, sock: socket.socket, app_target: str) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from mirror.uvicorn_sendfile import SendfileProtocol

    tls = config.http.tls
    settings = uvicorn.Config(
        app_target,
        factory=True,
        host=str(sock.getsockname()[0]),
        port=config.http.bind_port,
        workers=config.http.workers,
        loop="uvloop",
        # httptools, with a deadline for request heads, and sendfile(2) for cached blobs
        # on plain TCP (ASGI zero-copy send).
        http=SendfileProtocol,
        log_config=_logging_config(config),
        log_level=_LEVELS[config.log.level],
        access_log=False,  # written by the request edge (mirror.worker), with request ids
        # SIGTERM: running requests get this long, then are cancelled, then the
        # lifespan shutdown runs.
        timeout_graceful_shutdown=max(1, math.ceil(config.http.drain_timeout)),
        # granian does not rewrite the client address from X-Forwarded-*; neither should this.
        proxy_headers=False,
        ssl_certfile=tls.certificate if tls else None,
        ssl_keyfile=tls.key if tls else None,
    )
    try:
        if config.http.workers > 1:
            Multiprocess(settings, sockets=[sock]).run()
            return
        server = uvicorn.Server(settings)
        # After its graceful shutdown uvicorn raises the stop signal again, which would kill
        # this process instead of returning; with the server's own handler it lands softly.
        stop_signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, server.handle_exit) for sig in stop_signals}
        try:
            server.run(sockets=[sock])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if not server.started:
            raise SystemExit(3)
    finally:
        sock.close()
