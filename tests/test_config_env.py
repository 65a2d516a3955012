"""registry:2 environment overrides: REGISTRY_<PATH> variables, typed by their key."""

from __future__ import annotations

import pytest

from tests.support.configs import FILESYSTEM, MINIMAL, error_of, parse


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


def test_env_configures_the_object_stores() -> None:
    from mirror.store.drivers.objparams import AzureParameters, S3Parameters

    s3 = parse(
        FILESYSTEM,
        {
            "REGISTRY_STORAGE_S3_REGION": "eu-west-1",
            "REGISTRY_STORAGE_S3_BUCKET": "0123",  # text stays text
            "REGISTRY_STORAGE_S3_SECURE": "false",
            "REGISTRY_STORAGE_S3_CHUNKSIZE": "10485760",
            "REGISTRY_STORAGE_S3_SECRETKEY": "s3cr3t",
            "REGISTRY_STORAGE_S3_ACCESSKEY": "AK",
        },
    ).storage
    assert s3.driver == "s3" and isinstance(s3.parameters, S3Parameters)
    settings = s3.parameters.settings
    assert (settings.bucket, settings.region, settings.allow_http) == ("0123", "eu-west-1", True)
    assert (settings.secret_key, settings.part_size) == ("s3cr3t", 10 * 1024 * 1024)
    azure = parse(
        FILESYSTEM,
        {
            "REGISTRY_STORAGE_AZURE_ACCOUNTNAME": "acct",
            "REGISTRY_STORAGE_AZURE_CONTAINER": "c",
            "REGISTRY_STORAGE_AZURE_ACCOUNTKEY": "k",
            # Keys with an underscore are matched whole.
            "REGISTRY_STORAGE_AZURE_MAX_RETRIES": "2",
            "REGISTRY_STORAGE_AZURE_RETRY_DELAY": "250ms",
        },
    ).storage
    assert isinstance(azure.parameters, AzureParameters)
    found = azure.parameters.settings
    assert (found.max_retries, found.retry_delay, found.credentials) == (2, 0.25, "shared_key")
    assert found.service_url == "https://acct.blob.core.windows.net"


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
            "storage.s3.region: is required (a non-empty string) (from REGISTRY_STORAGE_S3_BUCKET)",
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
