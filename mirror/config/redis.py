"""The `redis` section: present, it makes processes and hosts share leases and metadata."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from mirror.config.addresses import HostPort, split_host_port
from mirror.settings import Integer, MaybeDuration, Secret, Text, ignored, setting, settings
from mirror.settings.problems import Problem


@settings
class RedisConfig:
    addr: HostPort = setting(default="localhost:6379", doc="the Redis server")
    username: Text = setting(default="", doc="user name (Redis ACLs)")
    password: Secret = setting(default="", doc="password")
    db: Integer = setting(default=0, ge=0, doc="database number")
    dial_timeout: MaybeDuration = setting(
        default=None, key="dialtimeout", doc="connect timeout (unset or 0: 1s)"
    )
    # Redis calls time out after 1s so that coordination falls back to the embedded one fast.
    read_timeout: MaybeDuration = ignored(
        default=None, key="readtimeout", why="Redis calls time out after 1s"
    )
    write_timeout: MaybeDuration = ignored(
        default=None, key="writetimeout", why="Redis calls time out after 1s"
    )
    pool: Any = ignored(default=None, why="the client pools on its own")
    prefix: Text = setting(
        default="mirror:",
        doc="start of every key this deployment keeps in Redis (leases, metadata, event "
        "queues): deployments sharing one Redis database need different ones",
    )

    @field_validator("prefix", mode="after")
    @classmethod
    def _printable(cls, prefix: str) -> str:
        if not prefix or not prefix.isprintable() or any(c.isspace() for c in prefix):
            raise Problem(f"expected a non-empty key prefix without spaces, got {prefix!r}")
        return prefix

    @property
    def host(self) -> str:
        return self._split[0]

    @property
    def port(self) -> int:
        return self._split[1]

    @property
    def _split(self) -> tuple[str, int]:
        found = split_host_port(self.addr)
        if found is None:  # pragma: no cover - the type refused it
            raise ValueError(f"not host:port: {self.addr!r}")
        return found
