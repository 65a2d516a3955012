"""The `auth` section: registry:2's block, mirror's keys, env overrides, start-up checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mirror.config import ConfigError, parse_config
from mirror.proxy.authenticating import check_auth
from tests.support.authregistry import write_htpasswd
from tests.support.mirrorcli import mirror_cli

MINIMAL = "storage: inmemory\n"
TOKEN = "token: {realm: 'http://127.0.0.1:5001/token', service: reg, issuer: iss"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("auth: {}\n", "auth: configure one access controller: htpasswd, token, silly"),
        (
            "auth: {htpasswd: {realm: r, path: /p}, silly: {realm: r, service: s}}\n",
            "auth: more than one access controller: htpasswd, silly",
        ),
        ("auth: {htpasswd: {realm: r}}\n", "auth.htpasswd.path: required"),
        ("auth: {token: {realm: r, service: s}}\n", "auth.token.issuer: required"),
        ("auth: {silly: {realm: r}}\n", "auth.silly.service: required"),
        (
            "auth: {htpasswd: {realm: r, path: /p}, policy: [a]}\n",
            "auth.policy: expected a mapping with groups, catalog and rules, got ['a']",
        ),
        (
            "auth: {htpasswd: {realm: r, path: /p}, policy: {}, policyfile: /f}\n",
            "auth.policyfile: give one of policy, policyfile, not several",
        ),
        (
            "auth: {htpasswd: {realm: r, path: /p}, anonymouspull: true}\n",
            "auth.anonymouspull: anonymous pull of upstream content needs a proxy section",
        ),
        (
            f"auth: {{{TOKEN}}}, policyfile: /f}}\n",
            "auth.policyfile: a policy applies to htpasswd logins and the built-in token "
            "service, not to token without tokenservice (an external token service decides "
            "what its tokens allow)",
        ),
        (
            "auth: {htpasswd: {realm: r, path: /p}, tokenservice: {addr: ':5001'}}\n",
            "auth: the token service needs auth.token (what verifies its tokens)",
        ),
        (
            f"auth: {{{TOKEN}}}, tokenservice: {{addr: nowhere}}}}\n",
            "auth.tokenservice.addr:",
        ),
    ],
)
def test_bad_auth_blocks_are_refused_with_their_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL + text, {})
    assert str(caught.value).startswith(message)


def test_registry2_blocks_parse_unchanged() -> None:
    text = (
        MINIMAL + "auth:\n  token:\n    realm: https://auth.example/token\n    service: registry\n"
        "    issuer: auth-issuer\n    rootcertbundle: /certs/bundle.pem\n"
        "    signingalgorithms: [RS256, ES256]\n    autoredirect: true\n"
    )
    auth = parse_config(text, {}).auth
    assert auth is not None and auth.controller == "token" and auth.token is not None
    assert auth.token.signingalgorithms == ("RS256", "ES256")
    assert auth.token.autoredirect and auth.token.autoredirectpath == "/auth/token"


def test_environment_overrides_reach_the_auth_block() -> None:
    env = {
        "REGISTRY_AUTH_HTPASSWD_REALM": "from-env",
        "REGISTRY_AUTH_HTPASSWD_PATH": "/etc/htpasswd",
        "REGISTRY_AUTH_POLICY": "{rules: [{repository: '**', allow: {anonymous: [pull]}}]}",
    }
    auth = parse_config(MINIMAL, env).auth
    assert auth is not None and auth.htpasswd is not None
    assert (auth.htpasswd.realm, auth.htpasswd.path) == ("from-env", "/etc/htpasswd")
    assert auth.policy == {"rules": [{"repository": "**", "allow": {"anonymous": ["pull"]}}]}


def test_check_config_shows_auth_and_hides_upstream_passwords() -> None:
    text = (
        MINIMAL
        + "proxy: {remoteurl: 'https://registry-1.docker.io', username: u, password: hunter2}\n"
        + "auth: {htpasswd: {realm: r, path: /p}, anonymouspull: true}\n"
    )
    dumped = yaml.safe_dump(parse_config(text, {}).redacted())
    assert "hunter2" not in dumped
    again = yaml.safe_load(dumped)
    assert again["auth"]["htpasswd"] == {"realm": "r", "path": "/p"}
    assert again["auth"]["anonymouspull"] is True


def test_start_up_refuses_missing_files_and_bad_policies(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd")
    good = f"auth: {{htpasswd: {{realm: r, path: {htpasswd}}}}}\n"
    check_auth(parse_config(MINIMAL + good, {}))
    cases = {
        "auth: {htpasswd: {realm: r, path: /nonexistent}}\n": "auth: auth.htpasswd.path: file "
        "not found: /nonexistent",
        f"auth: {{htpasswd: {{realm: r, path: {htpasswd}}}, policy: {{rules: [{{repository: "
        f"'a/**', allow: {{group:x: [pull]}}}}]}}}}\n": "auth: policy rules[0].allow: group 'x' "
        "is not defined",
        f"auth: {{htpasswd: {{realm: r, path: {htpasswd}}}, policy: {{rules: [{{repository: "
        f"'a/**', allow: {{anonymous: [write]}}}}]}}}}\n": "auth: policy rules[0].allow.anonymous: "
        "unknown action 'write'",
        f"auth: {{{TOKEN}}}}}\n": "auth: token auth requires rootcertbundle or jwks",
        f"auth: {{{TOKEN}, jwks: /none.json}}}}\n": "auth: auth.token.jwks: file not found",
    }
    for text, message in cases.items():
        with pytest.raises(ConfigError) as caught:
            check_auth(parse_config(MINIMAL + text, {}))
        assert str(caught.value).startswith(message), text


def test_serve_and_check_config_refuse_a_bad_auth_block_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(MINIMAL + "auth: {htpasswd: {realm: r, path: /nonexistent}}\n")
    for command in ("check-config", "serve"):
        done = mirror_cli(command, "--config", str(config), timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == (
            "mirror: config error: auth: auth.htpasswd.path: file not found: /nonexistent"
        )


def test_workers_without_a_shared_cache_directory_need_a_key_directory() -> None:
    text = (
        "storage: inmemory\nhttp: {workers: 2}\n"
        f"auth: {{{TOKEN}}}, tokenservice: {{addr: ':5001'}}}}\n"
    )
    with pytest.raises(ConfigError, match=r"auth\.tokenservice\.keydirectory: set keydirectory"):
        parse_config(text, {})
    parse_config(text.replace("':5001'", "':5001', keydirectory: /keys"), {})
