"""Log formats (text, json, logstash) with fields and request ids, and the request edge:
ids taken or made, echoed, bound for the request's log lines and upstream requests."""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from mirror import logs, requestid
from mirror.proxy.app import standalone_app
from mirror.proxy.edge import RequestEdge
from mirror.registryhttp.client import DistributionClient
from mirror.store.drivers import create_driver
from tests.support.mirrorproc import run_mirror

pytestmark = pytest.mark.anyio


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("mirror.test", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    logs.RequestIdFilter().filter(made)
    return made


def test_json_lines_carry_level_logger_message_fields_and_request_id() -> None:
    formatter = logs.formatter("json", (("service", "registry"), ("replica", 2)))
    token = requestid.bind("req-1")
    try:
        line = formatter.format(record("pulled %s", "alpine", digest="sha256:x"))
    finally:
        requestid.unbind(token)
    doc = json.loads(line)
    assert doc["msg"] == "pulled alpine"
    assert (doc["level"], doc["logger"], doc["request_id"]) == ("warning", "mirror.test", "req-1")
    assert (doc["service"], doc["replica"], doc["digest"]) == ("registry", 2, "sha256:x")
    assert doc["time"].endswith("+00:00")
    assert "\n" not in line


def test_exceptions_stay_on_one_json_line() -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        import sys

        made = record()
        made.exc_info = sys.exc_info()
    line = logs.formatter("json").format(made)
    assert "\n" not in line
    assert "RuntimeError" in json.loads(line)["exc_info"]


def test_logstash_events() -> None:
    doc = json.loads(logs.formatter("logstash", (("service", "registry"),)).format(record()))
    assert doc["@version"] == "1"
    assert doc["message"] == "hello %s"
    assert (doc["level"], doc["logger_name"], doc["service"]) == (
        "warning",
        "mirror.test",
        "registry",
    )
    assert "@timestamp" in doc
    assert "request_id" not in doc  # outside a request


def test_text_lines_end_with_the_request_id_and_fields() -> None:
    token = requestid.bind("abc")
    try:
        line = logs.formatter("text", (("service", "my registry"),)).format(record())
    finally:
        requestid.unbind(token)
    assert line.endswith('WARNING mirror.test: hello %s request_id=abc service="my registry"')


def test_an_unknown_formatter_is_refused() -> None:
    with pytest.raises(ValueError, match="one of text, json, logstash"):
        logs.dict_config("xml")


@pytest.fixture
def captured(tmp_path: Path) -> Iterator[Path]:
    """mirror's loggers writing JSON lines to a file for the test's duration."""
    path = tmp_path / "log.jsonl"
    config = logs.dict_config("json", (("service", "t"),), "debug", loggers=("mirror",))
    config["handlers"]["mirror"] = {
        "class": "logging.FileHandler",
        "filename": str(path),
        "formatter": "mirror",
        "filters": ["request_id"],
    }
    config["root"] = {"handlers": [], "level": "WARNING"}
    logging.config.dictConfig(config)
    yield path
    logging.getLogger("mirror").handlers.clear()
    logging.getLogger("mirror").propagate = True


def json_lines(path: Path) -> list[dict[str, object]]:
    for handler in logging.getLogger("mirror").handlers:
        handler.flush()
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_the_edge_makes_takes_and_echoes_ids_and_logs_each_request(captured: Path) -> None:
    app = RequestEdge(standalone_app(create_driver("inmemory", {})), access_log=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as client:
        made = await client.get("/v2/")
        taken = await client.get("/v2/", headers={"X-Request-Id": "client-id.1"})
        refused = await client.get("/v2/", headers={"X-Request-Id": "bad id\twith spaces"})
        missing = await client.get("/v2/a/b/manifests/latest")
    assert made.headers["x-request-id"] != refused.headers["x-request-id"]
    assert len(made.headers["x-request-id"]) == 36
    assert taken.headers["x-request-id"] == "client-id.1"
    assert requestid.sane(refused.headers["x-request-id"]) == refused.headers["x-request-id"]
    assert refused.headers["x-request-id"] != "bad id\twith spaces"
    access = [line for line in json_lines(captured) if line["logger"] == "mirror.access"]
    assert [line["request_id"] for line in access] == [
        made.headers["x-request-id"],
        "client-id.1",
        refused.headers["x-request-id"],
        missing.headers["x-request-id"],
    ]
    assert access[3]["status"] == 404
    assert access[3]["uri"] == "/v2/a/b/manifests/latest"
    assert access[0]["service"] == "t"


async def test_the_app_alone_still_gives_each_request_an_id() -> None:
    app = standalone_app(create_driver("inmemory", {}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as client:
        first = await client.get("/v2/")
        second = await client.get("/v2/", headers={"X-Request-Id": "mine"})
    assert requestid.sane(first.headers["x-request-id"])
    assert second.headers["x-request-id"] == "mine"


async def test_upstream_requests_carry_the_request_id() -> None:
    seen: list[str | None] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-request-id"))
        return httpx.Response(200, json={"name": "library/alpine", "tags": ["3"]})

    client = DistributionClient(
        "http://upstream.test", name="upstream.test", transport=httpx.MockTransport(upstream)
    )
    try:
        token = requestid.bind("req-upstream")
        try:
            await client.list_tags("library/alpine")
        finally:
            requestid.unbind(token)
        await client.list_tags("library/alpine")
    finally:
        await client.aclose()
    assert seen == ["req-upstream", None]


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_json_logs_of_a_served_mirror_parse_line_by_line(server: str, tmp_path: Path) -> None:
    log = {"level": "info", "formatter": "json", "fields": {"service": "registry"}}
    with run_mirror(tmp_path, server=server, extra={"log": log}) as mirror:
        with httpx.Client(base_url=mirror.url, trust_env=False, timeout=10) as client:
            answer = client.get("/v2/", headers={"X-Request-Id": "probe-42"})
            missing = client.get("/v2/nothing/here/manifests/latest")
        assert answer.headers["x-request-id"] == "probe-42"
    lines = mirror.log_path.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line is JSON
    assert all(doc["service"] == "registry" for doc in parsed)
    access = {doc["request_id"]: doc for doc in parsed if doc.get("logger") == "mirror.access"}
    assert access["probe-42"]["status"] == 200
    assert access[missing.headers["x-request-id"]]["status"] == 404
    assert yaml.safe_load(mirror.config_path.read_text())["log"]["formatter"] == "json"


def test_new_request_ids_are_distinct_version_4_uuids() -> None:
    import uuid

    made = {requestid.new() for _ in range(1000)}
    assert len(made) == 1000
    for rid in made:
        parsed = uuid.UUID(rid)
        assert str(parsed) == rid
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_text_times_match_the_standard_formatter_across_seconds() -> None:
    ours, standard = logs.TextFormatter(), logging.Formatter()
    for created in (1_000_000.001, 1_000_000.999, 1_000_001.0, 999_999.5, 1_000_001.25):
        record = logging.LogRecord("mirror", logging.INFO, __file__, 1, "m", None, None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.formatTime(record) == standard.formatTime(record)
        assert ours.formatTime(record, "%H") == standard.formatTime(record, "%H")


def test_forked_workers_make_different_request_ids() -> None:
    """Workers are forked from one process: each must not repeat the other's ids."""
    import os

    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(write, requestid.new().encode())
        os._exit(0)
    ours = requestid.new()
    os.waitpid(child, 0)
    theirs = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    assert len(theirs) == 36
    assert theirs != ours
