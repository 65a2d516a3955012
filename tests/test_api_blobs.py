from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import AppFactory
from tests.support.oci import digest_of, push_blob, push_blob_chunked, random_bytes

pytestmark = pytest.mark.anyio


def code(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["code"])


async def test_monolithic_upload_and_get(client: httpx.AsyncClient) -> None:
    data = random_bytes(300_000, 1)
    digest = await push_blob(client, "team/app", data)
    r = await client.get(f"/v2/team/app/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["content-length"] == str(len(data))
    h = await client.head(f"/v2/team/app/blobs/{digest}")
    assert h.status_code == 200 and h.content == b""
    assert h.headers["content-length"] == str(len(data))


async def test_post_then_put_with_body(client: httpx.AsyncClient) -> None:
    data = b"hello blob"
    r = await client.post("/v2/a/blobs/uploads/")
    assert r.status_code == 202
    assert r.headers["oci-chunk-min-length"].isdigit()
    assert r.headers["range"] == "0-0"
    uid = r.headers["docker-upload-uuid"]
    assert uid in r.headers["location"]
    r = await client.put(f"{r.headers['location']}?digest={digest_of(data)}", content=data)
    assert r.status_code == 201, r.text
    assert r.headers["location"].endswith(f"/v2/a/blobs/{digest_of(data)}")
    assert (await client.get(f"/v2/a/blobs/{digest_of(data)}")).content == data


async def test_chunked_upload(client: httpx.AsyncClient) -> None:
    data = random_bytes(1_000_003, 2)
    digest = await push_blob_chunked(client, "chunky", data, 65_536)
    r = await client.get(f"/v2/chunky/blobs/{digest}")
    assert r.content == data


async def test_chunk_out_of_order_is_416(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/a/blobs/uploads/")
    loc = r.headers["location"]
    r = await client.patch(loc, content=b"abcd", headers={"Content-Range": "0-3"})
    assert r.status_code == 202 and r.headers["range"] == "0-3"
    r = await client.patch(loc, content=b"efgh", headers={"Content-Range": "10-13"})
    assert r.status_code == 416
    assert code(r) == "BLOB_UPLOAD_INVALID"
    assert r.headers["range"] == "0-3"
    status = await client.get(loc)
    assert status.status_code == 204 and status.headers["range"] == "0-3"
    assert status.headers["location"].endswith(loc.rsplit("/", 1)[-1])


async def test_content_range_must_match_length(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/a/blobs/uploads/")
    r = await client.patch(r.headers["location"], content=b"abcd", headers={"Content-Range": "0-9"})
    assert r.status_code == 400
    assert code(r) == "BLOB_UPLOAD_INVALID"


async def test_digest_mismatch_discards_upload(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/a/blobs/uploads/")
    loc = r.headers["location"]
    wrong = digest_of(b"other")
    r = await client.put(f"{loc}?digest={wrong}", content=b"content")
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"
    assert (await client.get(f"/v2/a/blobs/{wrong}")).status_code == 404
    assert (await client.get(f"/v2/a/blobs/{digest_of(b'content')}")).status_code == 404


async def test_monolithic_digest_mismatch(client: httpx.AsyncClient) -> None:
    r = await client.post(f"/v2/a/blobs/uploads/?digest={digest_of(b'x')}", content=b"y")
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"


async def test_put_without_digest(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/a/blobs/uploads/")
    r = await client.put(r.headers["location"], content=b"x")
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"


@pytest.mark.parametrize("bad", ["sha256:abc", "md5:" + "a" * 32, "nocolon", "sha256:" + "G" * 64])
async def test_bad_digests(client: httpx.AsyncClient, bad: str) -> None:
    r = await client.get(f"/v2/a/blobs/{bad}")
    assert r.status_code in (400, 404)
    if r.status_code == 400:
        assert code(r) == "DIGEST_INVALID"
    r = await client.post(f"/v2/a/blobs/uploads/?digest={bad}", content=b"x")
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"


async def test_unknown_upload_ids(client: httpx.AsyncClient) -> None:
    for uid in ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "x" * 300]:
        r = await client.get(f"/v2/a/blobs/uploads/{uid}")
        assert r.status_code == 404 and code(r) == "BLOB_UPLOAD_UNKNOWN", uid
        r = await client.patch(f"/v2/a/blobs/uploads/{uid}", content=b"x")
        assert r.status_code == 404


async def test_upload_belongs_to_its_repository(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/owner/blobs/uploads/")
    uid = r.headers["docker-upload-uuid"]
    r = await client.patch(f"/v2/thief/blobs/uploads/{uid}", content=b"x")
    assert r.status_code == 404 and code(r) == "BLOB_UPLOAD_UNKNOWN"
    r = await client.put(f"/v2/thief/blobs/uploads/{uid}?digest={digest_of(b'')}")
    assert r.status_code == 404
    assert (await client.get(f"/v2/owner/blobs/uploads/{uid}")).status_code == 204


async def test_cancel_upload(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/a/blobs/uploads/")
    loc = r.headers["location"]
    assert (await client.delete(loc)).status_code == 204
    assert (await client.get(loc)).status_code == 404
    assert (await client.delete(loc)).status_code == 404


async def test_blob_visible_only_in_linked_repositories(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "one", b"private content")
    assert (await client.get(f"/v2/one/blobs/{digest}")).status_code == 200
    r = await client.get(f"/v2/two/blobs/{digest}")
    assert r.status_code == 404 and code(r) == "BLOB_UNKNOWN"


async def test_cross_repository_mount(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "src", b"shared layer")
    r = await client.post(f"/v2/dst/blobs/uploads/?mount={digest}&from=src")
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["location"].endswith(f"/v2/dst/blobs/{digest}")
    assert (await client.get(f"/v2/dst/blobs/{digest}")).content == b"shared layer"


async def test_mount_without_from_starts_an_upload(client: httpx.AsyncClient) -> None:
    """As in registry:2: without `from` nothing is mounted (it would link any blob of the
    store, from repositories the client may not read); a normal upload starts."""
    digest = await push_blob(client, "src", b"anywhere")
    r = await client.post(f"/v2/other/blobs/uploads/?mount={digest}")
    assert r.status_code == 202, r.text
    assert "/v2/other/blobs/uploads/" in r.headers["location"]
    assert (await client.head(f"/v2/other/blobs/{digest}")).status_code == 404


async def test_mount_failure_starts_an_upload(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "src", b"not in from")
    r = await client.post(f"/v2/dst/blobs/uploads/?mount={digest}&from=elsewhere")
    assert r.status_code == 202
    assert "/v2/dst/blobs/uploads/" in r.headers["location"]
    missing = digest_of(b"never pushed")
    r = await client.post(f"/v2/dst/blobs/uploads/?mount={missing}&from=src")
    assert r.status_code == 202


async def test_range_requests(client: httpx.AsyncClient) -> None:
    data = random_bytes(10_000, 5)
    digest = await push_blob(client, "r", data)
    url = f"/v2/r/blobs/{digest}"
    r = await client.get(url, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.content == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    r = await client.get(url, headers={"Range": "bytes=9990-"})
    assert r.status_code == 206 and r.content == data[9990:]
    r = await client.get(url, headers={"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = await client.get(url, headers={"Range": "bytes=9000-20000"})
    assert r.status_code == 206 and r.content == data[9000:]
    r = await client.get(url, headers={"Range": "bytes=10000-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(data)}"
    r = await client.get(url, headers={"Range": "garbage"})
    assert r.status_code == 200 and r.content == data


async def test_delete_blob(client: httpx.AsyncClient) -> None:
    digest = await push_blob(client, "d", b"to delete")
    assert (await client.delete(f"/v2/d/blobs/{digest}")).status_code == 202
    assert (await client.get(f"/v2/d/blobs/{digest}")).status_code == 404
    r = await client.delete(f"/v2/d/blobs/{digest}")
    assert r.status_code == 404 and code(r) == "BLOB_UNKNOWN"


async def test_delete_disabled(make_client: AppFactory) -> None:
    client = make_client(delete_enabled=False)
    digest = await push_blob(client, "d", b"kept")
    r = await client.delete(f"/v2/d/blobs/{digest}")
    assert r.status_code == 405 and code(r) == "UNSUPPORTED"
    assert (await client.get(f"/v2/d/blobs/{digest}")).status_code == 200


async def test_read_only_mode(make_client: AppFactory) -> None:
    writable = make_client()
    digest = await push_blob(writable, "ro", b"before")
    client = make_client(read_only=True)
    r = await client.post("/v2/ro/blobs/uploads/")
    assert r.status_code == 405 and "read-only" in r.json()["errors"][0]["message"]
    r = await client.put("/v2/ro/manifests/latest", content=b"{}")
    assert r.status_code == 405
    assert (await client.get(f"/v2/ro/blobs/{digest}")).status_code == 200


async def test_streamed_bodies_go_out_in_bounded_pieces(tmp_path: Path) -> None:
    """A server that queues body messages (granian: 32 per connection) holds at most
    32 pieces for a slow client, so the piece size bounds that memory."""
    from mirror.proxy.app import standalone_app
    from mirror.proxy.blobresponse import SEND_PIECE
    from mirror.store.drivers import create_driver

    app = standalone_app(create_driver("filesystem", {"rootdirectory": str(tmp_path)}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as client:
        data = random_bytes(3 * 1024 * 1024 + 5, 11)
        digest = await push_blob(client, "p", data)
    path = f"/v2/p/blobs/{digest}"
    sizes: list[int] = []
    body = bytearray()

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.body":
            chunk = message["body"]
            assert isinstance(chunk, bytes)
            sizes.append(len(chunk))
            body.extend(chunk)

    scope = {
        "type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
        "query_string": b"", "headers": [(b"host", b"r.test"), (b"range", b"bytes=1-")],
        "http_version": "1.1",
        "scheme": "http", "server": ("r.test", 80), "client": ("127.0.0.1", 1),
        "root_path": "", "asgi": {"version": "3.0"},
    }  # fmt: skip
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert bytes(body) == data[1:]
    assert max(sizes) <= SEND_PIECE and len(sizes) >= len(data) // SEND_PIECE
