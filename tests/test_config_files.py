"""Configuration files: the embedded default, registry:2 samples, every key, file errors."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import pytest

from mirror.config import (
    DEFAULT_CONFIG_YAML,
    BreakerConfig,
    ConfigError,
    TimeoutsConfig,
    TLSConfig,
    UploadPurgingConfig,
    UpstreamConfig,
    load_config,
)
from mirror.store.drivers.filesystem_params import FilesystemParameters
from mirror.store.drivers.inmemory_params import InMemoryParameters
from tests.support.configs import MINIMAL, REPO, error_of, parse


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


def test_storage_parameters_are_the_drivers_declarations() -> None:
    config = parse("storage:\n  filesystem: {rootdirectory: /srv, maxthreads: 4}\n")
    assert config.storage.parameters == FilesystemParameters(rootdirectory="/srv", maxthreads=4)
    assert config.storage.root_directory == "/srv"
    assert parse(MINIMAL).storage.parameters == InMemoryParameters()
    assert parse(MINIMAL).storage.root_directory is None
