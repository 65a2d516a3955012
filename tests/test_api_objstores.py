"""The blob, upload and manifest API tests, run on the object stores (moto's S3, Azurite):
the same tests as for the local drivers, with this module's `make_client`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mirror.proxy.app import standalone_app
from mirror.store.drivers import create_driver
from tests.conftest import AppFactory
from tests.support.emulators import AzureEmulator, S3Emulator, unique_root
from tests.test_api_blobs import *  # noqa: F403 (the tests, collected here again)
from tests.test_api_manifests import *  # noqa: F403


@pytest.fixture(params=["s3", "azure"])
def driver_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_client(
    driver_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AppFactory]:
    if driver_name == "s3":
        s3: S3Emulator = request.getfixturevalue("s3_emulator")
        params = s3.params(s3.new_bucket(), rootdirectory=unique_root())
    else:
        azure: AzureEmulator = request.getfixturevalue("azure_emulator")
        params = azure.params(rootdirectory=unique_root())
    driver = create_driver(driver_name, params)
    clients: list[httpx.AsyncClient] = []

    def make(**options: object) -> httpx.AsyncClient:
        app = standalone_app(driver, **options)  # type: ignore[arg-type]
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry.test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
