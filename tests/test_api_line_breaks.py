"""A trailing line break (or other control character) in a path is not part of any valid
name, tag, digest, upload id or endpoint: a client error, never a 500 and never a match
(a regex `$` matches before a final newline; every pattern must match the whole text)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.oci import digest_of, manifest_bytes, push_blob, push_image, push_manifest

pytestmark = pytest.mark.anyio

BREAKS = ["%0A", "%0D", "%0D%0A", "%00", "%09"]


def code(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["code"])


@pytest.mark.parametrize("brk", BREAKS)
async def test_lookups_with_a_line_break(client: httpx.AsyncClient, brk: str) -> None:
    _, digest = await push_image(client, "a", "v1")
    upload = (await client.post("/v2/a/blobs/uploads/")).headers["docker-upload-uuid"]
    expected = {
        f"/v2/a/manifests/v1{brk}": (404, "MANIFEST_UNKNOWN"),
        f"/v2/a/manifests/{digest}{brk}": (400, "DIGEST_INVALID"),
        f"/v2/a/blobs/{digest}{brk}": (400, "DIGEST_INVALID"),
        f"/v2/a{brk}/tags/list": (400, "NAME_INVALID"),
        f"/v2/a/tags/list{brk}": (404, "NOT_FOUND"),
        f"/v2/_catalog{brk}": (404, "NOT_FOUND"),
        f"/v2/a/blobs/uploads/{upload}{brk}": (404, "BLOB_UPLOAD_UNKNOWN"),
    }
    for path, (status, error) in expected.items():
        r = await client.get(path)
        assert (r.status_code, code(r)) == (status, error), path


@pytest.mark.parametrize("brk", BREAKS)
async def test_pushes_with_a_line_break(client: httpx.AsyncClient, brk: str) -> None:
    await push_image(client, "a", "v1")
    await push_blob(client, "a", b"{}")
    raw = manifest_bytes(b"{}", [])
    r = await push_manifest(client, "a", f"v2{brk}", raw)
    assert r.status_code == 400 and code(r) == "TAG_INVALID"
    r = await push_manifest(client, f"a{brk}", "v2", raw)
    assert r.status_code == 400 and code(r) == "NAME_INVALID"
    r = await client.post(f"/v2/a/blobs/uploads/?digest={digest_of(b'x')}{brk}", content=b"x")
    assert r.status_code == 400 and code(r) == "DIGEST_INVALID"
    assert (await client.get("/v2/a/tags/list")).json()["tags"] == ["v1"]
