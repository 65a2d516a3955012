"""Numbers a client sends (n, Content-Length, Content-Range, Range) are plain ASCII digits:
no underscores, signs, spaces or other scripts' digits, and no length that turns into a
500 (Python's int() refuses more than 4300 digits)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.oci import push_blob, push_image, random_bytes

pytestmark = pytest.mark.anyio

HUGE = "9" * 5000
NOT_PLAIN = ["1_0", "+5", " 5", "5 ", "-1", "\uff15", "\u0663", "\u00b2", "0x5", "1e3"]


def code(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["code"])


@pytest.mark.parametrize("n", NOT_PLAIN)
async def test_page_size_must_be_plain_digits(client: httpx.AsyncClient, n: str) -> None:
    await push_image(client, "p", "v1")
    for path in ("/v2/_catalog", "/v2/p/tags/list"):
        r = await client.get(path, params={"n": n})
        assert r.status_code == 400, (path, n, r.text)
        assert code(r) == "PAGINATION_NUMBER_INVALID"


@pytest.mark.parametrize("n", ["0", "007", "10", "99999999999999999999", HUGE])
async def test_plain_page_sizes(client: httpx.AsyncClient, n: str) -> None:
    await push_image(client, "p", "v1")
    r = await client.get("/v2/p/tags/list", params={"n": n})
    assert r.status_code == 200
    assert r.json()["tags"] == ([] if set(n) == {"0"} else ["v1"])


@pytest.mark.parametrize(
    "content_range", ["\u0660-\u0663", "0-" + HUGE, HUGE + "-" + HUGE, "0_0-3", "+0-3"]
)
async def test_chunk_range_must_be_plain_digits(
    client: httpx.AsyncClient, content_range: str
) -> None:
    location = (await client.post("/v2/a/blobs/uploads/")).headers["location"]
    r = await client.patch(
        location, content=b"abcd", headers={b"Content-Range": content_range.encode()}
    )
    assert r.status_code == 400, r.text
    assert code(r) == "BLOB_UPLOAD_INVALID"
    assert (await client.get(location)).headers["range"] == "0-0"


async def test_blob_range_numbers(client: httpx.AsyncClient) -> None:
    data = random_bytes(1000, 3)
    digest = await push_blob(client, "r", data)
    url = f"/v2/r/blobs/{digest}"
    # Other scripts' digits are not a range: the whole blob, as for any malformed Range.
    r = await client.get(url, headers={b"Range": "bytes=\u0660-\u0663".encode()})
    assert r.status_code == 200 and r.content == data
    # Long numbers are numbers: past the end is 416, an end past it is the end.
    r = await client.get(url, headers={"Range": f"bytes={HUGE}-"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */1000"
    r = await client.get(url, headers={"Range": f"bytes=990-{HUGE}"})
    assert r.status_code == 206 and r.content == data[990:]
    r = await client.get(url, headers={"Range": f"bytes=-{HUGE}"})
    assert r.status_code == 206 and r.content == data
