"""Access control wired into the app: every API request checked before dispatch.

htpasswd with and without a policy, the mirror's anonymous pull, pushes into proxied
repositories, `?ns=`, the catalog, mounts, the endpoints outside the API, the 401's
envelope and headers, and the actor of notifications.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from mirror.config import parse_config
from mirror.proxy.authenticating import DECISION_TTL, Authenticating, authentication
from tests.events_helpers import eventually
from tests.support.authregistry import (
    AuthRegistry,
    auth_registry,
    basic,
    registry_config,
    write_htpasswd,
)
from tests.support.notified import endpoint, notified_registry
from tests.support.oci import digest_of, push_blob, push_image
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.anyio

POLICY: dict[str, Any] = {
    "groups": {"team": ["alice", "bob"]},
    "catalog": ["user:alice"],
    "rules": [
        {"repository": "**", "allow": {"authenticated": ["pull"]}},
        {
            "repository": "team/**",
            "allow": {
                "authenticated": ["pull"],
                "group:team": ["pull", "push"],
                "user:alice": ["*"],
            },
        },
        {"repository": "public/**", "allow": {"anonymous": ["pull"], "user:alice": ["*"]}},
        {"repository": "upstream.test/**", "allow": {"anonymous": ["pull"]}},
        {"repository": "secret/**", "allow": {"user:alice": ["*"]}},
    ],
}


def htpasswd_auth(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    path = write_htpasswd(tmp_path / "htpasswd")
    return {"htpasswd": {"realm": "mirror realm", "path": str(path)}, **extra}


def as_user(registry: AuthRegistry, user: str, password: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=registry.client._transport,
        base_url=str(registry.client.base_url),
        headers=basic(user, password),
    )


@asynccontextmanager
async def users(registry: AuthRegistry, *names: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    clients = [as_user(registry, name) for name in names]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


def assert_unauthorized(
    response: httpx.Response, missing: list[tuple[str, str, str]] | None = None
) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Basic realm="mirror realm"'
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    assert response.headers["content-type"].startswith("application/json")
    if response.request.method == "HEAD":
        assert response.content == b""
        return
    (error,) = response.json()["errors"]
    assert error["code"] == "UNAUTHORIZED"
    if missing is not None:
        assert [(d["Type"], d["Name"], d["Action"]) for d in error["detail"]] == missing


async def test_without_a_policy_any_valid_user_may_do_everything(tmp_path: Path) -> None:
    async with auth_registry(tmp_path / "root", htpasswd_auth(tmp_path)) as registry:
        anonymous = registry.client
        base = await anonymous.get("/v2/")
        assert_unauthorized(base)
        assert "detail" not in base.json()["errors"][0]
        assert_unauthorized(await anonymous.head("/v2/"))
        async with users(registry, "bob") as (bob,):
            assert (await bob.get("/v2/")).status_code == 200
            _, digest = await push_image(bob, "any/app", "v1", layers=1)
            assert (await bob.get("/v2/any/app/manifests/v1")).status_code == 200
            assert (await bob.get("/v2/_catalog")).json() == {"repositories": ["any/app"]}
            assert (await bob.delete(f"/v2/any/app/manifests/{digest}")).status_code == 202
        pulled = await anonymous.get("/v2/any/app/manifests/v1")
        assert_unauthorized(pulled, [("repository", "any/app", "pull")])
        wrong = as_user(registry, "bob", "not-his-password")
        assert_unauthorized(await wrong.get("/v2/"))
        await wrong.aclose()
        unknown = as_user(registry, "alice", "x")
        unknown.headers["Authorization"] = "Basic bWFsbG9yeTp4"  # mallory:x, not a user
        assert_unauthorized(await unknown.get("/v2/"))
        await unknown.aclose()


async def test_the_policy_decides_each_action(tmp_path: Path) -> None:
    auth = htpasswd_auth(tmp_path, policy=POLICY)
    async with (
        auth_registry(tmp_path / "root", auth) as registry,
        users(registry, "alice", "bob", "carol") as (alice, bob, carol),
    ):
        anonymous = registry.client
        _, digest = await push_image(bob, "team/app", "v1", layers=1)
        layer = json.loads((await bob.get("/v2/team/app/manifests/v1")).content)["layers"][0]
        # carol may pull everything, push nothing.
        assert (await carol.get("/v2/team/app/manifests/v1")).status_code == 200
        pushed = await carol.post("/v2/team/app/blobs/uploads/")
        assert_unauthorized(pushed, [("repository", "team/app", "push")])
        # bob pushes but may not delete; alice may.
        deleted = await bob.delete(f"/v2/team/app/manifests/{digest}")
        assert_unauthorized(deleted, [("repository", "team/app", "delete")])
        # Anonymous: nothing outside public/ (a protected repository is not readable).
        assert_unauthorized(
            await anonymous.get("/v2/team/app/manifests/v1"), [("repository", "team/app", "pull")]
        )
        assert_unauthorized(await anonymous.head(f"/v2/team/app/blobs/{layer['digest']}"))
        assert_unauthorized(await anonymous.get("/v2/team/app/tags/list"))
        await push_image(alice, "public/tool", "v1", layers=1)
        assert (await anonymous.get("/v2/public/tool/manifests/v1")).status_code == 200
        # An empty pair (what containers/image sends without credentials) is anonymous.
        empty = {"Authorization": "Basic Og=="}
        assert (await anonymous.get("/v2/public/tool/manifests/v1", headers=empty)).is_success
        assert_unauthorized(await anonymous.get("/v2/team/app/manifests/v1", headers=empty))
        assert_unauthorized(await anonymous.get("/v2/", headers=empty))
        assert_unauthorized(
            await anonymous.put("/v2/public/tool/manifests/v2", content=b"{}"),
            [("repository", "public/tool", "push")],
        )
        # The catalog: only the principals the policy lists.
        assert_unauthorized(await bob.get("/v2/_catalog"), [("registry", "catalog", "*")])
        assert (await alice.get("/v2/_catalog")).status_code == 200
        # A mount also needs pull on the source.
        mount = f"/v2/team/copy/blobs/uploads/?mount={layer['digest']}&from=secret/x"
        assert_unauthorized(await bob.post(mount), [("repository", "secret/x", "pull")])
        ok = await bob.post(f"/v2/team/copy/blobs/uploads/?mount={layer['digest']}&from=team/app")
        assert ok.status_code == 201
        assert (await alice.delete(f"/v2/team/app/manifests/{digest}")).status_code == 202


async def test_endpoints_outside_the_api_are_not_behind_auth(tmp_path: Path) -> None:
    async with auth_registry(tmp_path / "root", htpasswd_auth(tmp_path)) as registry:
        for path in ("/metrics", "/livez", "/readyz"):
            assert (await registry.client.get(path)).status_code == 200, path
        assert (await registry.client.get("/nothing")).status_code == 404
        # An unknown API path is 404 whoever asks; a method a route lacks is checked first.
        assert (await registry.client.get("/v2/a/b/unknown/x")).status_code == 404
        assert_unauthorized(await registry.client.post("/v2/a/manifests/v1"))


async def test_a_refused_upload_body_leaves_the_connection_usable_or_closed(
    tmp_path: Path,
) -> None:
    async with auth_registry(tmp_path / "root", htpasswd_auth(tmp_path)) as registry:
        data = b"x" * 4096
        refused = await registry.client.post(
            f"/v2/a/blobs/uploads/?digest={digest_of(data)}", content=data
        )
        assert_unauthorized(refused)


async def test_anonymous_pull_of_upstream_content_and_pushes_into_proxied_repositories(
    tmp_path: Path,
) -> None:
    auth = htpasswd_auth(tmp_path, anonymouspull=True)
    async with (
        auth_registry(tmp_path / "root", auth, proxy=True) as registry,
        users(registry, "bob") as (bob,),
    ):
        await push_image(registry.upstream, "library/alpine", "3", layers=1)
        anonymous = registry.client
        for path in (
            "/v2/upstream.test/library/alpine/manifests/3",
            "/v2/library/alpine/manifests/3?ns=upstream.test",
        ):
            assert (await anonymous.get(path)).status_code == 200, path
        # Local repositories need a login, for pulls too.
        assert_unauthorized(await anonymous.get("/v2/local/app/manifests/v1"))
        await push_image(bob, "local/app", "v1", layers=1)
        assert (await bob.get("/v2/local/app/manifests/v1")).status_code == 200
        # Pushes into a proxied repository stay DENIED, whoever may push by the policy.
        denied = await bob.post("/v2/upstream.test/library/alpine/blobs/uploads/")
        assert denied.status_code == 403
        assert denied.json()["errors"][0]["code"] == "DENIED"
        assert_unauthorized(
            await anonymous.post("/v2/upstream.test/library/alpine/blobs/uploads/"),
            [("repository", "upstream.test/library/alpine", "push")],
        )


async def test_a_namespace_is_judged_as_the_repository_it_selects(tmp_path: Path) -> None:
    # "local/app" is a local repository; "local/app?ns=upstream.test" upstream content.
    policy = {
        "rules": [
            {"repository": "local/**", "allow": {"anonymous": ["pull"]}},
            {"repository": "upstream.test/**", "allow": {"user:alice": ["pull"]}},
        ]
    }
    auth = htpasswd_auth(tmp_path, policy=policy)
    async with (
        auth_registry(tmp_path / "root", auth, proxy=True) as registry,
        users(registry, "alice") as (alice,),
    ):
        await push_image(registry.upstream, "local/app", "v1", layers=1)
        sneaky = await registry.client.get("/v2/local/app/manifests/v1?ns=upstream.test")
        assert_unauthorized(sneaky, [("repository", "upstream.test/local/app", "pull")])
        allowed = await alice.get("/v2/local/app/manifests/v1?ns=upstream.test")
        assert allowed.status_code == 200


async def test_notifications_name_the_authenticated_user(tmp_path: Path) -> None:
    path = write_htpasswd(tmp_path / "htpasswd")
    auth = {"htpasswd": {"realm": "r", "path": str(path)}}
    async with (
        WebhookReceiver() as sink,
        notified_registry(
            tmp_path / "root", [endpoint("sink", sink.url)], extra={"auth": auth}
        ) as registry,
    ):
        client = registry.client
        client.headers.update(basic("carol"))
        await push_blob(client, "team/app", b"layer")
        await eventually(lambda: len(sink.events()) >= 1, what="the push event")
    (event,) = sink.events()
    assert event["action"] == "push"
    assert event["actor"] == {"name": "carol"}


async def test_a_grant_is_remembered_for_a_second_then_checked_again(tmp_path: Path) -> None:
    config = parse_config(
        json.dumps(registry_config(tmp_path / "root", htpasswd_auth(tmp_path))), {}
    )
    controller = authentication(config, None).controller
    assert controller is not None
    now = [100.0]

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = Authenticating(ok, controller, None, headers={}, clock=lambda: now[0])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://r", headers=basic("bob")
    ) as bob:
        path = "/v2/team/app/manifests/v1"
        assert (await bob.get(path)).status_code == 200
        write_htpasswd(tmp_path / "htpasswd", {"alice": "wonderland"})  # bob removed
        now[0] += 0.5
        assert (await bob.get(path)).status_code == 200  # remembered
        now[0] += DECISION_TTL
        assert (await bob.get(path)).status_code == 401


async def test_silly_lets_any_header_in_and_challenges_without_one(tmp_path: Path) -> None:
    auth = {"silly": {"realm": "https://auth.test/token", "service": "dev"}}
    async with auth_registry(tmp_path / "root", auth) as registry:
        refused = await registry.client.get("/v2/any/app/tags/list")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == (
            'Bearer realm="https://auth.test/token",service="dev",scope="repository:any/app:pull"'
        )
        anything = {"Authorization": "whatever"}
        assert (await registry.client.get("/v2/", headers=anything)).status_code == 200


async def test_the_dashboard_shows_what_the_configured_policy_lets_one_pull(
    tmp_path: Path,
) -> None:
    auth = htpasswd_auth(tmp_path, policy=POLICY)
    async with (
        auth_registry(tmp_path / "root", auth) as registry,
        users(registry, "alice") as (alice,),
    ):
        await push_image(alice, "public/tool", "v1", layers=1)
        await push_image(alice, "secret/plans", "v1", layers=1)
        html = {"Accept": "text/html"}
        anonymous = (await registry.client.get("/ui/", headers=html)).text
        assert "public/tool" in anonymous and "secret/plans" not in anonymous
        theirs = (await alice.get("/ui/", headers=html)).text
        assert "public/tool" in theirs and "secret/plans" in theirs
