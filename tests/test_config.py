"""Configuration: every key, registry:2 compatibility, environment overrides, errors."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from mirror.config import (
    DEFAULT_CONFIG_YAML,
    BreakerConfig,
    Config,
    ConfigError,
    TimeoutsConfig,
    TLSConfig,
    UploadPurgingConfig,
    UpstreamConfig,
    load_config,
    parse_config,
    with_server,
)
from mirror.durations import format_duration, parse_duration

REPO = Path(__file__).resolve().parent.parent
MINIMAL = "storage: inmemory\n"


def parse(text: str, env: Mapping[str, str] | None = None) -> Config:
    return parse_config(textwrap.dedent(text), env or {})


def error_of(text: str, env: Mapping[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text, env)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- durations -------------------------------------------------------------------------


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


# --- defaults and samples --------------------------------------------------------------


def test_repository_config_yml_is_the_embedded_default() -> None:
    assert (REPO / "config.yml").read_text(encoding="utf-8") == DEFAULT_CONFIG_YAML
    assert load_config(str(REPO / "config.yml"), {}) == load_config(None, {})


def test_embedded_default_is_a_docker_hub_mirror_with_local_pushes() -> None:
    config = load_config(None, {})
    assert config.storage.driver == "filesystem"
    assert config.storage.root_directory == "./data"
    assert config.cache.directory == os.path.join("./data", "_mirror")
    assert not config.cache.ephemeral
    assert config.http.addr == ":5000"
    assert (config.http.bind_host, config.http.bind_port) == ("", 5000)
    assert config.http.server == "granian"
    assert config.redis is None
    proxy = config.proxy
    assert proxy is not None
    assert proxy.default == "docker.io"
    assert proxy.local == ("local/",)
    hub = proxy.upstreams[0]
    assert hub.name == "docker.io"
    assert hub.remote_url == "https://registry-1.docker.io"
    assert hub.aliases == ("index.docker.io", "registry-1.docker.io")
    assert [u.name for u in proxy.upstreams[1:]] == ["ghcr.io", "quay.io", "registry.k8s.io"]


def test_registry2_sample_config_parses() -> None:
    config = parse(
        """\
        version: 0.1
        log:
          fields:
            service: registry
        storage:
          cache:
            blobdescriptor: inmemory
          filesystem:
            rootdirectory: /var/lib/registry
        http:
          addr: :5000
          headers:
            X-Content-Type-Options: [nosniff]
        health:
          storagedriver:
            enabled: true
            interval: 10s
            threshold: 3
        """
    )
    assert config.version == "0.1"
    assert config.storage.driver == "filesystem"
    assert config.storage.root_directory == "/var/lib/registry"
    assert config.cache.directory == "/var/lib/registry/_mirror"
    assert config.http.bind_port == 5000
    assert config.http.headers == (("X-Content-Type-Options", ("nosniff",)),)
    assert config.http.response_headers == {"X-Content-Type-Options": "nosniff"}
    assert config.proxy is None
    assert config.redis is None
    assert config.log.level == "info"
    assert config.log.access_log


def test_registry2_proxy_config_parses() -> None:
    config = parse(
        """\
        version: "0.1"
        storage:
          filesystem: {}
        proxy:
          remoteurl: https://registry-1.docker.io
          username: hubuser
          password: hubpass
          ttl: 72h
        """
    )
    assert config.storage.root_directory == "/var/lib/registry"
    proxy = config.proxy
    assert proxy is not None
    assert proxy.upstreams == (
        UpstreamConfig(
            name="docker.io",
            remote_url="https://registry-1.docker.io",
            aliases=("index.docker.io", "registry-1.docker.io"),
            username="hubuser",
            password="hubpass",
            freshness=300.0,
            ttl=72 * 3600.0,
        ),
    )
    assert proxy.default == "docker.io"
    assert proxy.local == ()
    assert proxy.negative_ttl == 30.0
    assert proxy.breaker == BreakerConfig(failures=5, reset=30.0)
    assert proxy.timeouts == TimeoutsConfig(connect=5.0, read=30.0)


def test_minimal_config_defaults() -> None:
    config = parse(MINIMAL)
    assert config.storage.driver == "inmemory"
    assert config.storage.root_directory is None
    assert not config.storage.delete_enabled
    assert not config.storage.read_only
    assert config.storage.upload_purging == UploadPurgingConfig(
        enabled=True, age=604800.0, interval=86400.0, dry_run=False
    )
    assert config.http.addr == ":5000"
    assert config.http.tls is None
    assert config.http.external_url == ""
    assert config.http.workers == 1
    assert config.log.level == "info"
    assert config.cache.ephemeral
    assert os.path.dirname(config.cache.directory) == tempfile.gettempdir()
    assert not os.path.exists(config.cache.directory)
    assert parse(MINIMAL).cache.directory != config.cache.directory
    assert parse("storage:\n  inmemory:\n").storage.driver == "inmemory"


def test_every_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    config = parse(
        f"""\
        version: 0.1
        log:
          level: DEBUG
          formatter: json
          fields: {{service: registry}}
          accesslog: {{disabled: true}}
        storage:
          filesystem: {{rootdirectory: /srv/registry, maxthreads: 50}}
          delete: {{enabled: true}}
          maintenance:
            uploadpurging: {{enabled: false, age: 2h, interval: 30m, dryrun: true}}
            readonly: {{enabled: true}}
          cache: {{blobdescriptor: redis}}
          redirect: {{disable: true}}
        http:
          addr: 127.0.0.1:6000
          host: https://mirror.example/
          secret: asecretforlocaldevelopment
          debug: {{addr: localhost:5001, prometheus: {{enabled: true, path: /metrics}}}}
          tls: {{certificate: {cert}, key: {key}}}
          headers:
            X-Content-Type-Options: [nosniff]
            X-Multi: [a, b]
            X-Single: one
          server: uvicorn
          workers: 3
        redis:
          addr: redis.internal:6380
          username: ruser
          password: rpass
          db: 2
          dialtimeout: 1s
          readtimeout: 500ms
          writetimeout: 2s
          pool: {{maxidle: 16, maxactive: 64, idletimeout: 300s}}
        health:
          storagedriver: {{enabled: true}}
        cache:
          directory: /var/cache/mirror
        proxy:
          remoteurl: https://index.docker.io/
          name: Docker.IO
          aliases: [hub.docker.com]
          username: u
          password: p
          ttl: 0
          freshness: 1m
          offline: true
          default: ghcr.io
          local: [team/, local/]
          negativettl: 1m
          breaker: {{failures: 3, reset: 1m}}
          timeouts: {{connect: 2s, read: 1m}}
          upstreams:
            - name: ghcr.io
              remoteurl: https://ghcr.io
              aliases: [GHCR.example]
              username: gu
              password: gp
              freshness: 10m
              ttl: 24h
              offline: false
            - name: quay.io
              remoteurl: http://127.0.0.1:5001/prefix/
        """
    )
    assert config.log.level == "debug"
    assert not config.log.access_log
    storage = config.storage
    assert (storage.driver, storage.root_directory) == ("filesystem", "/srv/registry")
    assert storage.delete_enabled
    assert storage.read_only
    assert storage.upload_purging == UploadPurgingConfig(
        enabled=False, age=7200.0, interval=1800.0, dry_run=True
    )
    http = config.http
    assert (http.addr, http.bind_host, http.bind_port) == ("127.0.0.1:6000", "127.0.0.1", 6000)
    assert http.external_url == "https://mirror.example"
    assert http.tls == TLSConfig(certificate=str(cert), key=str(key))
    assert http.headers == (
        ("X-Content-Type-Options", ("nosniff",)),
        ("X-Multi", ("a", "b")),
        ("X-Single", ("one",)),
    )
    assert http.response_headers["X-Multi"] == "a, b"
    assert (http.server, http.workers) == ("uvicorn", 3)
    redis = config.redis
    assert redis is not None
    assert (redis.host, redis.port, redis.db) == ("redis.internal", 6380, 2)
    assert (redis.username, redis.password) == ("ruser", "rpass")
    assert (redis.dial_timeout, redis.read_timeout, redis.write_timeout) == (1.0, 0.5, 2.0)
    assert config.cache.directory == "/var/cache/mirror"
    assert not config.cache.ephemeral
    proxy = config.proxy
    assert proxy is not None
    hub, ghcr, quay = proxy.upstreams
    assert hub == UpstreamConfig(
        name="docker.io",
        remote_url="https://index.docker.io",
        aliases=("hub.docker.com",),
        username="u",
        password="p",
        freshness=60.0,
        ttl=0.0,
        offline=True,
    )
    assert ghcr == UpstreamConfig(
        name="ghcr.io",
        remote_url="https://ghcr.io",
        aliases=("ghcr.example",),
        username="gu",
        password="gp",
        freshness=600.0,
        ttl=86400.0,
        offline=False,
    )
    # Entries take the proxy-level ttl, freshness and offline as their defaults.
    assert (quay.remote_url, quay.freshness, quay.ttl, quay.offline) == (
        "http://127.0.0.1:5001/prefix",
        60.0,
        0.0,
        True,
    )
    assert proxy.default == "ghcr.io"
    assert proxy.local == ("team/", "local/")
    assert proxy.negative_ttl == 60.0
    assert proxy.breaker == BreakerConfig(failures=3, reset=60.0)
    assert proxy.timeouts == TimeoutsConfig(connect=2.0, read=60.0)
    assert proxy.upstream("GHCR.EXAMPLE") is ghcr
    assert proxy.upstream("hub.docker.com") is hub
    assert proxy.upstream("nowhere.io") is None


def test_config_values_are_frozen() -> None:
    config = parse(MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.http.workers = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("addr", "host", "port"),
    [
        (":5000", "", 5000),
        ("0.0.0.0:80", "0.0.0.0", 80),
        ("localhost:5000", "localhost", 5000),
        ("[::1]:5000", "::1", 5000),
        ("[::]:65535", "::", 65535),
        ("mirror.example.com:443", "mirror.example.com", 443),
    ],
)
def test_http_addr_forms(addr: str, host: str, port: int) -> None:
    config = parse(f"{MINIMAL}http:\n  addr: '{addr}'\n")
    assert (config.http.bind_host, config.http.bind_port) == (host, port)


@pytest.mark.parametrize(
    "addr", ["x", "5000", ":0", ":70000", "::1:5000", "[::1]", "[zz]:5", "host:", "a b:5", ":5x"]
)
def test_http_addr_rejects(addr: str) -> None:
    message = error_of(f"{MINIMAL}http:\n  addr: '{addr}'\n")
    assert message == f"http.addr: expected host:port, got {addr!r}"


@pytest.mark.parametrize(
    ("remote", "name"),
    [
        ("https://registry-1.docker.io", "docker.io"),
        ("https://index.docker.io", "docker.io"),
        ("https://ghcr.io/", "ghcr.io"),
        ("http://127.0.0.1:5001", "127.0.0.1:5001"),
        ("https://[::1]:5000", "[::1]:5000"),
        ("https://Quay.IO", "quay.io"),
    ],
)
def test_proxy_name_derived_from_remoteurl(remote: str, name: str) -> None:
    config = parse(f"{MINIMAL}proxy:\n  remoteurl: '{remote}'\n")
    assert config.proxy is not None
    upstream = config.proxy.upstreams[0]
    assert upstream.name == name
    expected = ("index.docker.io", "registry-1.docker.io") if name == "docker.io" else ()
    assert upstream.aliases == expected
    assert config.proxy.default == name


def test_proxy_names_may_be_ip_addresses() -> None:
    config = parse(
        f"{MINIMAL}proxy:\n  remoteurl: http://127.0.0.1:5001\n"
        "  aliases: ['[::1]', '[::1]:5001', 'localhost:5001', 10.0.0.1]\n"
    )
    assert config.proxy is not None
    assert config.proxy.upstreams[0].aliases == (
        "[::1]",
        "[::1]:5001",
        "localhost:5001",
        "10.0.0.1",
    )


def test_proxy_without_remoteurl_defaults_to_first_upstream() -> None:
    config = parse(
        f"""\
        {MINIMAL}
        proxy:
          upstreams:
            - {{name: ghcr.io, remoteurl: "https://ghcr.io"}}
            - {{name: docker.io, remoteurl: "https://registry-1.docker.io"}}
        """
    )
    assert config.proxy is not None
    assert config.proxy.default == "ghcr.io"
    assert config.proxy.upstreams[1].aliases == ("index.docker.io", "registry-1.docker.io")


@pytest.mark.parametrize(("given", "resolved"), [("''", ""), ("INDEX.docker.io", "docker.io")])
def test_proxy_default(given: str, resolved: str) -> None:
    config = parse(
        f"{MINIMAL}proxy:\n  remoteurl: https://registry-1.docker.io\n  default: {given}\n"
    )
    assert config.proxy is not None
    assert config.proxy.default == resolved


def test_proxy_default_null_means_the_first_upstream() -> None:
    # A null value counts as absent everywhere; proxy.default used to be refused instead.
    config = parse(f"{MINIMAL}proxy:\n  remoteurl: https://ghcr.io\n  default: ~\n")
    assert config.proxy is not None
    assert config.proxy.default == "ghcr.io"


# --- errors ----------------------------------------------------------------------------

HUB = "proxy:\n  remoteurl: https://registry-1.docker.io\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "storage:\n  filesystem:\n    rootdir: /x\n",
            "storage.filesystem.rootdir: unknown key",
        ),
        (MINIMAL + "auth:\n  htpasswd: {realm: x}\n", "auth: unknown key"),
        (MINIMAL + "notifications: {}\n", "notifications: unknown key"),
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
        ("", "storage: missing: configure one of filesystem, inmemory"),
        ("storage: {}\n", "storage: no storage driver: configure one of filesystem, inmemory"),
        (
            "storage:\n  inmemory:\n  filesystem:\n",
            "storage: more than one storage driver: inmemory, filesystem",
        ),
        (
            "storage:\n  s3: {bucket: b}\n",
            "storage.s3: unsupported storage driver (supported: filesystem, inmemory)",
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


def test_yaml_syntax_error_is_one_line() -> None:
    message = error_of("storage:\n  inmemory: [\n")
    assert message.startswith("<config>: invalid YAML at line 3, column 1: ")
    assert error_of("storage: inmemory\x07\n").startswith("<config>: invalid YAML: ")
    assert error_of("- a\n- b\n") == (
        "<config>: expected a mapping of configuration keys at the top level"
    )


def test_load_config_reports_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as caught:
        load_config(str(missing), {})
    assert str(caught.value) == f"{missing}: cannot read config file: No such file or directory"
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"storage: \xff\n")
    with pytest.raises(ConfigError, match=r"binary\.yml: cannot read config file: .*utf-8"):
        load_config(str(binary), {})
    bad = tmp_path / "bad.yml"
    bad.write_text("storage: inmemory\nhttp:\n  addr: x\n")
    with pytest.raises(ConfigError, match=r"^http\.addr: expected host:port, got 'x'$"):
        load_config(str(bad), {})


def test_version_forms_and_log_level_alias() -> None:
    assert parse(MINIMAL + "version: '0.1'\n").version == "0.1"
    assert parse(MINIMAL + "version: 0.1\n").version == "0.1"
    assert parse(MINIMAL + "log:\n  level: warning\n").log.level == "warn"


# --- environment -----------------------------------------------------------------------

FILESYSTEM = """\
storage:
  filesystem:
    rootdirectory: /srv/registry
  delete:
    enabled: false
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
"""


def test_env_overrides_scalars() -> None:
    config = parse(
        FILESYSTEM,
        {
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/data",
            "REGISTRY_HTTP_ADDR": ":6000",
            "REGISTRY_LOG_LEVEL": "debug",
            "REGISTRY_STORAGE_DELETE_ENABLED": "true",
            "REGISTRY_HTTP_WORKERS": "4",
            "REGISTRY_LOG_ACCESSLOG_DISABLED": "yes",
            "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE": "2h",
            "REGISTRY_VERSION": "0.1",
            "HOME": "/root",
        },
    )
    assert config.storage.root_directory == "/data"
    assert config.http.bind_port == 6000
    assert config.log.level == "debug"
    assert config.storage.delete_enabled
    assert config.http.workers == 4
    assert not config.log.access_log
    assert config.storage.upload_purging.age == 7200.0


def test_env_string_values_are_taken_verbatim() -> None:
    config = parse(
        FILESYSTEM,
        {
            "REGISTRY_HTTP_ADDR": "[::1]:5000",
            "REGISTRY_PROXY_REMOTEURL": "https://registry-1.docker.io",
            "REGISTRY_PROXY_PASSWORD": "0123",
            "REGISTRY_PROXY_USERNAME": "true",
        },
    )
    assert (config.http.bind_host, config.http.bind_port) == ("::1", 5000)
    assert config.proxy is not None
    hub = config.proxy.upstreams[0]
    assert (hub.name, hub.username, hub.password) == ("docker.io", "true", "0123")


def test_env_creates_sections_and_sets_lists() -> None:
    config = parse(
        FILESYSTEM,
        {
            "REGISTRY_REDIS_ADDR": "127.0.0.1:6379",
            "REGISTRY_PROXY_UPSTREAMS": '[{name: ghcr.io, remoteurl: "https://ghcr.io"}]',
            "REGISTRY_PROXY_LOCAL": "[team/]",
            "REGISTRY_PROXY_DEFAULT": "",
            "REGISTRY_PROXY_BREAKER": "{failures: 2}",
        },
    )
    assert config.redis is not None
    assert (config.redis.host, config.redis.port) == ("127.0.0.1", 6379)
    proxy = config.proxy
    assert proxy is not None
    assert [u.name for u in proxy.upstreams] == ["ghcr.io"]
    assert proxy.local == ("team/",)
    assert proxy.default == ""
    assert proxy.breaker.failures == 2


def test_env_headers_match_case_insensitively() -> None:
    config = parse(
        FILESYSTEM,
        {
            "REGISTRY_HTTP_HEADERS_X-CONTENT-TYPE-OPTIONS": "[other]",
            "REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS": "DENY",
        },
    )
    assert config.http.headers == (
        ("X-Content-Type-Options", ("other",)),
        ("x-frame-options", ("DENY",)),
    )


@pytest.mark.parametrize(
    ("env", "driver", "root"),
    [
        ({"REGISTRY_STORAGE_INMEMORY": ""}, "inmemory", None),
        ({"REGISTRY_STORAGE": "inmemory"}, "inmemory", None),
        ({"REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/x"}, "filesystem", "/x"),
    ],
)
def test_env_switches_storage_driver(env: dict[str, str], driver: str, root: str | None) -> None:
    start = (
        FILESYSTEM if driver == "inmemory" else "storage:\n  inmemory:\n  delete: {enabled: true}\n"
    )
    config = parse(start, {**env, "REGISTRY_STORAGE_DELETE_ENABLED": "true"})
    assert (config.storage.driver, config.storage.root_directory) == (driver, root)
    assert config.storage.delete_enabled


def test_env_whole_storage_mapping_replaces_the_section() -> None:
    config = parse(FILESYSTEM, {"REGISTRY_STORAGE": "{filesystem: {rootdirectory: /y}}"})
    assert config.storage.root_directory == "/y"


def test_env_reaches_into_a_yaml_value_set_by_env() -> None:
    config = parse(
        MINIMAL,
        {"REGISTRY_HTTP": "{addr: ':7000'}", "REGISTRY_HTTP_WORKERS": "2"},
    )
    assert (config.http.bind_port, config.http.workers) == (7000, 2)


def test_env_ignores_foreign_registry_variables() -> None:
    config = parse(
        MINIMAL,
        {
            "REGISTRY_CONFIGURATION_PATH": "/etc/docker/registry/config.yml",
            "REGISTRY_SERVICE_HOST": "10.0.0.1",
            "REGISTRY_SERVICE_PORT": "5000",
            "REGISTRY_PORT": "tcp://10.0.0.1:5000",
            "REGISTRY_PORT_5000_TCP_ADDR": "10.0.0.1",
        },
    )
    assert config.storage.driver == "inmemory"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REGISTRY_HTTP_FOO": "1"}, "REGISTRY_HTTP_FOO: no configuration key http.foo"),
        ({"REGISTRY_NOPE": "1"}, "REGISTRY_NOPE: no configuration key nope"),
        (
            {"REGISTRY_STORAGE_FILESYSTEM_ROOTDIR": "/x"},
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIR: no configuration key storage.filesystem.rootdir",
        ),
        (
            {"REGISTRY_PROXY_BREAKER": "{foo: 1}", "REGISTRY_PROXY_REMOTEURL": "https://a.io"},
            "REGISTRY_PROXY_BREAKER: no configuration key proxy.breaker.foo",
        ),
        ({"REGISTRY_FOO__BAR": "1"}, "REGISTRY_FOO__BAR: does not name a configuration key"),
        ({"REGISTRY_": "1"}, "REGISTRY_: does not name a configuration key"),
        (
            {"REGISTRY_HTTP_ADDR_PORT": "1"},
            "REGISTRY_HTTP_ADDR_PORT: http.addr is not a section of keys",
        ),
        (
            {"REGISTRY_HTTP_WORKERS": "many"},
            "http.workers: expected an integer, got 'many' (from REGISTRY_HTTP_WORKERS)",
        ),
        (
            {"REGISTRY_HTTP_ADDR": "x"},
            "http.addr: expected host:port, got 'x' (from REGISTRY_HTTP_ADDR)",
        ),
        (
            {"REGISTRY_PROXY_UPSTREAMS": "[", "REGISTRY_PROXY_REMOTEURL": "https://a.io"},
            "proxy.upstreams: not a valid YAML value: '[' (from REGISTRY_PROXY_UPSTREAMS)",
        ),
        (
            {"REGISTRY_STORAGE_INMEMORY": "", "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/x"},
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY, REGISTRY_STORAGE_INMEMORY: "
            "more than one storage driver selected",
        ),
        (
            {"REGISTRY_STORAGE_S3_BUCKET": "b"},
            "storage.s3: unsupported storage driver (supported: filesystem, inmemory) "
            "(from REGISTRY_STORAGE_S3_BUCKET)",
        ),
        (
            {"REGISTRY_PROXY_REMOTEURL": "https://a.io", "REGISTRY_PROXY_DEFAULT": "b.io"},
            "proxy.default: 'b.io' is not the name or alias of a configured upstream "
            "(from REGISTRY_PROXY_DEFAULT)",
        ),
    ],
)
def test_env_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    assert error_of(FILESYSTEM, env) == message


# --- redaction and helpers -------------------------------------------------------------


def test_redacted_hides_passwords_and_reparses_to_the_same_config(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("cert")
    text = f"""\
        storage:
          filesystem: {{rootdirectory: /srv}}
        http:
          addr: "[::1]:5000"
          host: https://mirror.example
          tls: {{certificate: {cert}, key: {cert}}}
          headers: {{X-A: [a, b]}}
        redis:
          addr: 127.0.0.1:6379
          password: redis-secret
          dialtimeout: 1s
        proxy:
          remoteurl: https://registry-1.docker.io
          password: hub-secret
          default: ""
          upstreams:
            - {{name: ghcr.io, remoteurl: "https://ghcr.io", password: ghcr-secret}}
        """
    config = parse(text)
    redacted = config.redacted()
    dumped = yaml.safe_dump(redacted, sort_keys=False)
    for secret in ("redis-secret", "hub-secret", "ghcr-secret"):
        assert secret not in dumped
    assert redacted["redis"]["password"] == "<redacted>"
    assert redacted["proxy"]["upstreams"][0]["password"] == "<redacted>"
    assert redacted["proxy"]["upstreams"][1]["password"] == "<redacted>"
    again = parse_config(dumped, {})
    assert again.proxy is not None and config.proxy is not None
    assert again.proxy.upstreams[0].password == "<redacted>"
    unredacted = dataclasses.replace(
        again,
        redis=dataclasses.replace(again.redis, password="redis-secret") if again.redis else None,
        proxy=dataclasses.replace(
            again.proxy,
            upstreams=tuple(
                dataclasses.replace(upstream, password=original.password)
                for upstream, original in zip(
                    again.proxy.upstreams, config.proxy.upstreams, strict=True
                )
            ),
        ),
    )
    assert unredacted == config


def test_redacted_round_trips_the_default_and_inmemory_configs() -> None:
    default = load_config(None, {})
    assert parse_config(yaml.safe_dump(default.redacted()), {}) == default
    inmemory = parse(MINIMAL + "log: {accesslog: {disabled: true}}\n")
    again = parse_config(yaml.safe_dump(inmemory.redacted()), {})
    assert again == dataclasses.replace(
        inmemory, cache=dataclasses.replace(inmemory.cache, ephemeral=False)
    )
    assert "redis" not in inmemory.redacted()
    assert "proxy" not in inmemory.redacted()


def test_with_server() -> None:
    config = parse(MINIMAL)
    assert with_server(config, "uvicorn").http.server == "uvicorn"
    assert with_server(config, "uvicorn").http.addr == config.http.addr
    with pytest.raises(
        ConfigError, match=r"^http\.server: expected one of granian, uvicorn, got 'x'$"
    ):
        with_server(config, "x")
