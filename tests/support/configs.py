"""Configuration text for the tests of `mirror.config`, and parsing helpers."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from mirror.config import Config, ConfigError, parse_config

REPO = Path(__file__).resolve().parent.parent.parent
MINIMAL = "storage: inmemory\n"


def parse(text: str, env: Mapping[str, str] | None = None) -> Config:
    return parse_config(textwrap.dedent(text), env or {})


def error_of(text: str, env: Mapping[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text, env)
    message = str(caught.value)
    assert "\n" not in message
    return message


HUB = "proxy:\n  remoteurl: https://registry-1.docker.io\n"

FILESYSTEM = """\
storage:
  filesystem:
    rootdirectory: /srv/registry
  delete:
    enabled: false
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
"""
