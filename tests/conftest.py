"""Shared fixtures: the anyio backend, and standalone registry apps on each driver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from mirror.proxy.app import standalone_app
from mirror.store.drivers import create_driver
from tests.support.emulators import azure_emulator, s3_emulator  # noqa: F401 (fixtures)

AppFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture(params=["inmemory", "filesystem"])
def driver_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_client(driver_name: str, tmp_path: Path) -> AsyncIterator[AppFactory]:
    clients: list[httpx.AsyncClient] = []
    driver = create_driver(
        driver_name,
        {"rootdirectory": str(tmp_path / "root")} if driver_name == "filesystem" else {},
    )

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


@pytest.fixture
async def client(make_client: AppFactory) -> httpx.AsyncClient:
    return make_client(delete_enabled=True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
