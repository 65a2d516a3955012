"""Two real `mirror serve` processes on one storage root (as `http.workers: 2` runs them):
a PUT on one never commits an upload while a PATCH of it still streams into the other."""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.mirrorproc import run_mirror
from tests.support.processes import wait_until

MiB = 1024 * 1024
HEAD = random.Random(91).randbytes(2 * MiB + 5)
TAIL = random.Random(92).randbytes(400_000)


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def on_disk(client: httpx.Client, path: str) -> int:
    """The size of an upload session, from its `Range`."""
    return int(client.get(path).headers["range"].split("-")[1]) + 1


def test_put_on_one_process_waits_for_a_patch_on_the_other(tmp_path: Path) -> None:
    root = tmp_path / "root"
    head_sent, go_on = threading.Event(), threading.Event()
    results: dict[str, httpx.Response | BaseException] = {}

    def body() -> Iterator[bytes]:
        yield HEAD
        head_sent.set()
        go_on.wait(30)
        yield TAIL

    def run(name: str, call: object) -> threading.Thread:
        def target() -> None:
            try:
                results[name] = call()  # type: ignore[operator]
            except BaseException as exc:
                results[name] = exc

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    with (
        run_mirror(tmp_path, root=root, name="one") as one,
        run_mirror(tmp_path, root=root, name="two") as two,
        httpx.Client(base_url=one.url, timeout=30, trust_env=False) as a,
        httpx.Client(base_url=two.url, timeout=30, trust_env=False) as b,
    ):
        location = a.post("/v2/team/app/blobs/uploads/").headers["location"]
        path = httpx.URL(location).path
        patching = run("patch", lambda: a.patch(path, content=body()))
        assert head_sent.wait(10)
        wait_until(
            lambda: on_disk(b, path) >= MiB,
            10,
            what="the first part of the chunk to reach the upload file",
        )
        # What an unordered PUT would verify, and then publish.
        prefix = digest_of(HEAD[: on_disk(b, path)])
        putting = run("put", lambda: b.put(path, params={"digest": prefix}))
        putting.join(1.5)  # an unordered PUT commits within this; an ordered one waits
        go_on.set()
        patching.join(30)
        putting.join(30)
        patch, put = results["patch"], results["put"]
        assert isinstance(patch, httpx.Response) and patch.status_code == 202, patch
        assert isinstance(put, httpx.Response), put
        for client in (a, b):
            r = client.get(f"/v2/team/app/blobs/{prefix}")
            assert r.status_code == 404 or digest_of(r.content) == prefix, (
                f"the stored blob {prefix} holds {len(r.content)} bytes of other content"
            )
        # The PUT ran after the whole chunk: the session held HEAD + TAIL, not HEAD.
        assert put.status_code == 400, put.text
        assert put.json()["errors"][0]["code"] == "DIGEST_INVALID"
