"""`mirror serve`'s own process only reads the configuration and spawns the workers: it
must not load the app, the store commands or the auth stack (about 35 MB of resident
memory that every worker forked from it would count again)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "mirror.proxy.app",
    "mirror.commands.archive",
    "mirror.commands.sync",
    "mirror.commands.du",
    "mirror.lifecycle.collector",
    "mirror.proxy.authenticating",
    "redis",
    "jinja2",
    "prometheus_client",
    "cryptography",
    "rich",
)
PROBE = f"""
import sys
from mirror.commands import servercli
servercli._parser()
servercli._check_auth(servercli.load_config(None))
import mirror.server
loaded = [name for name in {HEAVY!r} if name in sys.modules]
print(",".join(loaded))
"""


def test_the_serving_process_loads_no_app() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "", f"loaded by mirror serve's own process: {done.stdout}"


def test_a_store_command_still_loads_its_module() -> None:
    probe = (
        "import sys\nfrom mirror.commands import storecli\n"
        "import importlib\nfor module, _ in storecli.RUNNERS.values():\n"
        "    importlib.import_module(module)\n"
        "print('mirror.proxy.app' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "True"
