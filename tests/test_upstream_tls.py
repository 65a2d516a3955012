"""Upstream trust per upstream: a private CA, a client certificate, the `insecure` switch.

An upstream on 127.0.0.1 over TLS with a certificate of a private CA (and, in one case,
requiring a client certificate); a mirror built by `create_app` pulls through it only
when its `tls` block says how to trust it.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mirror.config import ConfigError, parse_config
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import create_app, standalone_app
from mirror.registryhttp.tls import client_tls
from mirror.store.drivers import create_driver
from tests.support.lifespan import lifespan
from tests.support.oci import push_image
from tests.support.threadserver import serving_in_thread

pytestmark = pytest.mark.anyio
_DAY = datetime.timedelta(days=1)


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _issue(
    subject: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, signer = (ca[0].subject, ca[1]) if ca else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + _DAY)
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if server:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signer, hashes.SHA256()), key


class PKI:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        ca = _issue("private CA", None)
        server = _issue("upstream", ca, server=True)
        client = _issue("mirror", ca)
        self.ca = self._pem(root / "ca.pem", ca[0])
        self.server_cert = self._pem(root / "server.pem", server[0])
        self.server_key = _write_key(root / "server-key.pem", server[1])
        self.client_cert = self._pem(root / "client.pem", client[0])
        self.client_key = _write_key(root / "client-key.pem", client[1])

    @staticmethod
    def _pem(path: Path, cert: x509.Certificate) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def server_options(self, *, require_client: bool) -> dict[str, Any]:
        options: dict[str, Any] = {
            "ssl_certfile": str(self.server_cert),
            "ssl_keyfile": str(self.server_key),
        }
        if require_client:
            options |= {"ssl_ca_certs": str(self.ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
        return options


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module", params=[False, True], ids=["server-auth", "mutual-tls"])
def upstream(request: pytest.FixtureRequest, pki: PKI) -> Iterator[tuple[str, bool]]:
    app = standalone_app(create_driver("inmemory", {}))
    with serving_in_thread(app, **pki.server_options(require_client=request.param)) as url:
        yield url, request.param


async def _seed(url: str, pki: PKI) -> None:
    context = client_tls(ca=str(pki.ca), certificate=str(pki.client_cert), key=str(pki.client_key))
    async with httpx.AsyncClient(base_url=url, verify=context) as client:
        await push_image(client, "library/app", "v1", layers=1)


async def _pull_through(tmp_path: Path, url: str, tls: dict[str, Any]) -> int:
    config = {
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "root")}},
        "proxy": {"remoteurl": url, "name": "internal.test", "tls": tls},
    }
    app = create_app(parse_config(json.dumps(config), {}), MetricsRegistry())
    async with (
        lifespan(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as client,
    ):
        response = await client.get("/v2/library/app/manifests/v1")
        return response.status_code


async def test_each_way_of_trusting_the_upstream(
    tmp_path: Path, pki: PKI, upstream: tuple[str, bool]
) -> None:
    url, mutual = upstream
    await _seed(url, pki)
    client = {"certificate": str(pki.client_cert), "key": str(pki.client_key)}
    cases: list[tuple[dict[str, Any], bool]] = [
        ({}, False),  # the public CAs do not know the private one
        ({"ca": str(pki.ca)}, not mutual),
        ({"insecure": True}, not mutual),
        ({"ca": str(pki.ca), **client}, True),
        ({"insecure": True, **client}, True),
    ]
    for index, (tls, works) in enumerate(cases):
        status = await _pull_through(tmp_path / str(index), url, tls)
        assert (status == 200) is works, (tls, status)
        if not works:
            assert status in (502, 503), (tls, status)


def test_the_tls_block_is_checked(tmp_path: Path, pki: PKI) -> None:
    base = "storage: inmemory\nproxy: {remoteurl: 'https://internal.test', "
    with pytest.raises(ConfigError, match=r"proxy\.tls\.key: missing"):
        parse_config(base + f"tls: {{certificate: {pki.client_cert}}}}}\n", {})
    with pytest.raises(ConfigError, match=r"proxy\.tls\.ca: file not found: /nope"):
        parse_config(base + "tls: {ca: /nope}}\n", {})
    env = {"REGISTRY_PROXY_TLS_INSECURE": "true"}
    config = parse_config(base + "}\n", env)
    assert config.proxy is not None and config.proxy.upstreams[0].tls.insecure
    with pytest.raises(ValueError, match="client certificate"):
        client_tls(certificate=str(pki.ca), key=str(pki.client_key))
