"""The driver suites against the azure driver on Azurite, plus its own checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import obstore
import pytest
from obstore.store import AzureStore

from mirror.store.driver import StorageDriver, StorageDriverError
from mirror.store.drivers import create_driver
from mirror.store.drivers.azure import AzureDriver
from mirror.store.drivers.azureparams import azure_settings
from mirror.store.drivers.base import CheckedDriver
from tests.driver_suite import DriverSuite, blob
from tests.driver_suite_traits import NoAppendSuite, PrefixSuite
from tests.objstore_suite import PART, ObjectStoreSuite, PendingUploads, RawKeys
from tests.support.emulators import AZURITE_ACCOUNT, AZURITE_KEY, AzureEmulator, unique_root

pytestmark = pytest.mark.anyio


@pytest.fixture
def root() -> str:
    return unique_root()


def small_parts(azure_emulator: AzureEmulator, root: str) -> StorageDriver:
    """The driver with `PART`-sized blocks (registry:2 has no parameter for them)."""
    settings = replace(azure_settings(azure_emulator.params(rootdirectory=root)), part_size=PART)
    return CheckedDriver(AzureDriver(settings))


def raw_store(azure_emulator: AzureEmulator) -> AzureStore:
    return AzureStore(
        azure_emulator.container,
        config={
            "account_name": AZURITE_ACCOUNT,
            "account_key": AZURITE_KEY,
            "endpoint": azure_emulator.service_url,
        },
        client_options={"allow_http": True},
    )


class TestAzureDriver(DriverSuite, PrefixSuite, NoAppendSuite, ObjectStoreSuite):
    @pytest.fixture
    def driver(self, azure_emulator: AzureEmulator, root: str) -> StorageDriver:
        return small_parts(azure_emulator, root)

    @pytest.fixture
    def raw_keys(self, azure_emulator: AzureEmulator, root: str) -> RawKeys:
        store = raw_store(azure_emulator)

        async def keys() -> list[str]:
            listing = await obstore.list(store, root).collect_async()
            return sorted(meta["path"] for meta in listing)

        return keys

    @pytest.fixture
    def pending_uploads(self) -> PendingUploads:
        async def pending() -> list[str] | None:
            return None  # uncommitted blocks are not listed; Azure drops them after a week

        return pending


async def test_built_by_name(azure_emulator: AzureEmulator, root: str) -> None:
    driver = create_driver("azure", azure_emulator.params(rootdirectory=f"/{root}/"))
    await driver.put_content("/docker/registry/v2/x", b"1")
    listing = await obstore.list(raw_store(azure_emulator), root).collect_async()
    assert [meta["path"] for meta in listing] == [f"{root}/docker/registry/v2/x"]
    url = await driver.redirect_url("/docker/registry/v2/x", "GET")  # type: ignore[attr-defined]
    query = parse_qs(urlsplit(url).query)
    start, expiry = (datetime.fromisoformat(query[key][0]) for key in ("st", "se"))
    assert expiry - start == timedelta(minutes=20)


async def test_two_multi_block_writers_of_one_blob_never_mix(
    azure_emulator: AzureEmulator, root: str
) -> None:
    # Committing a blob drops the blocks others staged for it so far: the later writer
    # either commits its own blocks (staged after that) or fails; never a mix of both.
    driver = small_parts(azure_emulator, root)
    first, second = blob(2 * PART + 1, 1), blob(2 * PART + 2, 2)
    a = await driver.writer("/same")
    b = await driver.writer("/same")
    await a.write(first)
    await b.write(second)
    await a.commit()
    assert await driver.get_content("/same") == first
    try:
        await b.commit()
    except StorageDriverError:
        await b.cancel()
        assert await driver.get_content("/same") == first
    else:
        assert await driver.get_content("/same") == second
