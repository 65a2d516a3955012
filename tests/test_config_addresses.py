"""Listen addresses, upstream names and aliases, and which upstream serves plain names."""

from __future__ import annotations

import pytest

from tests.support.configs import MINIMAL, error_of, parse


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
