"""The README's configuration table is generated from the declarations, and complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mirror.config.docs import END, START, between_markers, main, replaced, rows, table
from tests.support.configs import REPO, parse


def test_readme_table_is_the_generated_one() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert between_markers(readme) == table(), (
        "README.md's configuration table is stale: run python -m mirror.config.docs --write "
        "README.md"
    )


def dumped_paths(value: object, path: str = "") -> set[str]:
    if isinstance(value, dict):
        found: set[str] = set()
        for key, item in value.items():
            found |= dumped_paths(item, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return set().union(*(dumped_paths(item, f"{path}[]") for item in value))
    return {path}


def test_every_key_check_config_prints_is_documented(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("cert")
    config = parse(
        f"""\
        storage: {{filesystem: {{rootdirectory: /srv}}}}
        http:
          host: https://mirror.example
          tls: {{certificate: {cert}, key: {cert}}}
          headers: {{X-A: [a]}}
        redis: {{dialtimeout: 1s}}
        proxy:
          remoteurl: https://registry-1.docker.io
          upstreams: [{{name: ghcr.io, remoteurl: "https://ghcr.io"}}]
        """
    )
    documented = {row.key for row in rows()}
    printed = dumped_paths(config.redacted())
    # A header is one key of a map; the table documents the map.
    printed = {re.sub(r"^http\.headers\..*", "http.headers", path) for path in printed}
    assert printed - documented == set()
    assert "storage.inmemory" in documented


def test_rows_have_meanings_and_ignored_keys_say_so() -> None:
    found = {row.key: row for row in rows()}
    for row in found.values():
        assert row.meaning, row
        assert row.kind, row
    for key in ("storage.filesystem.maxthreads", "http.secret", "redis.pool"):
        assert found[key].meaning.startswith("accepted, ignored: ")
    assert found["proxy.upstreams[].name"].default == "required"
    assert found["proxy.freshness"].default == "`5m`"
    assert found["redis.password"].kind == "secret"
    assert found["http.server"].kind == "one of `granian`, `uvicorn`"


def test_write_replaces_the_table_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{START}\nold table\n{END}\n\nafter\n", encoding="utf-8")
    assert main(["--write", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text == f"# x\n\n{START}\n{table()}{END}\n\nafter\n"
    assert "old table" not in text
    with pytest.raises(ValueError, match="markers not found"):
        replaced("no markers here", table())


def test_printing_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == table()
