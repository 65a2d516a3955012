"""Object-store emulators on loopback, started once per test session.

S3 is moto's server (``moto_server``, from the ``moto[server]`` package of the test extra);
Azure Blob is Azurite (``azurite-blob``, from npm, installed into ``.ci/node`` of the
checkout; see .ci/run). A missing emulator fails the test under CI and skips it elsewhere.
Both speak plain HTTP on loopback; the machine's CA-bundle variables (AWS_CA_BUNDLE, ...)
concern neither them nor the drivers (obstore reads none of them for plain HTTP).

Tests get a fresh bucket (S3) or root prefix in a shared container (Azure) each, so one
emulator serves the whole session.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.binaries import unavailable
from tests.support.processes import free_port, running

CHECKOUT = Path(__file__).resolve().parents[2]
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
S3_KEY, S3_SECRET = "testing", "testing"


@dataclass(frozen=True)
class S3Emulator:
    endpoint: str  # http://127.0.0.1:<port>

    def new_bucket(self) -> str:
        """Create a bucket with a fresh name (moto does not check credentials)."""
        name = f"b-{uuid.uuid4().hex[:20]}"
        response = httpx.put(f"{self.endpoint}/{name}", trust_env=False, timeout=10)
        response.raise_for_status()
        return name

    def params(self, bucket: str, **extra: object) -> dict[str, object]:
        """registry:2-style `s3` parameters for `bucket` on this emulator."""
        return {
            "region": "us-east-1",
            "bucket": bucket,
            "regionendpoint": self.endpoint,
            "forcepathstyle": True,
            "accesskey": S3_KEY,
            "secretkey": S3_SECRET,
            **extra,
        }


@dataclass(frozen=True)
class AzureEmulator:
    service_url: str  # http://127.0.0.1:<port>/devstoreaccount1
    container: str  # created at start, shared by the session's tests

    def params(self, **extra: object) -> dict[str, object]:
        """registry:2-style `azure` parameters for the shared container."""
        return {
            "accountname": AZURITE_ACCOUNT,
            "accountkey": AZURITE_KEY,
            "container": self.container,
            "serviceurl": self.service_url,
            "credentials": {"type": "shared_key"},
            **extra,
        }

    def create_container(self, name: str) -> None:
        from azure.storage.blob import BlobServiceClient

        credential = {"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
        with BlobServiceClient(self.service_url, credential=credential) as service:
            service.create_container(name)


def unique_root() -> str:
    """A root directory no other test uses."""
    return f"t-{uuid.uuid4().hex[:16]}"


def _moto_server() -> str:
    beside = Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        unavailable("moto_server not found; install the test extra: pip install -e '.[test]'")
    return found


def _azurite_blob() -> str:
    local = CHECKOUT / ".ci" / "node" / "node_modules" / ".bin" / "azurite-blob"
    found = str(local) if local.exists() else shutil.which("azurite-blob")
    if found is None or shutil.which("node") is None:
        unavailable("azurite-blob not found; install it: npm install --prefix .ci/node azurite@3")
    return found


@pytest.fixture(scope="session")
def s3_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Emulator]:
    binary = _moto_server()
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    endpoint = f"http://127.0.0.1:{port}"
    with running(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        log_path=log,
        ready_url=f"{endpoint}/",
        start_timeout=30,
    ):
        yield S3Emulator(endpoint)


@pytest.fixture(scope="session")
def azure_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureEmulator]:
    binary = _azurite_blob()
    port = free_port()
    log = tmp_path_factory.mktemp("azurite") / "azurite.log"
    command = [
        binary,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
    ]
    with running(
        command,
        log_path=log,
        ready_url=f"http://127.0.0.1:{port}/",
        start_timeout=30,
    ):
        emulator = AzureEmulator(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}", "registry")
        emulator.create_container(emulator.container)
        yield emulator
