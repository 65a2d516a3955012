"""The command line, run as `python -m mirror` in a subprocess (and `main()` in process)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mirror import __version__
from mirror.__main__ import main
from tests.test_server import TEST_APP, clean_env, free_port, running

BAD = "storage: inmemory\nhttp:\n  addr: x\n"
GOOD = """\
storage:
  filesystem:
    rootdirectory: /srv/registry
proxy:
  remoteurl: https://registry-1.docker.io
  password: hub-secret
"""


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirror", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_config_error_exits_2_with_one_line(tmp_path: Path) -> None:
    write(tmp_path / "bad.yml", BAD)
    result = run_cli("check-config", "--config", "bad.yml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "mirror: config error: http.addr: expected host:port, got 'x'\n"
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ("check-config", "--config", "missing.yml"),
            {},
            "missing.yml: cannot read config file: No such file or directory",
        ),
        (
            ("serve", "--config", "bad.yml"),
            {},
            "http.addr: expected host:port, got 'x'",
        ),
        (
            ("check-config", "--config", "good.yml"),
            {"REGISTRY_HTTP_NOPE": "1"},
            "REGISTRY_HTTP_NOPE: no configuration key http.nope",
        ),
    ],
)
def test_errors_exit_2_without_traceback(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    write(tmp_path / "bad.yml", BAD)
    write(tmp_path / "good.yml", GOOD)
    result = run_cli(*args, cwd=tmp_path, **env)
    assert result.returncode == 2
    assert result.stderr == f"mirror: config error: {message}\n"
    assert "Traceback" not in result.stdout + result.stderr


def test_check_config_prints_the_redacted_effective_config(tmp_path: Path) -> None:
    write(tmp_path / "good.yml", GOOD)
    result = run_cli(
        "check-config", "--config", "good.yml", cwd=tmp_path, REGISTRY_HTTP_ADDR="[::1]:6000"
    )
    assert result.returncode == 0, result.stderr
    assert "hub-secret" not in result.stdout
    printed = yaml.safe_load(result.stdout)
    assert printed["http"]["addr"] == "[::1]:6000"
    assert printed["storage"]["filesystem"]["rootdirectory"] == "/srv/registry"
    assert printed["proxy"]["upstreams"][0]["password"] == "<redacted>"


def test_config_file_lookup_order(tmp_path: Path) -> None:
    embedded = yaml.safe_load(run_cli("check-config", cwd=tmp_path).stdout)
    assert embedded["storage"]["filesystem"]["rootdirectory"] == "./data"
    assert embedded["proxy"]["default"] == "docker.io"

    write(tmp_path / "config.yml", "storage:\n  filesystem: {rootdirectory: /local}\n")
    local = yaml.safe_load(run_cli("check-config", cwd=tmp_path).stdout)
    assert local["storage"]["filesystem"]["rootdirectory"] == "/local"

    write(tmp_path / "env.yml", "storage:\n  filesystem: {rootdirectory: /from-env}\n")
    from_env = run_cli("check-config", cwd=tmp_path, REGISTRY_CONFIGURATION_PATH="env.yml")
    assert yaml.safe_load(from_env.stdout)["storage"]["filesystem"]["rootdirectory"] == "/from-env"

    write(tmp_path / "arg.yml", "storage:\n  filesystem: {rootdirectory: /from-arg}\n")
    positional = run_cli(
        "check-config", "arg.yml", cwd=tmp_path, REGISTRY_CONFIGURATION_PATH="env.yml"
    )
    assert yaml.safe_load(positional.stdout)["storage"]["filesystem"]["rootdirectory"] == (
        "/from-arg"
    )


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli(cwd=tmp_path).returncode == 2
    both = run_cli("check-config", "a.yml", "--config", "b.yml", cwd=tmp_path)
    assert both.returncode == 2
    assert "either --config PATH or PATH" in both.stderr
    assert run_cli("serve", "--server", "hypercorn", cwd=tmp_path).returncode == 2


def test_version(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"mirror {__version__}\n"


def test_serve_runs_the_configured_server(tmp_path: Path) -> None:
    port = free_port()
    config = write(
        tmp_path / "serve.yml",
        f"storage: inmemory\nhttp:\n  addr: 127.0.0.1:{port}\n  server: granian\n",
    )
    command = [
        sys.executable, "-m", "mirror", "serve", "--config", str(config),
        "--server", "uvicorn", "--app", TEST_APP,
    ]  # fmt: skip
    with running(command, tmp_path) as server:
        response = server.get(f"http://127.0.0.1:{port}/")
        assert response.status_code == 200
        assert response.json()["config"] == str(config)
        assert server.wait_for_output(
            f"mirror: serving http://127.0.0.1:{port} with config file {config} (uvicorn, 1 worker)"
        )
        # --server overrode http.server.
        assert server.wait_for_output("Started server process")


def test_serve_reports_an_address_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        write(tmp_path / "c.yml", f"storage: inmemory\nhttp:\n  addr: 127.0.0.1:{port}\n")
        result = run_cli("serve", "c.yml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(f"mirror: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in result.stderr


def test_main_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path / "good.yml", GOOD)
    bad = write(tmp_path / "bad.yml", BAD)
    assert main(["check-config", "--config", str(good)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["http"]["addr"] == ":5000"
    assert main(["serve", str(bad)]) == 2
    assert capsys.readouterr().err.endswith("got 'x'\n")
