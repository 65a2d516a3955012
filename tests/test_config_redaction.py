"""check-config's dump: the effective configuration in file form, secrets hidden."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from mirror.config import (
    ConfigError,
    load_config,
    parse_config,
    with_server,
)
from mirror.settings import TypeName, fields_of, is_settings, key_of
from tests.support.configs import MINIMAL, parse


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


def secret_values(value: object, path: str = "") -> list[tuple[str, str]]:
    """(key path, value) of every key declared Secret, found through the declarations."""
    found: list[tuple[str, str]] = []
    if isinstance(value, tuple):
        for index, item in enumerate(value):
            found += secret_values(item, f"{path}[{index}]")
        return found
    if not is_settings(type(value)):
        return found
    for name, info in fields_of(type(value)).items():
        inner = getattr(value, name)
        key = f"{path}.{key_of(name, info)}".lstrip(".")
        if any(isinstance(item, TypeName) and item.name == "secret" for item in info.metadata):
            found.append((key, inner))
        else:
            found += secret_values(inner, key)
    return found


def test_every_declared_secret_is_redacted() -> None:
    config = parse(
        f"""\
        {MINIMAL}
        redis: {{password: redis-pw}}
        cluster: {{advertise: "http://10.0.0.5:5000", secret: cluster-secret-of-16}}
        proxy:
          remoteurl: https://registry-1.docker.io
          password: hub-pw
          upstreams:
            - {{name: ghcr.io, remoteurl: "https://ghcr.io", password: ghcr-pw}}
            - {{name: quay.io, remoteurl: "https://quay.io"}}
        """
    )
    secrets = secret_values(config)
    assert dict(secrets) == {
        "redis.password": "redis-pw",
        "cluster.secret": "cluster-secret-of-16",
        "proxy.upstreams[0].password": "hub-pw",
        "proxy.upstreams[1].password": "ghcr-pw",
        "proxy.upstreams[2].password": "",
    }
    dumped = yaml.safe_dump(config.redacted())
    shown = repr(config)
    for _, secret in secrets:
        if secret:
            assert secret not in dumped
            assert secret not in shown
    assert config.redacted()["proxy"]["upstreams"][2]["password"] == ""


def test_accepted_and_ignored_keys_are_not_dumped() -> None:
    config = parse(
        """\
        storage:
          filesystem: {rootdirectory: /srv, maxthreads: 4}
          cache: {blobdescriptor: redis}
          redirect: {disable: true}
        http: {secret: s}
        redis: {readtimeout: 1s, writetimeout: 1s, pool: {maxidle: 1}}
        """
    )
    dumped = config.redacted()
    for section in ("notifications", "health"):
        dumped.pop(section)
    for key in ("debug", "draintimeout"):
        dumped["http"].pop(key)
    assert dumped == {
        "version": "0.1",
        "log": {"level": "info", "accesslog": {"disabled": False}, "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": "/srv"},
            "delete": {"enabled": False},
            "maintenance": {
                "uploadpurging": {
                    "enabled": True,
                    "age": "168h",
                    "interval": "24h",
                    "dryrun": False,
                },
                "readonly": {"enabled": False},
                "gc": {"enabled": False, "interval": "24h", "delay": "1h", "deleteuntagged": False},
            },
            "redirect": {"disable": True},  # honoured (object stores' redirects)
        },
        "http": {"addr": ":5000", "server": "granian", "workers": 1, "ui": {"enabled": True}},
        "redis": {
            "addr": "localhost:6379",
            "username": "",
            "password": "",
            "db": 0,
            "prefix": "mirror:",
        },
        "cache": {"directory": "/srv/_mirror", "maxsize": "0"},
        "cluster": {"advertise": "", "secret": ""},
    }


def test_redacted_hides_the_object_stores_keys() -> None:
    s3 = parse(
        "storage:\n  s3: {region: r, bucket: b, accesskey: AKIDEXAMPLE, secretkey: s3-secret}\n"
    )
    dumped = s3.redacted()["storage"]["s3"]
    assert (dumped["accesskey"], dumped["secretkey"], dumped["bucket"]) == (
        "<redacted>",
        "<redacted>",
        "b",
    )
    # registry:2's multipart copy keys are accepted and left out of the dump.
    ignored = parse("storage:\n  s3: {region: r, bucket: b, multipartcopychunksize: 33554432}\n")
    assert "multipartcopychunksize" not in ignored.redacted()["storage"]["s3"]
    azure = parse(
        "storage:\n  azure:\n    accountname: a\n    container: c\n"
        "    credentials: {type: client_secret, clientid: i, tenantid: t, secret: az-secret}\n"
    )
    text = yaml.safe_dump(azure.redacted())
    assert "az-secret" not in text
    assert azure.redacted()["storage"]["azure"]["credentials"]["secret"] == "<redacted>"
    assert parse_config(text, {}).storage.driver == "azure"
