"""The operability keys: notifications, health, the debug listener, drain, log format."""

from __future__ import annotations

import pytest

from tests.support.configs import MINIMAL, error_of, parse


def test_notification_endpoints_with_registry2_keys_and_defaults() -> None:
    config = parse(
        MINIMAL
        + """\
notifications:
  events: {includereferences: true}
  endpoints:
    - name: alistener
      url: https://hooks.example/events?token=abc
      headers: {Authorization: [Bearer x]}
      timeout: 500ms
      threshold: 5
      backoff: 2s
      ignoredmediatypes: [application/octet-stream]
      ignore:
        mediatypes: [application/vnd.oci.image.index.v1+json]
        actions: [pull]
    - name: second
      url: http://127.0.0.1:9/
      disabled: true
      timeout: 0s
      threshold: -1
      backoff: 0s
      queuelimit: 10
      maxbatch: 5
"""
    )
    notifications = config.notifications
    assert notifications.events.include_references
    first, second = notifications.endpoints
    assert first.url == "https://hooks.example/events?token=abc"
    assert first.headers == (("Authorization", ("Bearer x",)),)
    assert (first.timeout, first.threshold, first.backoff) == (0.5, 5, 2.0)
    assert first.all_ignored_media_types == {
        "application/octet-stream",
        "application/vnd.oci.image.index.v1+json",
    }
    assert first.ignore.actions == ("pull",)
    assert (first.queue_limit, first.max_batch, first.disabled) == (100_000, 1, False)
    # Zero or less means the reference's default.
    assert (second.timeout, second.threshold, second.backoff) == (1.0, 10, 1.0)
    assert (second.queue_limit, second.max_batch, second.disabled) == (10, 5, True)
    assert parse(MINIMAL).notifications.endpoints == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "notifications:\n  endpoints:\n    - {name: a, url: 'ftp://x/'}\n",
            "notifications.endpoints[0].url: expected an absolute http(s) URL, got 'ftp://x/'",
        ),
        (
            "notifications:\n  endpoints:\n    - {url: 'http://x/'}\n",
            "notifications.endpoints[0].name: required",
        ),
        (
            "notifications:\n  endpoints:\n    - {name: a, url: 'http://x/', "
            "ignore: {actions: [pull, fetch]}}\n",
            "notifications.endpoints[0].ignore.actions: unknown action 'fetch' "
            "(expected pull, push, mount, delete)",
        ),
        (
            "notifications:\n  endpoints:\n    - {name: a, url: 'http://x/'}\n"
            "    - {name: a, url: 'http://y/'}\n",
            "notifications.endpoints[1].name: endpoint name 'a' is used twice",
        ),
        (
            "notifications:\n  endpoints:\n    - {name: a, url: 'http://x/', queuelimit: 0}\n",
            "notifications.endpoints[0].queuelimit: must be at least 1, got 0",
        ),
        (
            "health:\n  http:\n    - {uri: 'not a url'}\n",
            "health.http[0].uri: expected an absolute http(s) URL, got 'not a url'",
        ),
        ("health:\n  tcp:\n    - {addr: nowhere}\n", "health.tcp[0].addr: "),
        ("health:\n  file:\n    - {interval: 1s}\n", "health.file[0].file: required"),
        ("http:\n  debug: {addr: 'localhost'}\n", "http.debug.addr: expected [host]:port"),
        (
            "http:\n  debug: {prometheus: {path: metrics}}\n",
            "http.debug.prometheus.path: expected a path like /metrics, got 'metrics'",
        ),
        ("log:\n  formatter: xml\n", "log.formatter: expected one of text, json, logstash"),
        ("log:\n  fields: {a: [1]}\n", "log.fields.a: expected a string, number or boolean"),
    ],
)
def test_bad_values_are_refused_with_their_key(text: str, message: str) -> None:
    assert error_of(MINIMAL + text).startswith(message)


def test_health_checks_with_registry2_keys() -> None:
    config = parse(
        MINIMAL
        + """\
health:
  storagedriver: {enabled: false, interval: 5s, threshold: 2}
  file:
    - {file: /tmp/down, interval: 1s}
  http:
    - uri: http://127.0.0.1:9/ping
      headers: {X-Check: [on-call]}
      statuscode: 204
      timeout: 2s
      interval: 3s
      threshold: 4
  tcp:
    - {addr: '127.0.0.1:6379', timeout: 1s, interval: 5s, threshold: 2}
"""
    )
    health = config.health
    assert not health.storagedriver.enabled
    assert (health.storagedriver.interval, health.storagedriver.threshold) == (5.0, 2)
    assert health.file[0].file == "/tmp/down"
    check = health.http[0]
    assert (check.statuscode, check.timeout, check.interval, check.threshold) == (204, 2, 3, 4)
    assert check.headers == (("X-Check", ("on-call",)),)
    assert health.tcp[0].addr == "127.0.0.1:6379"
    # Readiness needs the storage check: on by default.
    defaults = parse(MINIMAL).health.storagedriver
    assert (defaults.enabled, defaults.interval, defaults.threshold) == (True, 10.0, 3)


def test_debug_listener_drain_and_log_format() -> None:
    config = parse(
        MINIMAL
        + """\
http:
  debug: {addr: 'localhost:5001', prometheus: {enabled: true, path: /prom}}
  draintimeout: 10s
log:
  formatter: JSON
  fields: {service: registry, replica: 2}
"""
    )
    assert config.http.debug.addr == "localhost:5001"
    assert config.http.debug.prometheus.enabled
    assert config.http.debug.prometheus.path == "/prom"
    assert config.http.drain_timeout == 10.0
    assert config.log.formatter == "json"
    assert config.log.fields == (("service", "registry"), ("replica", 2))
    defaults = parse(MINIMAL)
    assert defaults.http.debug.addr == ""
    assert defaults.http.drain_timeout == 25.0
    assert defaults.log.formatter == "text"


def test_environment_sets_them_too() -> None:
    config = parse(
        MINIMAL,
        {
            "REGISTRY_LOG_FORMATTER": "logstash",
            "REGISTRY_LOG_FIELDS_SERVICE": "registry",
            "REGISTRY_HTTP_DEBUG_ADDR": "127.0.0.1:5001",
            "REGISTRY_HTTP_DRAINTIMEOUT": "3s",
            "REGISTRY_HEALTH_STORAGEDRIVER_ENABLED": "false",
        },
    )
    assert config.log.formatter == "logstash"
    assert config.log.fields == (("service", "registry"),)
    assert config.http.debug.addr == "127.0.0.1:5001"
    assert config.http.drain_timeout == 3.0
    assert not config.health.storagedriver.enabled
