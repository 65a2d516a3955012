"""The request-bound notifier the stores' wrappers call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.digests import Digest
from mirror.events.builder import EventBuilder
from mirror.events.dispatcher import Dispatcher
from mirror.events.envelope import SourceRecord
from mirror.events.notifier import Notifier
from mirror.types import OCI_MANIFEST, Manifest
from tests.events_helpers import CTX, dispatcher, endpoint
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.anyio

LAYER = Digest.of(b"layer")


def manifest() -> Manifest:
    config = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": str(Digest.of(b"{}")),
        "size": 2,
    }
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}
    return Manifest.parse(json.dumps(doc).encode())


async def test_each_call_emits_its_action(tmp_path: Path) -> None:
    async with WebhookReceiver() as receiver:
        hub = dispatcher(endpoint(tmp_path, "hook", receiver.url, batch=20))
        notifier = Notifier(EventBuilder(SourceRecord("h:1")), hub)
        events = notifier.for_request(CTX)
        assert events.active
        await events.manifest_pushed("r", manifest(), "v1")
        await events.manifest_pulled("r", manifest())
        await events.manifest_deleted("r", manifest().digest)
        await events.tag_deleted("r", "v1")
        await events.blob_pushed("r", LAYER, 5)
        await events.blob_pulled("r", LAYER, 5)
        await events.blob_mounted("r", LAYER, 5, "other")
        await events.blob_deleted("r", LAYER)
        hub.start()
        await receiver.wait_for_requests(1)
        await hub.aclose()
    got = [
        (e["action"], e["target"].get("tag", ""), e["target"].get("fromRepository", ""))
        for e in receiver.events()
    ]
    assert got == [
        ("push", "v1", ""),
        ("pull", "", ""),
        ("delete", "", ""),
        ("delete", "v1", ""),
        ("push", "", ""),
        ("pull", "", ""),
        ("mount", "", "other"),
        ("delete", "", ""),
    ]
    assert {e["request"]["id"] for e in receiver.events()} == {"req-1"}


async def test_without_endpoints_nothing_is_built() -> None:
    def no_ids() -> str:
        raise AssertionError("an event was built")

    notifier = Notifier(EventBuilder(SourceRecord(), new_id=no_ids), Dispatcher([]))
    events = notifier.for_request(CTX)
    assert not notifier.active
    await events.manifest_pushed("r", manifest())
    await events.blob_pulled("r", LAYER, 5)
    await events.tag_deleted("r", "t")
