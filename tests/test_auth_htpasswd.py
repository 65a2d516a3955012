"""The htpasswd controller: logins, the verification cache, reloads, anonymous access."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import subprocess
from pathlib import Path

import bcrypt
import pytest

from mirror.auth.access import Access, AuthRequest
from mirror.auth.challenge import Challenge
from mirror.auth.htpasswd import HtpasswdAccessController
from mirror.auth.htpasswd_file import parse_htpasswd
from mirror.auth.policyfile import parse_policy_yaml
from mirror.auth.users import HtpasswdUsers
from tests.support.binaries import require_binary

pytestmark = pytest.mark.anyio
PULL = (Access("repository", "team/app", "pull"),)
PUSH = (Access("repository", "team/app", "pull"), Access("repository", "team/app", "push"))


def entry(user: str, password: str, cost: int = 4) -> str:
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()}\n"


def basic(user: str, password: str) -> AuthRequest:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return AuthRequest(f"Basic {raw}")


def replace_keeping_mtime(path: Path, content: str) -> None:
    """Replace `path` by another file (an editor's or `mv`'s way), same mtime."""
    replacement = path.with_name("new")
    replacement.write_text(content)
    stat = path.stat()
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text("# users\n\n" + entry("alice", "wonderland") + entry("bob", "builder"))
    return path


async def test_a_valid_login_is_granted(htpasswd: Path) -> None:
    controller = HtpasswdAccessController(realm="Registry", path=htpasswd)
    grant = await controller.authorized(basic("alice", "wonderland"), PUSH)
    assert (grant.user, grant.accesses) == ("alice", PUSH)


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("nobody", "wonderland")])
async def test_wrong_credentials_are_challenged(htpasswd: Path, user: str, password: str) -> None:
    controller = HtpasswdAccessController(realm='Reg "1"', path=htpasswd)
    with pytest.raises(Challenge) as caught:
        await controller.authorized(basic(user, password), PUSH)
    assert caught.value.headers == {"WWW-Authenticate": 'Basic realm="Reg \\"1\\""'}
    assert caught.value.message == "invalid credentials"
    assert caught.value.detail == [
        {"Type": "repository", "Name": "team/app", "Action": "pull"},
        {"Type": "repository", "Name": "team/app", "Action": "push"},
    ]


async def test_without_credentials_the_base_route_is_challenged_without_scope(
    htpasswd: Path,
) -> None:
    controller = HtpasswdAccessController(realm="Registry", path=htpasswd)
    with pytest.raises(Challenge) as caught:
        await controller.authorized(AuthRequest(), ())
    assert caught.value.www_authenticate == 'Basic realm="Registry"'
    assert caught.value.detail is None
    grant = await controller.authorized(basic("bob", "builder"), ())
    assert grant.user == "bob"


async def test_without_a_policy_anonymous_gets_nothing(htpasswd: Path) -> None:
    controller = HtpasswdAccessController(realm="Registry", path=htpasswd)
    with pytest.raises(Challenge, match="authentication required"):
        await controller.authorized(AuthRequest(), PULL)


async def test_a_policy_can_let_anonymous_pull(htpasswd: Path) -> None:
    policy = parse_policy_yaml(
        b"rules: [{repository: team/**, allow: {anonymous: [pull], user:alice: [push]}}]"
    )
    controller = HtpasswdAccessController(realm="Registry", path=htpasswd, policy=policy)
    grant = await controller.authorized(AuthRequest(), PULL)
    assert grant.anonymous
    with pytest.raises(Challenge, match="authentication required") as caught:
        await controller.authorized(AuthRequest(), PUSH)
    assert caught.value.missing == PUSH[1:]
    # A wrong password is refused even where anonymous access would be enough.
    with pytest.raises(Challenge, match="invalid credentials"):
        await controller.authorized(basic("alice", "wrong"), PULL)
    with pytest.raises(Challenge, match="not authorized") as caught:
        await controller.authorized(basic("bob", "builder"), PUSH)
    assert caught.value.missing == PUSH[1:]
    assert (await controller.authorized(basic("alice", "wonderland"), PUSH)).user == "alice"


async def test_the_policy_judges_the_name_key(htpasswd: Path) -> None:
    policy = parse_policy_yaml(b"rules: [{repository: docker.io/**, allow: {anonymous: [pull]}}]")
    controller = HtpasswdAccessController(
        realm="Registry", path=htpasswd, policy=policy, name_key=lambda name: f"docker.io/{name}"
    )
    assert (await controller.authorized(AuthRequest(), PULL)).anonymous
    without = HtpasswdAccessController(realm="Registry", path=htpasswd, policy=policy)
    with pytest.raises(Challenge) as caught:
        await without.authorized(AuthRequest(), PULL)
    assert caught.value.missing == PULL  # reported under the name the client used


async def test_groups_come_from_the_policy(htpasswd: Path) -> None:
    policy = parse_policy_yaml(
        b"groups: {devs: [alice]}\nrules: [{repository: '**', allow: {group:devs: ['*']}}]"
    )
    controller = HtpasswdAccessController(realm="Registry", path=htpasswd, policy=policy)
    grant = await controller.authorized(basic("alice", "wonderland"), PUSH)
    assert grant.groups == {"devs"}


async def test_a_successful_check_is_remembered_and_failures_are_not(htpasswd: Path) -> None:
    users = HtpasswdUsers(htpasswd)
    assert await users.verify("alice", "wonderland")
    assert await users.verify("alice", "wonderland")
    assert users.bcrypt_checks == 1
    assert not await users.verify("alice", "nope")
    assert not await users.verify("alice", "nope")
    assert users.bcrypt_checks == 3


async def test_the_cache_is_keyed_by_a_keyed_hash_not_the_password(htpasswd: Path) -> None:
    users = HtpasswdUsers(htpasswd)
    assert await users.verify("alice", "wonderland")
    (key,) = users._verified
    assert len(key) == 32 and b"wonderland" not in key and b"alice" not in key


async def test_the_cache_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("".join(entry(f"u{i}", "pw") for i in range(5)))
    users = HtpasswdUsers(path, cache_size=2)
    for i in range(5):
        assert await users.verify(f"u{i}", "pw")
    assert len(users._verified) == 2
    assert await users.verify("u4", "pw")
    assert users.bcrypt_checks == 5  # the newest stayed


async def test_concurrent_checks_of_the_same_credentials_share_one_bcrypt(htpasswd: Path) -> None:
    users = HtpasswdUsers(htpasswd)
    results = await asyncio.gather(*(users.verify("bob", "builder") for _ in range(20)))
    assert all(results)
    assert users.bcrypt_checks == 1


async def test_the_file_is_reread_and_the_cache_dropped_when_it_changes(htpasswd: Path) -> None:
    users = HtpasswdUsers(htpasswd)
    assert await users.verify("alice", "wonderland")
    second = entry("alice", "new password") + entry("carol", "x")
    replace_keeping_mtime(htpasswd, second)
    assert not await users.verify("alice", "wonderland")
    assert await users.verify("alice", "new password")
    assert await users.verify("carol", "x")
    os.truncate(htpasswd, 0)
    assert not await users.verify("carol", "x")


async def test_a_vanished_file_lets_nobody_in_until_it_is_back(htpasswd: Path) -> None:
    users = HtpasswdUsers(htpasswd)
    assert await users.verify("alice", "wonderland")
    os.rename(htpasswd, htpasswd.with_name("away"))
    assert not await users.verify("alice", "wonderland")
    os.rename(htpasswd.with_name("away"), htpasswd)
    assert await users.verify("alice", "wonderland")


def test_a_missing_file_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HtpasswdUsers(tmp_path / "nope")


def test_only_bcrypt_entries_are_accepted(caplog: pytest.LogCaptureFixture) -> None:
    content = (
        entry("alice", "a").encode()
        + b"bob:$apr1$ft2S58P3$7A3cOohzxYvZlduoVndbg1\n"
        + b"carol:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=\n"
        + b"dave:plaintext\n"
        + b"no colon here\n"
        + b"\xff\xfe:$2y$05$YdW9QdTVfbRDoKOFF6HZXOuB/aeybbhMn0OMwQmuhjkC2.84W1cLi\n"
        + b"  # indented comment\n"
        + b"eve:$2y$05$short\n"
    )
    entries = parse_htpasswd(content, source="/etc/htpasswd")
    assert set(entries.hashes) == {"alice"}
    assert "line 2: user 'bob' has an MD5 ($apr1$) hash" in caplog.text
    assert "line 3: user 'carol' has a SHA-1 ({SHA}) hash" in caplog.text
    assert "line 4: user 'dave' has a plain-text or crypt hash" in caplog.text
    assert "line 5: not 'user:hash'" in caplog.text
    assert "line 6: user name is not UTF-8" in caplog.text
    assert "line 8: user 'eve' has a malformed bcrypt hash" in caplog.text
    assert "plaintext" not in caplog.text and "7A3c" not in caplog.text


def test_a_user_given_twice_keeps_the_later_entry(caplog: pytest.LogCaptureFixture) -> None:
    first, second = entry("alice", "1"), entry("alice", "2")
    entries = parse_htpasswd((first + second).encode(), source="f")
    assert entries.hashes["alice"] == second.strip().split(":", 1)[1].encode()
    assert "given again" in caplog.text


def test_unknown_users_cost_what_the_file_typically_costs() -> None:
    content = entry("a", "x", 4) + entry("b", "x", 5) + entry("c", "x", 5) + entry("d", "x", 6)
    assert parse_htpasswd(content.encode(), source="f").typical_cost == 5


async def test_an_unknown_user_pays_a_dummy_bcrypt_of_that_cost(htpasswd: Path) -> None:
    users = HtpasswdUsers(htpasswd)
    assert not await users.verify("mallory", "x")
    assert list(users._dummies) == [4]
    assert users.bcrypt_checks == 1


async def test_only_the_first_72_bytes_of_a_password_count(tmp_path: Path) -> None:
    password = "p" * 72 + "tail"
    path = tmp_path / "htpasswd"
    path.write_text(entry("long", password[:72]))
    users = HtpasswdUsers(path)
    assert await users.verify("long", password)


@pytest.fixture
def apache_htpasswd(tmp_path: Path) -> Path:
    binary = require_binary("htpasswd")
    path = tmp_path / "htpasswd"
    subprocess.run([binary, "-cbB", str(path), "alice", "s3cret"], check=True, capture_output=True)
    subprocess.run(
        [binary, "-bB", "-C", "4", str(path), "bob", "pässwörd"], check=True, capture_output=True
    )
    return path


async def test_entries_written_by_apache_htpasswd(apache_htpasswd: Path) -> None:
    users = HtpasswdUsers(apache_htpasswd)
    assert await users.verify("alice", "s3cret")
    assert await users.verify("bob", "pässwörd")
    assert not await users.verify("alice", "s3cre")


async def test_no_password_or_header_reaches_the_log(
    htpasswd: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    controller = HtpasswdAccessController(realm="Registry", path=htpasswd)
    request = basic("alice", "not-her-password")
    with pytest.raises(Challenge) as caught:
        await controller.authorized(request, PULL)
    assert "user 'alice' failed to authenticate" in caplog.text
    assert request.authorization is not None
    for secret in ("not-her-password", request.authorization.split()[1]):
        assert secret not in caplog.text
        assert secret not in caught.value.reason and secret not in repr(caught.value.detail)
