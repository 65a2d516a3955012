"""The shared access decisions: the htpasswd controller, the token service, the app.

The token service issues a token for exactly the one access in question; the token
controller, trusting the service's certificate, must then allow it or not, exactly as
the policy decides (and as the htpasswd controller does with the same policy).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import bcrypt
import httpx
import pytest
import yaml
from starlette.types import Receive, Scope, Send

from mirror.auth.access import Access, AuthRequest
from mirror.auth.challenge import Challenge
from mirror.auth.controller import AccessController
from mirror.auth.htpasswd import HtpasswdAccessController
from mirror.auth.policyfile import parse_policy_yaml
from mirror.auth.token import TokenAccessController
from mirror.auth.tokenservice import create_token_service
from mirror.config import parse_config
from mirror.proxy.authenticating import Authenticating, authentication
from tests.auth_decisions import POLICY, USERS, Decider, decision_params

pytestmark = pytest.mark.anyio
SERVICE = "registry.test"


def password(user: str) -> str:
    return f"{user}-password"


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password(user)}".encode()).decode()


async def allowed(controller: AccessController, header: str | None, access: Access) -> bool:
    try:
        await controller.authorized(AuthRequest(header), [access])
    except Challenge:
        return False
    return True


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "htpasswd"
    lines = [
        f"{u}:{bcrypt.hashpw(password(u).encode(), bcrypt.gensalt(4)).decode()}" for u in USERS
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def via_htpasswd(htpasswd: Path, tmp_path: Path) -> Decider:
    controller = HtpasswdAccessController(
        realm="r", path=htpasswd, policy=parse_policy_yaml(POLICY.encode())
    )

    async def decide(user: str | None, access: Access) -> bool:
        return await allowed(controller, basic(user) if user else None, access)

    return decide


def via_token_service(htpasswd: Path, tmp_path: Path) -> Decider:
    app = create_token_service(
        issuer="mirror-test",
        service=SERVICE,
        htpasswd=htpasswd,
        key_directory=tmp_path / "keys",
        policy=parse_policy_yaml(POLICY.encode()),
    )
    controller = TokenAccessController(
        realm="http://auth.test/token",
        service=SERVICE,
        issuer="mirror-test",
        rootcertbundle=str(tmp_path / "keys" / "token-cert.pem"),
    )
    transport = httpx.ASGITransport(app=app)

    async def decide(user: str | None, access: Access) -> bool:
        headers = {"Authorization": basic(user)} if user else {}
        params = {"service": SERVICE, "scope": access.scope}
        async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as client:
            response = await client.get("/token", params=params, headers=headers)
        assert response.status_code == 200, response.text  # never an error, just less access
        return await allowed(controller, f"Bearer {response.json()['token']}", access)

    return decide


# The request of the API that needs exactly this action (push alone has none: a push
# also reads, so a POST needs pull and push).
_REQUESTS = {"pull": ("GET", "/v2/{name}/tags/list"), "delete": ("DELETE", "/v2/{name}/blobs/x")}


def via_the_app(htpasswd: Path, tmp_path: Path) -> Decider:
    """The wiring `create_app` uses: the `auth` block, checked before dispatch."""
    block = {"htpasswd": {"realm": "r", "path": str(htpasswd)}, "policy": yaml.safe_load(POLICY)}
    text = json.dumps({"storage": {"inmemory": {}}, "auth": block})
    controller = authentication(parse_config(text, {}), None).controller
    assert controller is not None

    async def reached(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = Authenticating(reached, controller, None, headers={})
    transport = httpx.ASGITransport(app=app)

    async def decide(user: str | None, access: Access) -> bool:
        if access.type == "registry" and access.name == "catalog":
            method, path = "GET", "/v2/_catalog"
        elif access.type == "repository" and access.action in _REQUESTS:
            method, template = _REQUESTS[access.action]
            path = template.format(name=access.name)
        else:
            pytest.skip(f"no API request needs {access.scope} alone")
        headers = {"Authorization": basic(user)} if user else {}
        async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
            response = await client.request(method, path, headers=headers)
        assert response.status_code in (204, 401), response.text
        return response.status_code == 204

    return decide


DECIDERS: dict[str, Callable[[Path, Path], Decider]] = {
    "htpasswd": via_htpasswd,
    "token-service": via_token_service,
    "app": via_the_app,
}


@pytest.fixture(params=list(DECIDERS))
async def decide(
    request: pytest.FixtureRequest, htpasswd: Path, tmp_path: Path
) -> AsyncIterator[Decider]:
    yield DECIDERS[request.param](htpasswd, tmp_path)


@pytest.mark.parametrize(("user", "access", "expected"), decision_params())
async def test_decision(decide: Decider, user: str | None, access: Access, expected: bool) -> None:
    assert await decide(user, access) is expected
