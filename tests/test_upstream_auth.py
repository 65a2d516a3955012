"""RegistryAuth and the WWW-Authenticate parser, through a MockTransport token endpoint."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from mirror.registryhttp.auth import Challenge, RegistryAuth, basic_credentials, parse_challenges
from mirror.registryhttp.errors import UpstreamAuthError, UpstreamRateLimited

REALM = "https://auth.test/token"
SCOPE = "repository:library/alpine:pull"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenServer:
    """Counts token requests and answers each with `reply(request)`."""

    def __init__(self, reply: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.reply = reply or (lambda r: httpx.Response(200, json={"token": self.next_token()}))

    def next_token(self) -> str:
        return f"tok-{len(self.requests)}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)


def bearer(scope: str = SCOPE, realm: str = REALM) -> list[Challenge]:
    return [Challenge("bearer", {"realm": realm, "service": "registry.test", "scope": scope})]


def make_auth(
    server: TokenServer,
    clock: Clock | None = None,
    username: str | None = None,
    password: str | None = None,
    secure: bool = False,
) -> tuple[RegistryAuth, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(server))
    auth = RegistryAuth(
        client,
        name="test",
        clock=clock or Clock(),
        username=username,
        password=password,
        secure=secure,
    )
    return auth, client


# --- parser ---------------------------------------------------------------------------------


def test_parse_bearer_with_quoted_commas() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/alpine:pull,push"'
    )
    (challenge,) = parse_challenges([header])
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/alpine:pull,push",
    }


def test_parse_several_challenges_in_one_and_several_headers() -> None:
    found = parse_challenges(
        [
            'Basic realm="Registry Realm", charset="UTF-8", Bearer realm="https://a/t",'
            " service=svc",
            'Negotiate abc==, Bearer realm="https://b/t"',
        ]
    )
    assert [c.scheme for c in found] == ["basic", "bearer", "negotiate", "bearer"]
    assert found[0].params == {"realm": "Registry Realm", "charset": "UTF-8"}
    assert found[1].params == {"realm": "https://a/t", "service": "svc"}
    assert found[3].params == {"realm": "https://b/t"}


def test_parse_escapes_case_and_spacing() -> None:
    (challenge,) = parse_challenges(['BEARER  Realm = "a\\"b,c" ,  Error="invalid_token"'])
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": 'a"b,c', "error": "invalid_token"}


def test_parse_garbage_never_raises() -> None:
    for junk in ["", ",,,", '="x"', '"unterminated', 'Bearer realm="open', "= = =", "Bearer ,,"]:
        parse_challenges([junk])
    (challenge,) = parse_challenges(['Bearer realm="open'])
    assert challenge.params == {"realm": "open"}
    assert parse_challenges(['"quoted" Basic']) == [Challenge("basic")]


# --- token flow -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_anonymous_token_request_carries_service_and_scope() -> None:
    server = TokenServer()
    auth, client = make_auth(server)
    async with client:
        header = await auth.answer(bearer(), SCOPE, None)
    assert header == "Bearer tok-1"
    (request,) = server.requests
    assert request.url.host == "auth.test"
    assert request.url.params.get_list("service") == ["registry.test"]
    assert request.url.params.get_list("scope") == [SCOPE]
    assert "account" not in request.url.params
    assert "authorization" not in request.headers


@pytest.mark.anyio
async def test_credentials_go_to_realm_and_scopes_split() -> None:
    server = TokenServer()
    auth, client = make_auth(server, username="alice", password="s3cret")
    async with client:
        await auth.answer(bearer(scope=f"{SCOPE} repository:other:pull"), SCOPE, None)
    (request,) = server.requests
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert request.headers["authorization"] == expected == basic_credentials("alice", "s3cret")
    assert request.url.params.get_list("scope") == [SCOPE, "repository:other:pull"]
    assert request.url.params["account"] == "alice"


@pytest.mark.anyio
async def test_realm_query_is_kept_and_key_used_when_challenge_has_no_scope() -> None:
    server = TokenServer()
    auth, client = make_auth(server)
    async with client:
        await auth.answer([Challenge("bearer", {"realm": REALM + "?tenant=7"})], SCOPE, None)
    params = server.requests[0].url.params
    assert params["tenant"] == "7"
    assert params.get_list("scope") == [SCOPE]
    assert "service" not in params


@pytest.mark.anyio
async def test_token_is_cached_per_scope_until_shortly_before_expiry() -> None:
    clock = Clock()
    server = TokenServer(
        lambda r: httpx.Response(200, json={"token": server.next_token(), "expires_in": 300})
    )
    auth, client = make_auth(server, clock)
    async with client:
        assert auth.authorization(SCOPE) is None
        await auth.answer(bearer(), SCOPE, None)
        assert auth.authorization(SCOPE) == "Bearer tok-1"
        assert auth.authorization("repository:other:pull") is None
        clock.now += 289  # 300 s minus the 10 s refresh margin
        assert auth.authorization(SCOPE) == "Bearer tok-1"
        clock.now += 2
        assert auth.authorization(SCOPE) is None
        assert await auth.answer(bearer(), SCOPE, None) == "Bearer tok-2"
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_access_token_and_default_lifetime() -> None:
    clock = Clock()
    server = TokenServer(lambda r: httpx.Response(200, json={"access_token": "at-1"}))
    auth, client = make_auth(server, clock)
    async with client:
        assert await auth.answer(bearer(), SCOPE, None) == "Bearer at-1"
        clock.now += 53  # default 60 s, refreshed 6 s early
        assert auth.authorization(SCOPE) == "Bearer at-1"
        clock.now += 2
        assert auth.authorization(SCOPE) is None


@pytest.mark.anyio
async def test_issued_at_in_the_past_shortens_the_lifetime() -> None:
    clock = Clock()
    issued = datetime.fromtimestamp(time.time() - 50, UTC).isoformat().replace("+00:00", "Z")
    reply = {"token": "t", "expires_in": 60, "issued_at": issued}
    server = TokenServer(lambda r: httpx.Response(200, json=reply))
    auth, client = make_auth(server, clock)
    async with client:
        await auth.answer(bearer(), SCOPE, None)
        clock.now += 8.5  # about 10 s were left, refreshed 1 s early
        assert auth.authorization(SCOPE) == "Bearer t"
        clock.now += 1
        assert auth.authorization(SCOPE) is None


@pytest.mark.anyio
async def test_issued_at_in_the_future_or_malformed_is_ignored() -> None:
    for issued in ["2999-01-01T00:00:00Z", "yesterday", 12]:
        clock = Clock()
        reply = {"token": "t", "expires_in": 100, "issued_at": issued}

        def answer(request: httpx.Request, reply: object = reply) -> httpx.Response:
            return httpx.Response(200, json=reply)

        server = TokenServer(answer)
        auth, client = make_auth(server, clock)
        async with client:
            await auth.answer(bearer(), SCOPE, None)
            clock.now += 89
            assert auth.authorization(SCOPE) == "Bearer t"


@pytest.mark.anyio
async def test_rejected_token_is_replaced_and_fresh_one_reused() -> None:
    server = TokenServer()
    auth, client = make_auth(server)
    async with client:
        first = await auth.answer(bearer(), SCOPE, None)
        # The registry refused tok-1: a new token is fetched, not the cached one reused.
        second = await auth.answer(bearer(), SCOPE, first)
        assert second == "Bearer tok-2"
        # A request that was refused with tok-1 while tok-2 arrived reuses tok-2.
        assert await auth.answer(bearer(), SCOPE, first) == "Bearer tok-2"
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_concurrent_requests_share_one_token_fetch() -> None:
    server = TokenServer()

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return server(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    auth = RegistryAuth(client)
    async with client:
        headers = await asyncio.gather(*(auth.answer(bearer(), SCOPE, None) for _ in range(10)))
        other = await auth.answer(bearer("repository:b:pull"), "repository:b:pull", None)
    assert set(headers) == {"Bearer tok-1"}
    assert other == "Bearer tok-2"
    assert len(server.requests) == 2
    assert len(auth._flights) == 0


@pytest.mark.anyio
async def test_requests_queued_behind_a_failed_fetch_share_its_failure() -> None:
    calls = 0

    async def hanging(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise httpx.ConnectTimeout("timed out", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(hanging))
    auth = RegistryAuth(client)
    async with client:
        results = await asyncio.gather(
            *(auth.answer(bearer(), SCOPE, None) for _ in range(5)), return_exceptions=True
        )
        assert calls == 1
        assert all(isinstance(r, UpstreamAuthError) for r in results)
        assert len({id(r) for r in results}) == 5
        # The failure is not remembered once the burst is over.
        with pytest.raises(UpstreamAuthError, match="ConnectTimeout"):
            await auth.answer(bearer(), SCOPE, None)
    assert calls == 2
    assert len(auth._flights) == 0


@pytest.mark.anyio
async def test_queued_requests_share_a_rate_limit_from_the_token_endpoint() -> None:
    async def limited(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.02)
        return httpx.Response(429, headers={"retry-after": "60"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(limited))
    auth = RegistryAuth(client)
    async with client:
        results = await asyncio.gather(
            *(auth.answer(bearer(), SCOPE, None) for _ in range(3)), return_exceptions=True
        )
    assert all(isinstance(r, UpstreamRateLimited) and r.retry_after == "60" for r in results)


@pytest.mark.anyio
async def test_credentials_are_never_sent_to_a_plain_http_realm_of_an_https_registry() -> None:
    server = TokenServer()
    auth, client = make_auth(server, username="a", password="b", secure=True)
    async with client:
        with pytest.raises(UpstreamAuthError, match="plain-http"):
            await auth.answer(bearer(realm="http://auth.test/token"), SCOPE, None)
        assert server.requests == []
        # Anonymous token requests carry nothing secret, and an https realm is fine.
        anonymous, other = make_auth(server, secure=True)
        async with other:
            await anonymous.answer(bearer(realm="http://auth.test/token"), SCOPE, None)
        await auth.answer(bearer(), SCOPE, None)
    assert len(server.requests) == 2


@pytest.mark.anyio
async def test_token_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import mirror.registryhttp.auth as module

    monkeypatch.setattr(module, "_MAX_CACHED_TOKENS", 3)
    clock = Clock()
    server = TokenServer()
    auth, client = make_auth(server, clock)
    async with client:
        await auth.answer(bearer("a"), "a", None)
        clock.now += 100  # "a" is now stale and is pruned first
        for scope in ["b", "c", "d", "e"]:
            await auth.answer(bearer(scope), scope, None)
    assert list(auth._tokens) == ["c", "d", "e"]


# --- Basic ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_basic_challenge_uses_credentials_and_then_sends_them_up_front() -> None:
    auth, client = make_auth(TokenServer(), username="bob", password="pw")
    basic = basic_credentials("bob", "pw")
    async with client:
        assert auth.authorization("") is None
        assert await auth.answer([Challenge("basic", {"realm": "r"})], "", None) == basic
        assert auth.authorization(SCOPE) == basic
        with pytest.raises(UpstreamAuthError, match="rejected") as caught:
            await auth.answer([Challenge("basic")], "", basic)
    assert caught.value.status == 401


@pytest.mark.anyio
async def test_basic_challenge_without_credentials_or_unknown_scheme() -> None:
    auth, client = make_auth(TokenServer())
    async with client:
        with pytest.raises(UpstreamAuthError, match="requires credentials"):
            await auth.answer([Challenge("basic")], "", None)
        with pytest.raises(UpstreamAuthError, match="usable"):
            await auth.answer([Challenge("negotiate"), Challenge("bearer")], "", None)
        with pytest.raises(UpstreamAuthError, match="usable"):
            await auth.answer([], "", None)


# --- token endpoint failures ----------------------------------------------------------------


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reply", "match", "status"),
    [
        (_refuse, "ConnectError", None),
        (lambda r: httpx.Response(500), "answered 500", 500),
        (lambda r: httpx.Response(401, json={"details": "bad"}), "answered 401", 401),
        (lambda r: httpx.Response(302, headers={"location": "/x"}), "answered 302", 302),
        (lambda r: httpx.Response(200, content=b"<html>"), "not JSON", None),
        (lambda r: httpx.Response(200, json=["token"]), "not a JSON object", None),
        (lambda r: httpx.Response(200, json={"token": ""}), "no usable token", None),
        (lambda r: httpx.Response(200, json={"token": "a\r\nX-Evil: 1"}), "no usable", None),
        (lambda r: httpx.Response(200, content=b"{" * (1024 * 1024 + 10)), "larger", None),
    ],
)
async def test_token_endpoint_failures_are_auth_errors(
    reply: Callable[[httpx.Request], httpx.Response], match: str, status: int | None
) -> None:
    auth, client = make_auth(TokenServer(reply))
    async with client:
        with pytest.raises(UpstreamAuthError, match=match) as caught:
            await auth.answer(bearer(), SCOPE, None)
    assert caught.value.status == status
    assert auth.authorization(SCOPE) is None


@pytest.mark.anyio
async def test_token_endpoint_rate_limit_is_reported_as_such() -> None:
    auth, client = make_auth(
        TokenServer(lambda r: httpx.Response(429, headers={"retry-after": "9"}))
    )
    async with client:
        with pytest.raises(UpstreamRateLimited) as caught:
            await auth.answer(bearer(), SCOPE, None)
    assert caught.value.retry_after == "9"
    assert caught.value.status == 429


@pytest.mark.anyio
async def test_realm_must_be_an_http_url() -> None:
    auth, client = make_auth(TokenServer())
    async with client:
        for realm in ["file:///etc/passwd", "https://", "not a url at all", "http://[::1"]:
            with pytest.raises(UpstreamAuthError, match="realm"):
                await auth.answer(bearer(realm=realm), SCOPE, None)
