"""Configuration errors: one line naming the key, for unknown keys and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.configs import HUB, MINIMAL, error_of, parse


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "storage:\n  filesystem:\n    rootdir: /x\n",
            "storage.filesystem.rootdir: unknown key",
        ),
        (
            MINIMAL + "auth:\n  htpasswd: {realm: x, path: /p, colour: 1}\n",
            "auth.htpasswd.colour: unknown key",
        ),
        (MINIMAL + "notifications: {endpoint: []}\n", "notifications.endpoint: unknown key"),
        (MINIMAL + "http:\n  tls:\n    clientcas: [a]\n", "http.tls.clientcas: unknown key"),
        (MINIMAL + "log:\n  accesslog:\n    enabled: true\n", "log.accesslog.enabled: unknown key"),
        (MINIMAL + "storage2: {}\n", "storage2: unknown key"),
        (MINIMAL + HUB + "  colour: blue\n", "proxy.colour: unknown key"),
        (
            MINIMAL + "proxy:\n  upstreams:\n    - {name: a.io, remoteurl: 'https://a.io', x: 1}\n",
            "proxy.upstreams[0].x: unknown key",
        ),
        (MINIMAL + "redis:\n  addrs: [a:1]\n", "redis.addrs: unknown key"),
        (MINIMAL + "cache:\n  size: 5\n", "cache.size: unknown key"),
        ("storage:\n  inmemory:\n    x: 1\n", "storage.inmemory.x: unknown key"),
    ],
)
def test_unknown_keys(text: str, message: str) -> None:
    assert error_of(text) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "storage: missing: configure one of azure, filesystem, inmemory, s3"),
        (
            "storage: {}\n",
            "storage: no storage driver: configure one of azure, filesystem, inmemory, s3",
        ),
        (
            "storage:\n  inmemory:\n  filesystem:\n",
            "storage: more than one storage driver: inmemory, filesystem",
        ),
        (
            "storage:\n  s3: {bucket: b}\n",
            "storage.s3.region: is required (a non-empty string)",
        ),
        (
            "storage:\n  swift: {container: c}\n",
            "storage.swift: unsupported storage driver (supported: azure, filesystem, "
            "inmemory, s3)",
        ),
        (
            "storage:\n  gcs: {bucket: b}\n",
            "storage.gcs: storage driver 'gcs' is not shipped yet: no GCS driver has been "
            "tested against an emulator; use s3 (Google Cloud Storage also serves the S3 XML "
            "API with HMAC keys) or azure",
        ),
        (
            "storage:\n  s3: {bucket: b, region: r, encrypt: true, keyid: k, v4auth: false}\n",
            "storage.s3.v4auth: false is not supported: obstore signs with Signature V4 only",
        ),
        (
            "storage:\n  azure: {accountname: a, container: c, accountkey: k, max_retries: x}\n",
            "storage.azure.max_retries: expected an integer, got 'x'",
        ),
        (
            "storage:\n  filesystem: {rootdirectory: ''}\n",
            "storage.filesystem.rootdirectory: must not be empty",
        ),
        (
            "storage:\n  filesystem: {maxthreads: 0}\n",
            "storage.filesystem.maxthreads: must be at least 1, got 0",
        ),
        (
            MINIMAL + "version: 0.2\n",
            "version: unsupported configuration version 0.2 (expected 0.1)",
        ),
        (MINIMAL + "version: [1]\n", "version: expected 0.1, got [1]"),
        (
            MINIMAL + "log:\n  level: verbose\n",
            "log.level: expected one of error, warn, info, debug, got 'verbose'",
        ),
        (
            "storage:\n  inmemory:\n  delete: {enabled: 'yes'}\n",
            "storage.delete.enabled: expected true or false, got 'yes'",
        ),
        (
            "storage:\n  inmemory:\n  maintenance:\n    uploadpurging: {age: soon}\n",
            "storage.maintenance.uploadpurging.age: "
            "expected a duration like 30s, 5m, 1h30m or 168h, got 'soon'",
        ),
        (
            "storage:\n  inmemory:\n  maintenance:\n    uploadpurging: {interval: 0}\n",
            "storage.maintenance.uploadpurging.interval: must be longer than zero",
        ),
        (
            "storage:\n  inmemory:\n  cache: {blobdescriptor: memcached}\n",
            "storage.cache.blobdescriptor: expected one of inmemory, redis, got 'memcached'",
        ),
        (MINIMAL + "http: [1]\n", "http: expected a mapping of keys, got [1]"),
        (
            MINIMAL + "http:\n  host: mirror.example\n",
            "http.host: expected an absolute http(s) URL, got 'mirror.example'",
        ),
        (
            MINIMAL + "http:\n  server: hypercorn\n",
            "http.server: expected one of granian, uvicorn, got 'hypercorn'",
        ),
        (MINIMAL + "http:\n  workers: 0\n", "http.workers: must be at least 1, got 0"),
        (MINIMAL + "http:\n  workers: two\n", "http.workers: expected an integer, got 'two'"),
        (MINIMAL + "http:\n  workers: true\n", "http.workers: expected an integer, got True"),
        (
            MINIMAL + "http:\n  headers:\n    'Bad Header': [x]\n",
            "http.headers.Bad Header: not a valid HTTP header name",
        ),
        (
            MINIMAL + "http:\n  headers:\n    X-A: ['caf\u00e9']\n",
            "http.headers.X-A: header values must be printable ASCII",
        ),
        (
            MINIMAL + "http:\n  headers:\n    X-A: {b: c}\n",
            "http.headers.X-A: expected a list of strings, got {'b': 'c'}",
        ),
        (MINIMAL + "redis:\n  addr: redis\n", "redis.addr: expected host:port, got 'redis'"),
        (MINIMAL + "redis:\n  db: -1\n", "redis.db: must be at least 0, got -1"),
        (
            MINIMAL + "redis:\n  password: 1234\n",
            "redis.password: expected a string, got 1234 (quote it)",
        ),
        (
            MINIMAL + "redis:\n  dialtimeout: -1s\n",
            "redis.dialtimeout: expected a duration like 30s, 5m, 1h30m or 168h, got '-1s'",
        ),
        (
            MINIMAL + "proxy: {}\n",
            "proxy: needs proxy.remoteurl or at least one proxy.upstreams entry",
        ),
        (
            MINIMAL + "proxy:\n  remoteurl: ftp://x.io\n",
            "proxy.remoteurl: expected an absolute http(s) URL without credentials, "
            "got 'ftp://x.io'",
        ),
        (
            MINIMAL + "proxy:\n  remoteurl: https://u:p@x.io\n",
            "proxy.remoteurl: expected an absolute http(s) URL without credentials, "
            "got 'https://u:p@x.io'",
        ),
        (
            MINIMAL + "proxy:\n  remoteurl: registry-1.docker.io\n",
            "proxy.remoteurl: expected an absolute http(s) URL without credentials, "
            "got 'registry-1.docker.io'",
        ),
        (
            MINIMAL + HUB + "  name: 'not a host'\n",
            "proxy.name: expected a registry host[:port], got 'not a host'",
        ),
        (
            MINIMAL + "proxy:\n  remoteurl: https://x.io:99999\n",
            "proxy.remoteurl: expected an absolute http(s) URL without credentials, "
            "got 'https://x.io:99999'",
        ),
        (
            MINIMAL + "proxy:\n  remoteurl: https://x.io/?a=b\n",
            "proxy.remoteurl: expected an absolute http(s) URL without credentials, "
            "got 'https://x.io/?a=b'",
        ),
        (
            MINIMAL + HUB + "  aliases: ['bad/alias']\n",
            "proxy.aliases: expected registry host[:port] names, got 'bad/alias'",
        ),
        (
            MINIMAL
            + "proxy:\n  username: u\n  upstreams: [{name: a.io, remoteurl: 'https://a.io'}]\n",
            "proxy.username: only valid together with proxy.remoteurl",
        ),
        (
            MINIMAL + "proxy:\n  upstreams:\n    - {remoteurl: 'https://a.io'}\n",
            "proxy.upstreams[0].name: required",
        ),
        (
            MINIMAL + "proxy:\n  upstreams:\n    - {name: a.io}\n",
            "proxy.upstreams[0].remoteurl: required",
        ),
        (MINIMAL + "proxy:\n  upstreams: [x]\n", "proxy.upstreams[0]: expected a mapping of keys"),
        (
            MINIMAL + "proxy:\n  upstreams: {a: b}\n",
            "proxy.upstreams: expected a list, got {'a': 'b'}",
        ),
        (
            MINIMAL + HUB + "  upstreams:\n    - {name: Docker.io, remoteurl: 'https://b.io'}\n",
            "proxy.upstreams[0].name: 'docker.io' already names the upstream at proxy",
        ),
        (
            MINIMAL
            + "proxy:\n  upstreams:\n"
            + "    - {name: a.io, remoteurl: 'https://a.io', aliases: [b.io]}\n"
            + "    - {name: c.io, remoteurl: 'https://c.io', aliases: [B.IO]}\n",
            "proxy.upstreams[1].aliases: 'b.io' already names the upstream at proxy.upstreams[0]",
        ),
        (
            MINIMAL + HUB + "  default: ghcr.io\n",
            "proxy.default: 'ghcr.io' is not the name or alias of a configured upstream",
        ),
        (
            MINIMAL + HUB + "  local: [Team/]\n",
            "proxy.local: expected repository name prefixes like team/, got 'Team/'",
        ),
        (
            MINIMAL + HUB + "  breaker: {failures: 0}\n",
            "proxy.breaker.failures: must be at least 1, got 0",
        ),
        (
            MINIMAL + HUB + "  timeouts: {connect: 0s}\n",
            "proxy.timeouts.connect: must be longer than zero",
        ),
        (
            MINIMAL + HUB + "  offline: maybe\n",
            "proxy.offline: expected true or false, got 'maybe'",
        ),
        (
            MINIMAL + HUB + "  freshness: 5 minutes\n",
            "proxy.freshness: expected a duration like 30s, 5m, 1h30m or 168h, got '5 minutes'",
        ),
    ],
)
def test_bad_values(text: str, message: str) -> None:
    assert error_of(text) == message


def test_tls_needs_both_files_and_they_must_exist(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("cert")
    missing = tmp_path / "missing.pem"
    assert (
        error_of(f"{MINIMAL}http:\n  tls:\n    certificate: {cert}\n")
        == "http.tls.key: missing: http.tls needs both certificate and key"
    )
    assert (
        error_of(f"{MINIMAL}http:\n  tls:\n    certificate: {missing}\n    key: {cert}\n")
        == f"http.tls.certificate: file not found: {missing}"
    )
    assert (
        error_of(f"{MINIMAL}http:\n  tls:\n    certificate: {cert}\n    key: {missing}\n")
        == f"http.tls.key: file not found: {missing}"
    )
    assert parse(f"{MINIMAL}http:\n  tls: {{certificate: '', key: ''}}\n").http.tls is None
