"""The driver suites against the s3 driver on moto's server, plus its own checks."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import obstore
import pytest
from obstore.store import S3Store

from mirror.store.driver import StorageDriver
from mirror.store.drivers import create_driver
from mirror.store.drivers.base import CheckedDriver
from mirror.store.drivers.objsettings import MIB
from mirror.store.drivers.s3 import S3Driver
from mirror.store.drivers.s3params import s3_settings
from tests.driver_suite import DriverSuite, blob
from tests.driver_suite_traits import NoAppendSuite, PrefixSuite
from tests.objstore_suite import PART, ObjectStoreSuite, PendingUploads, RawKeys
from tests.support.emulators import S3_KEY, S3_SECRET, S3Emulator, unique_root

pytestmark = pytest.mark.anyio


@pytest.fixture
def bucket(s3_emulator: S3Emulator) -> str:
    return s3_emulator.new_bucket()


@pytest.fixture
def root() -> str:
    return unique_root()


def raw_store(s3_emulator: S3Emulator, bucket: str) -> S3Store:
    return S3Store(
        bucket,
        config={
            "endpoint": s3_emulator.endpoint,
            "region": "us-east-1",
            "access_key_id": S3_KEY,
            "secret_access_key": S3_SECRET,
        },
        client_options={"allow_http": True},
    )


class TestS3Driver(DriverSuite, PrefixSuite, NoAppendSuite, ObjectStoreSuite):
    @pytest.fixture
    def driver(self, s3_emulator: S3Emulator, bucket: str, root: str) -> StorageDriver:
        return create_driver("s3", s3_emulator.params(bucket, rootdirectory=root, chunksize=PART))

    @pytest.fixture
    def raw_keys(self, s3_emulator: S3Emulator, bucket: str) -> RawKeys:
        store = raw_store(s3_emulator, bucket)

        async def keys() -> list[str]:
            return sorted(meta["path"] for meta in await obstore.list(store).collect_async())

        return keys

    @pytest.fixture
    def pending_uploads(self, s3_emulator: S3Emulator, bucket: str) -> PendingUploads:
        async def pending() -> list[str] | None:
            return multipart_uploads(s3_emulator, bucket)

        return pending


def boto_client(s3_emulator: S3Emulator):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_emulator.endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        verify=False,
    )


def multipart_uploads(s3_emulator: S3Emulator, bucket: str) -> list[str]:
    listing = boto_client(s3_emulator).list_multipart_uploads(Bucket=bucket)
    return [str(upload["Key"]) for upload in listing.get("Uploads", [])]


async def test_bucket_root_without_rootdirectory(s3_emulator: S3Emulator, bucket: str) -> None:
    driver = create_driver("s3", s3_emulator.params(bucket))
    await driver.put_content("/docker/registry/v2/x", b"1")
    store = raw_store(s3_emulator, bucket)
    assert [m["path"] for m in await obstore.list(store).collect_async()] == [
        "docker/registry/v2/x"
    ]
    assert await driver.list("/") == ["docker"]
    await driver.delete("/")
    assert await obstore.list(store).collect_async() == []


async def test_encryption_and_storage_class_reach_the_objects(
    s3_emulator: S3Emulator, bucket: str
) -> None:
    driver = create_driver("s3", s3_emulator.params(bucket, encrypt=True, chunksize=PART))
    await driver.put_content("/small", b"x")
    writer = await driver.writer("/large")
    await writer.write(blob(PART + 1))
    await writer.commit()
    await driver.move("/small", "/moved")
    client = boto_client(s3_emulator)
    for key in ("large", "moved"):
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256", key
    assert client.head_object(Bucket=bucket, Key="large").get("StorageClass", "STANDARD") == (
        "STANDARD"
    )


async def test_move_above_the_copy_limit_streams(s3_emulator: S3Emulator, bucket: str) -> None:
    settings = s3_settings(s3_emulator.params(bucket, chunksize=PART))
    driver = CheckedDriver(S3Driver(settings, copy_limit=1 * MIB))
    data = blob(2 * PART + 9, 11)
    await driver.put_content("/src", data)
    await driver.move("/src", "/dst")
    assert await driver.get_content("/dst") == data
    assert await driver.list("/") == ["dst"]
    assert multipart_uploads(s3_emulator, bucket) == []


async def test_redirect_url_lasts_twenty_minutes(s3_emulator: S3Emulator, bucket: str) -> None:
    driver = create_driver("s3", s3_emulator.params(bucket))
    await driver.put_content("/b", b"x")
    url = await driver.redirect_url("/b", "GET")  # type: ignore[attr-defined]
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["1200"]
    assert urlsplit(url).path == f"/{bucket}/b"
