"""Events the real app emits, received by a real HTTP sink: push, pull, mount, delete,
pull-through, filters, references, a dead endpoint beside a live one, and the cap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mirror.events.envelope import BLOB_MEDIA_TYPE
from tests.events_helpers import eventually
from tests.support.notified import endpoint, notified_registry
from tests.support.oci import OCI_MANIFEST, digest_of, push_blob, push_blob_chunked, push_image
from tests.support.processes import free_port
from tests.support.scrape import sample
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.anyio


def by_action(events: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [event for event in events if event["action"] == action]


async def test_push_pull_mount_and_delete_events_have_the_right_fields(tmp_path: Path) -> None:
    async with (
        WebhookReceiver() as sink,
        notified_registry(
            tmp_path / "root",
            [endpoint("sink", sink.url, headers={"X-Hook": ["one"]})],
            user="alice",
        ) as registry,
    ):
        client = registry.client
        raw, manifest_digest = await push_image(client, "team/app", "v1", layers=1)
        manifest = json.loads(raw)
        layer = manifest["layers"][0]
        pushed = await push_blob_chunked(client, "team/app", b"chunked" * 100, chunk=300)
        pulled = await client.get("/v2/team/app/manifests/v1", headers={"User-Agent": "ua/1"})
        head = await client.head(f"/v2/team/app/manifests/{manifest_digest}")
        ranged = await client.get(
            f"/v2/team/app/blobs/{layer['digest']}", headers={"Range": "bytes=0-9"}
        )
        await client.head(f"/v2/team/app/blobs/{pushed}")
        mounted = await client.post(
            f"/v2/other/app/blobs/uploads/?mount={layer['digest']}&from=team/app"
        )
        assert (pulled.status_code, head.status_code, ranged.status_code) == (200, 200, 206)
        assert mounted.status_code == 201
        assert (await client.delete("/v2/team/app/manifests/v1")).status_code == 202
        gone = await client.delete(f"/v2/team/app/manifests/{manifest_digest}")
        assert gone.status_code == 202
        assert (await client.delete(f"/v2/other/app/blobs/{layer['digest']}")).status_code == 202
        await eventually(lambda: len(sink.unique_events()) >= 12, what="12 events")
    events = sink.unique_events()
    assert all(request.headers["x-hook"] == "one" for request in sink.requests)
    assert all(
        request.headers["content-type"] == "application/vnd.docker.distribution.events.v2+json"
        for request in sink.requests
    )
    pushes = by_action(events, "push")
    assert [event["target"]["digest"] for event in pushes] == [
        manifest["config"]["digest"],
        layer["digest"],
        manifest_digest,
        pushed,
    ]
    manifest_push = pushes[2]
    target = manifest_push["target"]
    assert target["mediaType"] == OCI_MANIFEST
    assert target["repository"] == "team/app"
    assert target["tag"] == "v1"
    assert target["size"] == len(raw) == target["length"]
    assert target["url"] == f"http://registry.test/v2/team/app/manifests/{manifest_digest}"
    assert "references" not in target
    assert manifest_push["actor"] == {"name": "alice"}
    assert manifest_push["request"]["method"] == "PUT"
    assert manifest_push["source"]["instanceID"]
    assert pushes[3]["target"]["mediaType"] == BLOB_MEDIA_TYPE
    assert pushes[3]["target"]["size"] == 700
    pulls = by_action(events, "pull")
    assert [(p["target"]["digest"], p["target"].get("tag")) for p in pulls] == [
        (manifest_digest, "v1"),
        (manifest_digest, None),
        (layer["digest"], None),
        (pushed, None),
    ]
    assert pulls[0]["request"]["id"] == pulled.headers["x-request-id"]
    assert pulls[0]["request"]["useragent"] == "ua/1"
    assert pulls[2]["target"]["size"] == layer["size"]  # the blob's, not the range's
    (mount,) = by_action(events, "mount")
    assert mount["target"]["repository"] == "other/app"
    assert mount["target"]["fromRepository"] == "team/app"
    assert mount["target"]["digest"] == layer["digest"]
    deletes = [event["target"] for event in by_action(events, "delete")]
    # As registry 3.x marshals them: the descriptor's fields present, empty.
    assert [(t["repository"], t.get("tag"), t["digest"]) for t in deletes] == [
        ("team/app", "v1", ""),
        ("team/app", None, manifest_digest),
        ("other/app", None, layer["digest"]),
    ]
    assert len({event["id"] for event in events}) == len(events)


async def test_failures_emit_nothing(tmp_path: Path) -> None:
    async with (
        WebhookReceiver() as sink,
        notified_registry(tmp_path / "root", [endpoint("sink", sink.url)]) as registry,
    ):
        client = registry.client
        assert (await client.get("/v2/team/app/manifests/nope")).status_code == 404
        assert (await client.get(f"/v2/team/app/blobs/{digest_of(b'x')}")).status_code == 404
        wrong = await client.post(
            f"/v2/team/app/blobs/uploads/?digest={digest_of(b'y')}", content=b"z"
        )
        assert wrong.status_code == 400
        await push_blob(client, "team/app", b"after")  # the one event
        await eventually(lambda: len(sink.unique_events()) >= 1, what="the push")
    assert [event["action"] for event in sink.unique_events()] == ["push"]


async def test_pull_through_content_gives_pull_events_with_the_stored_name(
    tmp_path: Path,
) -> None:
    async with (
        WebhookReceiver() as sink,
        notified_registry(
            tmp_path / "root", [endpoint("sink", sink.url)], proxy=True, include_references=True
        ) as registry,
    ):
        raw, digest = await push_image(registry.upstream, "library/alpine", "3", layers=1)
        layer = json.loads(raw)["layers"][0]["digest"]
        client = registry.client
        assert (await client.get("/v2/library/alpine/manifests/3")).status_code == 200
        assert (await client.get(f"/v2/library/alpine/blobs/{layer}")).status_code == 200
        assert (await client.get(f"/v2/library/alpine/blobs/{layer}")).status_code == 200
        await eventually(lambda: len(sink.unique_events()) >= 3, what="3 pulls")
    events = sink.unique_events()
    assert [event["action"] for event in events] == ["pull"] * 3
    assert {event["target"]["repository"] for event in events} == {"upstream.test/library/alpine"}
    assert events[0]["target"]["digest"] == digest
    references = events[0]["target"]["references"]
    assert [ref["digest"] for ref in references] == [
        json.loads(raw)["config"]["digest"],
        layer,
    ]


async def test_ignored_actions_and_media_types_are_not_sent(tmp_path: Path) -> None:
    settings = {"ignore": {"actions": ["pull"]}, "ignoredmediatypes": [OCI_MANIFEST]}
    async with (
        WebhookReceiver() as sink,
        notified_registry(tmp_path / "root", [endpoint("sink", sink.url, **settings)]) as registry,
    ):
        _, manifest = await push_image(registry.client, "team/app", "v1", layers=1)
        await registry.client.get(f"/v2/team/app/manifests/{manifest}")
        await eventually(lambda: len(sink.unique_events()) >= 2, what="2 blob pushes")
    assert [event["target"]["mediaType"] for event in sink.unique_events()] == [BLOB_MEDIA_TYPE] * 2


async def test_a_dead_endpoint_beside_a_live_one(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/events"
    async with (
        WebhookReceiver() as live,
        notified_registry(
            tmp_path / "root", [endpoint("dead", dead), endpoint("live", live.url)]
        ) as registry,
    ):
        for n in range(5):
            await push_blob(registry.client, "team/app", f"blob {n}".encode())
        await eventually(lambda: len(live.unique_events()) >= 5, what="the live endpoint's events")

        def figures() -> str:
            return registry.metrics.render().decode()

        await eventually(
            lambda: (
                (sample(figures(), "mirror_notifications_failed_total", endpoint="dead") or 0) >= 2
            ),
            what="failed attempts at the dead endpoint",
        )
        # The queue's length as the delivery loop last saw it, before an attempt.
        await eventually(
            lambda: sample(figures(), "mirror_notifications_pending", endpoint="dead") == 5,
            what="5 events waiting for the dead endpoint",
        )
        text = figures()
    assert sample(text, "mirror_notifications_delivered_total", endpoint="live") == 5
    assert sample(text, "mirror_notifications_queued_total", endpoint="dead") == 5
    assert not sample(text, "mirror_notifications_delivered_total", endpoint="dead")


async def test_the_cap_drops_the_oldest_and_the_rest_arrive_once_the_sink_is_back(
    tmp_path: Path,
) -> None:
    sink = WebhookReceiver()
    await sink.start()
    await sink.stop()  # its port, with nothing listening
    settings = {"queuelimit": 3}
    async with notified_registry(
        tmp_path / "root", [endpoint("capped", sink.url, **settings)]
    ) as registry:
        digests = [
            await push_blob(registry.client, "team/app", f"capped {n}".encode()) for n in range(5)
        ]
        text = registry.metrics.render().decode()
        assert sample(text, "mirror_notifications_dropped_total", endpoint="capped") == 2
        await sink.start()
        try:
            await eventually(lambda: len(set(sink.ids())) >= 3, what="the 3 newest events")
        finally:
            await sink.stop()
    assert [event["target"]["digest"] for event in sink.unique_events()][-3:] == digests[2:]
    assert {event["target"]["digest"] for event in sink.unique_events()} == set(digests[2:])


def test_the_actor_is_the_authenticated_user_in_the_scope_state() -> None:
    from mirror.auth.access import Grant
    from mirror.proxy.notifying import actor_of

    assert actor_of({"state": {"grant": Grant("bob")}}).name == "bob"
    assert actor_of({"state": {"mirror.user": "carol"}}).name == "carol"
    assert actor_of({"state": {"grant": Grant(None)}}).name == ""
    assert actor_of({}).name == ""
