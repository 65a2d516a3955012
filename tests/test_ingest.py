"""Partial blobs: what an ingest has written can be read at its locator before the commit.

The contract of `mirror.store.ingest.staging`, run on both drivers (so against both
stagings: the file system's temp files and the in-memory one).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mirror.digests import Digest
from mirror.errors import InsufficientStorage
from mirror.store import paths
from mirror.store.blobs import BlobIngest, BlobStore
from mirror.store.driver import CHUNK_SIZE, PathNotFound
from mirror.store.drivers import create_driver
from mirror.store.ingest.memory import MemoryStaging
from mirror.store.ingest.spool import SpoolStaging
from mirror.store.ingest.staging import PartialGone, PartialProgress, PartialReader, PartialState
from tests.driver_suite import blob
from tests.support.emulators import S3Emulator, unique_root
from tests.support.smallfs import small_filesystem

pytestmark = pytest.mark.anyio

DATA = blob(3 * CHUNK_SIZE + 11)
DIGEST = Digest.of(DATA)


@pytest.fixture(params=["filesystem", "inmemory", "spool", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param in ("spool", "s3"):
        # An object store's staging (spool files), on inmemory and on moto's S3.
        if request.param == "s3":
            s3: S3Emulator = request.getfixturevalue("s3_emulator")
            driver = create_driver("s3", s3.params(s3.new_bucket(), rootdirectory=unique_root()))
        else:
            driver = create_driver("inmemory", {})
        return BlobStore(driver, staging=SpoolStaging(driver, str(tmp_path / "spool")))
    params = {"rootdirectory": str(tmp_path)} if request.param == "filesystem" else {}
    return BlobStore(create_driver(request.param, params))


async def listed(blobs: BlobStore, path: str) -> list[str]:
    """What a listing shows (on an object store, a directory with nothing in it is none)."""
    try:
        return await blobs.driver.list(path)
    except PathNotFound:
        return []


PIECE = 64 * 1024


async def read_all(reader: PartialReader) -> bytes:
    parts: list[bytes] = []
    offset = 0
    while pieces := await reader.read(offset, CHUNK_SIZE, PIECE):
        assert all(0 < len(piece) <= PIECE for piece in pieces)
        parts.extend(pieces)
        offset += sum(map(len, pieces))
    return b"".join(parts)


async def test_a_partial_shows_what_was_written(blobs: BlobStore) -> None:
    ingest = await blobs.ingest(DIGEST)
    reader = await blobs.open_partial(DIGEST, ingest.locator)
    assert await read_all(reader) == b""
    assert await reader.progress() == PartialProgress(0, PartialState.WRITING)
    await ingest.write(DATA[: 2 * CHUNK_SIZE])
    await ingest.write(DATA[2 * CHUNK_SIZE : -4])
    seen = await read_all(reader)
    # The prefix written so far; stagings may hold back less than one chunk until a flush.
    assert DATA.startswith(seen)
    assert len(seen) > ingest.size - CHUNK_SIZE
    assert (await reader.progress()).available == len(seen)
    await ingest.write(DATA[-4:])
    await ingest.flush()
    assert await read_all(reader) == DATA
    # The partial is nowhere a listing shows.
    assert await listed(blobs, paths.blob_dir(DIGEST)) == []
    await ingest.commit(len(DATA))
    # An open reader reads on after the commit; nobody opens the partial any more.
    assert await read_all(reader) == DATA
    assert await reader.progress() == PartialProgress(len(DATA), PartialState.COMMITTED)
    with pytest.raises(PartialGone):
        await blobs.open_partial(DIGEST, ingest.locator)
    assert await blobs.get(DIGEST, len(DATA)) == DATA
    await reader.aclose()
    await reader.aclose()


async def test_a_cancelled_partial_is_gone(blobs: BlobStore) -> None:
    ingest = await blobs.ingest(DIGEST)
    reader = await blobs.open_partial(DIGEST, ingest.locator)
    await ingest.write(DATA[:CHUNK_SIZE])
    await ingest.cancel()
    await ingest.cancel()
    assert (await reader.progress()).state is PartialState.GONE
    with pytest.raises(PartialGone):
        await blobs.open_partial(DIGEST, ingest.locator)
    assert not await blobs.exists(DIGEST)
    assert await listed(blobs, paths.blob_dir(DIGEST)) == []
    await reader.aclose()


async def test_locators_are_checked(blobs: BlobStore) -> None:
    ingest = await blobs.ingest(DIGEST)
    other = Digest.of(b"other")
    with pytest.raises(PartialGone):
        await blobs.open_partial(other, ingest.locator)
    for bogus in (
        "",
        "/etc/passwd",
        paths.blob_data(DIGEST),
        paths.blob_dir(DIGEST) + "/../data",
        ingest.locator + "x",
        "memory:" + "0" * 32,
        "x" * 5000,
    ):
        with pytest.raises(PartialGone):
            await blobs.open_partial(DIGEST, bogus)
    await ingest.cancel()


async def test_two_ingests_of_one_blob_stay_apart(blobs: BlobStore) -> None:
    first, second = await blobs.ingest(DIGEST), await blobs.ingest(DIGEST)
    assert first.locator != second.locator
    await first.write(b"first")
    await first.flush()
    reader = await blobs.open_partial(DIGEST, second.locator)
    assert await read_all(reader) == b""
    await reader.aclose()
    for ingest in (first, second):
        await ingest.cancel()


async def test_a_write_after_the_end_fails(blobs: BlobStore) -> None:
    data = b"small blob"
    ingest = await blobs.ingest(Digest.of(data))
    await ingest.write(data)
    await ingest.commit(len(data))
    with pytest.raises(Exception, match="committed or cancelled"):
        await ingest.write(b"more")


async def test_other_processes_find_file_partials(tmp_path: Path) -> None:
    ours = BlobStore(create_driver("filesystem", {"rootdirectory": str(tmp_path)}))
    theirs = BlobStore(create_driver("filesystem", {"rootdirectory": str(tmp_path)}))
    ingest = await ours.ingest(DIGEST)
    # The locator is the temp file's driver path, as announced by earlier versions.
    assert ingest.locator.startswith(paths.blob_dir(DIGEST) + "/.data.tmp-")
    await ingest.write(b"small")
    reader = await theirs.open_partial(DIGEST, ingest.locator)
    # Small writes wait in the writer's buffer until a MiB has gathered, or a flush.
    assert await read_all(reader) == b""
    await ingest.write(DATA[:CHUNK_SIZE])
    assert await read_all(reader) == b"small" + DATA[:CHUNK_SIZE]
    await ingest.write(b"more")
    await ingest.flush()
    await ingest.flush()
    assert await read_all(reader) == b"small" + DATA[:CHUNK_SIZE] + b"more"
    await ingest.cancel()
    await reader.aclose()


async def test_spooled_partials_are_shared_by_the_host_and_purged_when_abandoned(
    tmp_path: Path,
) -> None:
    driver = create_driver("inmemory", {})
    spool = str(tmp_path / "spool")
    ours = BlobStore(driver, staging=SpoolStaging(driver, spool))
    theirs = BlobStore(driver, staging=SpoolStaging(driver, spool))  # another process
    elsewhere = BlobStore(driver, staging=SpoolStaging(driver, str(tmp_path / "other-host")))
    ingest = await ours.ingest(DIGEST)
    assert ingest.locator.startswith("spool:")
    await ingest.write(DATA[: CHUNK_SIZE + 1])
    reader = await theirs.open_partial(DIGEST, ingest.locator)
    assert await read_all(reader) == DATA[: CHUNK_SIZE + 1]  # no flush needed
    with pytest.raises(PartialGone):
        await elsewhere.open_partial(DIGEST, ingest.locator)
    await ingest.write(DATA[CHUNK_SIZE + 1 :])
    await ingest.commit(len(DATA))
    assert await read_all(reader) == DATA
    assert (await reader.progress()).state is PartialState.COMMITTED
    await reader.aclose()
    assert os.listdir(spool) == []  # the disk holds a blob only while it downloads
    # A writer that died leaves its spool file unlocked: purged; a live one stays.
    live = await ours.ingest(Digest.of(b"live"))
    await live.write(b"live")
    (Path(spool) / ("0" * 32 + "-" + "1" * 32 + ".part")).write_bytes(b"left by a killed process")
    staging = SpoolStaging(driver, spool)
    assert staging.purge(0) == 1
    assert await staging.discard(paths.blob_data(Digest.of(b"live")), live.locator) is False
    assert len(os.listdir(spool)) == 1
    await live.cancel()
    assert os.listdir(spool) == []


async def test_memory_partials_show_every_write_and_stay_in_the_process() -> None:
    driver = create_driver("inmemory", {})
    ours, theirs = BlobStore(driver), BlobStore(driver)
    ingest: BlobIngest = await ours.ingest(DIGEST)
    reader = await ours.open_partial(DIGEST, ingest.locator)
    await ingest.write(b"abc")
    assert await read_all(reader) == b"abc"
    await ingest.write(b"def")
    assert await reader.read(1, 4, 2) == [b"bc"]
    assert await reader.read(3, 100, 2) == [b"de", b"f"]
    with pytest.raises(PartialGone):
        await theirs.open_partial(DIGEST, ingest.locator)
    await ingest.cancel()
    await reader.aclose()


async def test_only_partials_of_writers_that_died_are_discarded(blobs: BlobStore) -> None:
    ingest = await blobs.ingest(DIGEST)
    await ingest.write(DATA[: 2 * CHUNK_SIZE])
    assert await blobs.discard_partial(DIGEST, ingest.locator) is False
    reader = await blobs.open_partial(DIGEST, ingest.locator)  # still there
    assert (await reader.progress()).state is PartialState.WRITING
    await reader.aclose()
    assert await blobs.discard_partial(DIGEST, "/etc/passwd") is False
    await ingest.cancel()
    assert await blobs.discard_partial(DIGEST, ingest.locator) is False


async def test_a_dead_writers_temp_file_is_discarded(tmp_path: Path) -> None:
    blobs = BlobStore(create_driver("filesystem", {"rootdirectory": str(tmp_path)}))
    directory = tmp_path / paths.blob_dir(DIGEST).lstrip("/")
    directory.mkdir(parents=True)
    left = directory / ".data.tmp-0123456789abcdef0123456789abcdef"
    left.write_bytes(DATA[:1000])  # as a killed process leaves it: nobody holds its lock
    locator = f"{paths.blob_dir(DIGEST)}/{left.name}"
    assert await blobs.discard_partial(DIGEST, locator) is True
    assert not left.exists()
    assert await blobs.discard_partial(DIGEST, locator) is False


async def test_room_is_reserved_before_the_bytes_come(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", 8 * 1024 * 1024) as small:
        blobs = BlobStore(create_driver("filesystem", {"rootdirectory": str(small)}))
        first = await blobs.ingest(DIGEST)
        await first.reserve(5 * 1024 * 1024)
        # Reserving does not make the partial look written.
        reader = await blobs.open_partial(DIGEST, first.locator)
        assert (await reader.progress()).available == 0
        await reader.aclose()
        second = await blobs.ingest(Digest.of(b"another"))
        with pytest.raises(InsufficientStorage, match="not enough storage space"):
            await second.reserve(5 * 1024 * 1024)
        await second.cancel()
        await first.cancel()  # gives the room back
        third = await blobs.ingest(Digest.of(b"a third"))
        await third.reserve(5 * 1024 * 1024)
        await third.cancel()


async def test_reserving_is_harmless_where_it_means_nothing(blobs: BlobStore) -> None:
    ingest = await blobs.ingest(DIGEST)
    await ingest.reserve(len(DATA))
    await ingest.write(DATA)
    await ingest.commit(len(DATA))
    assert await blobs.get(DIGEST, len(DATA)) == DATA


async def test_memory_keeps_only_so_much() -> None:
    driver = create_driver("inmemory", {})
    blobs = BlobStore(driver, staging=MemoryStaging(driver, keep=2 * CHUNK_SIZE))
    ingest = await blobs.ingest(DIGEST)
    reader = await blobs.open_partial(DIGEST, ingest.locator)
    await ingest.write(DATA[:CHUNK_SIZE])
    assert await reader.read(0, 10, 10) == [DATA[:10]]
    await ingest.write(DATA[CHUNK_SIZE:])  # past what is kept: the pieces go
    with pytest.raises(PartialGone):
        await reader.read(0, 10, 10)
    with pytest.raises(PartialGone):
        await blobs.open_partial(DIGEST, ingest.locator)
    await ingest.commit(len(DATA))
    assert await blobs.get(DIGEST, len(DATA)) == DATA  # the write itself is whole
    await reader.aclose()
