"""The `health` section: registry:2's background health checks.

Every critical check decides `/debug/health` (on `http.debug.addr`) and `/readyz`. The
storage driver check is on by default here (registry:2 has it off): readiness means
"the storage answers", so a probe needs it; `enabled: false` leaves readiness to the
drain switch and the other checks.
"""

from __future__ import annotations

from mirror.config.addresses import AnyHTTPURL, HostPort
from mirror.config.http import Headers
from mirror.settings import (
    Flag,
    Integer,
    PositiveDuration,
    Text,
    setting,
    settings,
)

INTERVAL_DOC = "time between two checks"
THRESHOLD_DOC = "failed checks in a row before it reports failing (0: the first)"


@settings
class StorageDriverCheckConfig:
    enabled: Flag = setting(
        default=True, doc="check the storage driver (on by default: readiness needs it)"
    )
    interval: PositiveDuration = setting(default=10.0, doc=INTERVAL_DOC)
    threshold: Integer = setting(default=3, ge=0, doc=THRESHOLD_DOC)


@settings
class FileCheckConfig:
    file: Text = setting(min_length=1, doc="unhealthy while this file exists")
    interval: PositiveDuration = setting(default=10.0, doc=INTERVAL_DOC)


@settings
class HttpCheckConfig:
    uri: AnyHTTPURL = setting(doc="an http(s) URL that is sent a `HEAD`")
    headers: Headers = setting(default=(), omit_empty=True, doc="headers sent with it")
    statuscode: Integer = setting(default=200, ge=100, doc="the status it must answer")
    timeout: PositiveDuration = setting(default=1.0, doc="how long an answer may take")
    interval: PositiveDuration = setting(default=10.0, doc=INTERVAL_DOC)
    threshold: Integer = setting(default=0, ge=0, doc=THRESHOLD_DOC)


@settings
class TcpCheckConfig:
    addr: HostPort = setting(doc="`host:port` that must accept a connection")
    timeout: PositiveDuration = setting(default=1.0, doc="how long connecting may take")
    interval: PositiveDuration = setting(default=10.0, doc=INTERVAL_DOC)
    threshold: Integer = setting(default=0, ge=0, doc=THRESHOLD_DOC)


@settings
class HealthConfig:
    storagedriver: StorageDriverCheckConfig = setting(
        default_factory=StorageDriverCheckConfig, doc="the storage driver check"
    )
    file: tuple[FileCheckConfig, ...] = setting(default=(), doc="file checks")
    http: tuple[HttpCheckConfig, ...] = setting(default=(), doc="HTTP checks")
    tcp: tuple[TcpCheckConfig, ...] = setting(default=(), doc="TCP checks")
