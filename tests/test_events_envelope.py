"""The event envelope and the builder: registry:2's fields, names and omissions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from mirror.digests import Digest
from mirror.events.builder import EventBuilder, RequestContext, client_addr, request_record
from mirror.events.delivery import EventFilter
from mirror.events.envelope import (
    BLOB_MEDIA_TYPE,
    ActorRecord,
    Event,
    RequestRecord,
    SourceRecord,
    Target,
    envelope,
    format_timestamp,
)
from mirror.types import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Descriptor, Manifest

MOMENT = datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)
LAYER = Digest.of(b"layer")
CONFIG = Digest.of(b"config")
REQUEST = RequestRecord(
    id="asdfasdf",
    method="PUT",
    addr="client.local",
    host="registrycluster.local",
    useragent="test/0.1",
)
CTX = RequestContext(REQUEST, ActorRecord("test-actor"), "http://example.com")
SOURCE = SourceRecord("hostname.local:port")


def builder(include_references: bool = False) -> EventBuilder:
    ids = iter(f"asdf-asdf-asdf-asdf-{n}" for n in range(100))
    return EventBuilder(
        SOURCE,
        include_references=include_references,
        new_id=lambda: next(ids),
        clock=lambda: MOMENT,
    )


def image_manifest() -> Manifest:
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": str(CONFIG),
            "size": 6,
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": str(LAYER),
                "size": 5,
            }
        ],
    }
    return Manifest.parse(json.dumps(doc).encode())


def test_a_manifest_push_is_the_reference_s_event_field_for_field() -> None:
    manifest = image_manifest()
    event = builder().manifest_pushed(CTX, "library/test", manifest, tag="latest")
    size = len(manifest.raw)
    # The reference's TestEventEnvelopeJSONFormat, with this manifest's digest and size.
    assert event.to_json() == {
        "id": "asdf-asdf-asdf-asdf-0",
        "timestamp": "2006-01-02T15:04:05Z",
        "action": "push",
        "target": {
            "mediaType": DOCKER_MANIFEST,
            "digest": str(manifest.digest),
            "size": size,
            "length": size,
            "repository": "library/test",
            "url": f"http://example.com/v2/library/test/manifests/{manifest.digest}",
            "tag": "latest",
        },
        "request": {
            "id": "asdfasdf",
            "addr": "client.local",
            "host": "registrycluster.local",
            "method": "PUT",
            "useragent": "test/0.1",
        },
        "actor": {"name": "test-actor"},
        "source": {"addr": "hostname.local:port"},
    }
    # Keys in the reference's order (receivers that diff payloads see the same text).
    assert list(event.to_json()["target"]) == [
        "mediaType",
        "digest",
        "size",
        "length",
        "repository",
        "url",
        "tag",
    ]


def test_the_envelope_wraps_stored_events_without_parsing_them() -> None:
    events = [builder().blob_pushed(CTX, "library/test", LAYER, 5) for _ in range(3)]
    body = envelope([event.to_bytes() for event in events])
    assert json.loads(body) == {"events": [event.to_json() for event in events]}
    assert json.loads(envelope([])) == {"events": []}


def test_blob_events_are_octet_streams_with_a_blob_url() -> None:
    make = builder()
    pushed = make.blob_pushed(CTX, "library/test", LAYER, 5).to_json()
    assert pushed["action"] == "push"
    assert pushed["target"] == {
        "mediaType": BLOB_MEDIA_TYPE,
        "digest": str(LAYER),
        "size": 5,
        "length": 5,
        "repository": "library/test",
        "url": f"http://example.com/v2/library/test/blobs/{LAYER}",
    }
    pulled = make.blob_pulled(CTX, "library/test", LAYER, 5).to_json()
    assert pulled["action"] == "pull"
    assert pulled["id"] != pushed["id"]


def test_a_mount_names_the_repository_it_came_from() -> None:
    event = builder().blob_mounted(CTX, "team/app", LAYER, 5, from_repository="library/test")
    target = event.to_json()["target"]
    assert event.action == "mount"
    assert target["repository"] == "team/app"
    assert target["fromRepository"] == "library/test"
    assert list(target).index("fromRepository") == list(target).index("repository") + 1


def test_deletes_carry_only_repository_and_digest_or_tag() -> None:
    make = builder()
    manifest = make.manifest_deleted(CTX, "library/test", CONFIG).to_json()
    # As the 3.x reference marshals them: the descriptor's fields stay, empty.
    assert manifest["action"] == "delete"
    assert manifest["target"] == {
        "mediaType": "",
        "digest": str(CONFIG),
        "size": 0,
        "repository": "library/test",
    }
    blob = make.blob_deleted(CTX, "library/test", LAYER).to_json()
    assert blob["target"] == {
        "mediaType": "",
        "digest": str(LAYER),
        "size": 0,
        "repository": "library/test",
    }
    tag = make.tag_deleted(CTX, "library/test", "old").to_json()
    assert tag["target"] == {
        "mediaType": "",
        "digest": "",
        "size": 0,
        "repository": "library/test",
        "tag": "old",
    }


def test_references_are_listed_only_when_asked_for() -> None:
    manifest = image_manifest()
    assert "references" not in builder().manifest_pulled(CTX, "r", manifest).to_json()["target"]
    target = builder(True).manifest_pulled(CTX, "r", manifest).to_json()["target"]
    assert [ref["digest"] for ref in target["references"]] == [str(CONFIG), str(LAYER)]
    assert target["references"][0] == {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "digest": str(CONFIG),
        "size": 6,
    }


def test_a_pull_answered_from_a_descriptor_has_no_references() -> None:
    manifest = image_manifest()
    from_descriptor = builder(True).manifest_pulled(CTX, "r", manifest.descriptor(), "v1")
    from_manifest = builder(True).manifest_pulled(CTX, "r", manifest, "v1")
    full = from_manifest.to_json()["target"]
    del full["references"]
    assert from_descriptor.to_json()["target"] == full


def test_an_index_references_its_manifests_with_platforms() -> None:
    child = Descriptor(OCI_MANIFEST, LAYER, 5, platform={"architecture": "arm64", "os": "linux"})
    raw = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child.to_json()]}
    ).encode()
    target = builder(True).manifest_pushed(CTX, "r", Manifest.parse(raw)).to_json()["target"]
    assert target["mediaType"] == OCI_INDEX
    assert target["references"] == [child.to_json()]
    assert "tag" not in target


def test_empty_records_leave_their_optional_fields_out() -> None:
    event = Event(
        id="e",
        timestamp=MOMENT,
        action="pull",
        target=Target(repository="r"),
        request=RequestRecord(id="", method="GET"),
    )
    doc = event.to_json()
    assert doc["request"] == {"id": "", "method": "GET", "useragent": ""}
    assert doc["actor"] == {}
    assert doc["source"] == {}
    assert (
        "url"
        not in EventBuilder(SOURCE)
        .blob_pulled(RequestContext(REQUEST), "r", LAYER, 1)
        .to_json()["target"]
    )
    assert SourceRecord("h:5000", "id-1").to_json() == {"addr": "h:5000", "instanceID": "id-1"}


def test_timestamps_are_rfc3339_utc_with_trimmed_fractions() -> None:
    assert format_timestamp(MOMENT) == "2006-01-02T15:04:05Z"
    assert format_timestamp(MOMENT.replace(microsecond=120000)) == "2006-01-02T15:04:05.12Z"
    pacific = timezone(timedelta(hours=-8))
    local = datetime(2016, 3, 9, 14, 44, 26, 402973, tzinfo=pacific)
    assert format_timestamp(local) == "2016-03-09T22:44:26.402973Z"


def scope(headers: list[tuple[bytes, bytes]], client: tuple[str, int] | None) -> dict[str, object]:
    return {"type": "http", "method": "GET", "headers": headers, "client": client}


def test_the_request_record_comes_from_the_asgi_scope() -> None:
    record = request_record(
        scope([(b"host", b"mirror:5000"), (b"user-agent", b"docker/27")], ("10.0.0.9", 4242)),
        "req-1",
    )
    assert record == RequestRecord(
        id="req-1", method="GET", addr="10.0.0.9:4242", host="mirror:5000", useragent="docker/27"
    )


def test_the_client_address_prefers_what_a_proxy_forwarded() -> None:
    forwarded = [(b"X-Forwarded-For", b" 203.0.113.7, 10.0.0.1"), (b"x-real-ip", b"198.51.100.2")]
    assert client_addr(scope(forwarded, ("10.0.0.1", 1))) == "203.0.113.7"
    assert client_addr(scope([(b"x-real-ip", b"198.51.100.2")], ("10.0.0.1", 1))) == "198.51.100.2"
    assert client_addr(scope([], ("::1", 5000))) == "[::1]:5000"
    assert client_addr(scope([], None)) == ""


def test_filters_ignore_media_types_and_actions_independently() -> None:
    make = builder()
    blob = make.blob_pulled(CTX, "r", LAYER, 5)
    manifest = make.manifest_pushed(CTX, "r", image_manifest())
    deleted = make.tag_deleted(CTX, "r", "t")
    by_type = EventFilter(ignored_media_types=frozenset({BLOB_MEDIA_TYPE}))
    assert [by_type.accepts(e) for e in (blob, manifest, deleted)] == [False, True, True]
    by_action = EventFilter(ignored_actions=frozenset({"pull", "delete"}))
    assert [by_action.accepts(e) for e in (blob, manifest, deleted)] == [False, True, False]
    assert all(EventFilter().accepts(e) for e in (blob, manifest, deleted))
