"""Object-store faults (refused connections, stalls, 503 SlowDown, 500) through a proxy in
front of the emulators: each gives StorageUnavailable within a bounded time after bounded
retries, nothing partial becomes visible, and the driver recovers when the fault clears."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import anyio
import pytest

from mirror.store.driver import PathNotFound, StorageDriver, StorageUnavailable
from mirror.store.drivers.azure import AzureDriver
from mirror.store.drivers.azureparams import azure_settings
from mirror.store.drivers.base import CheckedDriver
from mirror.store.drivers.objsettings import MIB, Tuning
from mirror.store.drivers.s3 import S3Driver
from mirror.store.drivers.s3params import s3_settings
from tests.driver_suite import blob, read_all
from tests.objstore_suite import PART
from tests.support.emulators import AzureEmulator, S3Emulator, unique_root
from tests.support.faultproxy import FaultProxy, Mode

pytestmark = pytest.mark.anyio

RETRIES = 2
TUNING = Tuning(
    connect_timeout=1.0,
    request_timeout=2.0,
    stall_timeout=2.0,
    max_retries=RETRIES,
    backoff_initial=0.01,
    backoff_max=0.05,
    retry_timeout=3.0,
)
BOUND = 20.0  # seconds any failing call may take with TUNING (several timeouts and retries)


@dataclass
class Faulty:
    driver: StorageDriver
    proxy: FaultProxy


@pytest.fixture(params=["s3", "azure"])
async def faulty(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Faulty]:
    if request.param == "s3":
        s3: S3Emulator = request.getfixturevalue("s3_emulator")
        url = urlsplit(s3.endpoint)
        proxy = FaultProxy(url.hostname or "127.0.0.1", url.port or 80)
        await proxy.start()
        params = s3.params(s3.new_bucket(), chunksize=PART, regionendpoint=proxy.endpoint)
        driver: StorageDriver = CheckedDriver(S3Driver(s3_settings(params), tuning=TUNING))
    else:
        azure: AzureEmulator = request.getfixturevalue("azure_emulator")
        url = urlsplit(azure.service_url)
        proxy = FaultProxy(url.hostname or "127.0.0.1", url.port or 80)
        await proxy.start()
        params = azure.params(
            rootdirectory=unique_root(),
            serviceurl=f"{proxy.endpoint}{url.path}",
            max_retries=RETRIES,
            retry_delay="10ms",
        )
        settings = replace(azure_settings(params), part_size=PART)
        driver = CheckedDriver(AzureDriver(settings, tuning=TUNING))
    try:
        yield Faulty(driver, proxy)
    finally:
        await proxy.stop()


async def unavailable_in_bounded_time(call: object) -> StorageUnavailable:
    started = time.monotonic()
    with anyio.fail_after(BOUND), pytest.raises(StorageUnavailable) as info:
        await call  # type: ignore[misc]
    assert time.monotonic() - started < BOUND
    return info.value


@pytest.mark.parametrize("mode", ["refuse", "stall", "slowdown", "error"])
async def test_each_fault_is_unavailable_then_recovers(faulty: Faulty, mode: Mode) -> None:
    driver, proxy = faulty.driver, faulty.proxy
    await driver.put_content("/before", b"kept")
    await proxy.set(mode)
    error = await unavailable_in_bounded_time(driver.stat("/before"))
    assert error.path == "/before"
    if mode in ("slowdown", "error"):
        # One request and RETRIES retries, then the error: retries happen and are bounded.
        # (The first attempt may instead die on a pooled connection the switch cut.)
        assert 2 <= proxy.requests_answered <= 1 + RETRIES
        assert ("503" if mode == "slowdown" else "500") in str(error)
    await unavailable_in_bounded_time(driver.put_content("/during", b"lost"))
    await proxy.set("pass")
    assert await driver.get_content("/before") == b"kept"
    with pytest.raises(PathNotFound):
        await driver.stat("/during")
    await driver.put_content("/after", b"ok")
    assert await driver.list("/") == ["after", "before"]


@pytest.mark.parametrize("mode", ["slowdown", "refuse"])
async def test_fault_mid_upload_leaves_nothing_visible(faulty: Faulty, mode: Mode) -> None:
    driver, proxy = faulty.driver, faulty.proxy
    data = blob(4 * PART, 9)
    writer = await driver.writer("/big")
    await writer.write(data[: 2 * PART])
    await proxy.set(mode)

    async def finish() -> None:
        await writer.write(data[2 * PART :])
        await writer.commit()

    await unavailable_in_bounded_time(finish())
    await writer.cancel()
    await proxy.set("pass")
    with pytest.raises(PathNotFound):
        await driver.stat("/big")
    assert await driver.list("/") == []
    again = await driver.writer("/big")
    await again.write(data)
    await again.commit()
    assert await driver.get_content("/big") == data


async def test_fault_mid_read_fails_the_stream_then_recovers(faulty: Faulty) -> None:
    driver, proxy = faulty.driver, faulty.proxy
    data = blob(24 * MIB, 4)
    await driver.put_content("/read", data)
    stream = await driver.reader("/read")
    first = await stream.__anext__()
    await proxy.set("refuse")  # cuts the response and any retry

    async def drain() -> None:
        async for _ in stream:
            pass

    await unavailable_in_bounded_time(drain())
    await proxy.set("pass")
    assert first == data[: len(first)]
    assert await read_all(driver, "/read", 5) == data[5:]
