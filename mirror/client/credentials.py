"""Registry credentials: given explicitly, or from docker's `config.json`.

The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. As docker reads
it: a registry's `credHelpers` entry names a helper for that host, else `credsStore`
names one for every host; a helper is the program `docker-credential-<name>`, asked
with `get` and the server on standard input, answering `{"Username", "Secret"}`. When
there is no helper (or it knows no credentials for the host), `auths` holds
`{"auth": base64("user:password")}` (or `username`/`password`) under the host, written
with or without a scheme (`https://index.docker.io/v1/` for Docker Hub).
An identity token - what `docker login` keeps when the registry's token server gave it
an OAuth2 refresh token: an entry's `identitytoken`, or a helper's secret for the user
`<token>` - is used instead of a password: the token flow then trades it for access
tokens (registryhttp.auth, the refresh_token grant).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mirror.client.errors import CredentialsError
from mirror.client.refs import DOCKER_HUB, DOCKER_HUB_API

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = frozenset({DOCKER_HUB, DOCKER_HUB_API, "index.docker.io"})
_HELPER_TIMEOUT = 30.0
_MAX_CONFIG = 4 * 1024 * 1024

Runner = Callable[[list[str], str], str | None]


TOKEN_USER = "<token>"  # a helper's user name for an identity token


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str
    identity_token: str | None = None  # an OAuth2 refresh token, used instead of password

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """`USER:PASS` (the password may hold colons); raise CredentialsError."""
        user, sep, password = text.partition(":")
        if not sep or not user:
            raise CredentialsError("credentials must be USER:PASSWORD")
        return cls(user, password)

    @classmethod
    def token(cls, identity_token: str, username: str = "") -> Credentials:
        return cls(username, "", identity_token)

    def __repr__(self) -> str:
        token = ", identity_token=***" if self.identity_token else ""
        return f"Credentials(username={self.username!r}, password=***{token})"


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _server_key(host: str) -> str:
    """How docker names a registry to a helper and in `auths`."""
    return DOCKER_HUB_KEY if host in _HUB_NAMES else host


def _host_of(key: str) -> str:
    name = key.split("://", 1)[-1].split("/", 1)[0].lower()
    return DOCKER_HUB if name in _HUB_NAMES else name


def run_helper(command: list[str], stdin: str) -> str | None:
    """Run a credential helper; its standard output, or None when it knows nothing."""
    try:
        done = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise CredentialsError(f"credential helper {command[0]} is not installed") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CredentialsError(f"credential helper {command[0]} failed: {exc}") from None
    if done.returncode != 0:
        return None  # "credentials not found in native keychain"
    return done.stdout


def lookup(
    host: str, path: Path | None = None, *, runner: Runner = run_helper
) -> Credentials | None:
    """The credentials docker would use for `host` (as written in references), or None."""
    path = path or docker_config_path()
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_CONFIG + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CredentialsError(f"{path} is not JSON") from None
    if not isinstance(doc, dict):
        raise CredentialsError(f"{path} is not a JSON object")
    wanted = _host_of(host)
    helpers = doc.get("credHelpers")
    helper = helpers.get(host) if isinstance(helpers, dict) else None
    if helper is None and isinstance(helpers, dict):
        helper = next((v for k, v in helpers.items() if _host_of(k) == wanted), None)
    if helper is None:
        helper = doc.get("credsStore")
    if isinstance(helper, str) and helper:
        found = _from_helper(helper, _server_key(wanted), runner)
        if found is not None:
            return found
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if isinstance(key, str) and _host_of(key) == wanted and isinstance(entry, dict):
            found = _from_entry(entry, path)
            if found is not None:
                return found
    return None


def _from_helper(name: str, server: str, runner: Runner) -> Credentials | None:
    out = runner([f"docker-credential-{name}", "get"], server)
    if out is None:
        return None
    try:
        doc = json.loads(out)
        user, secret = doc["Username"], doc["Secret"]
    except (ValueError, KeyError, TypeError):
        raise CredentialsError(f"credential helper {name} gave no Username/Secret") from None
    if not isinstance(user, str) or not isinstance(secret, str):
        return None
    if user == TOKEN_USER:
        return Credentials.token(secret) if secret else None
    return Credentials(user, secret)


def _from_entry(entry: dict[str, object], path: Path) -> Credentials | None:
    auth = entry.get("auth")
    text: str | None = None
    if isinstance(auth, str) and auth:
        try:
            text = base64.b64decode(auth, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"{path}: an auths entry is not base64 user:password") from None
    user, password = entry.get("username"), entry.get("password")
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        # Beside the token, docker keeps `user:` (no password) in `auth`, if anything.
        name = text.partition(":")[0] if text is not None else user
        return Credentials.token(token, name if isinstance(name, str) else "")
    if text is not None:
        return Credentials.parse(text)
    if isinstance(user, str) and user and isinstance(password, str):
        return Credentials(user, password)
    return None
