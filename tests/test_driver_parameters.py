"""Storage drivers declare their parameters; one registry maps names to declarations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mirror.settings import Problem, fields_of, format_path, role_of, within
from mirror.store.driver import LocalPath
from mirror.store.drivers import DRIVERS, DriverParameters, create_driver, driver_names
from mirror.store.drivers.base import CheckedDriver
from mirror.store.drivers.filesystem_params import FilesystemParameters
from mirror.store.drivers.inmemory_params import InMemoryParameters
from mirror.store.drivers.params import honoured_keys


def test_one_registry_of_declarations() -> None:
    assert sorted(DRIVERS) == ["azure", "filesystem", "inmemory", "s3"]
    assert driver_names() == ["azure", "filesystem", "inmemory", "s3"]
    for kind in DRIVERS.values():
        assert issubclass(kind, DriverParameters)
        assert kind.meaning
        for info in fields_of(kind).values():
            assert info.description


def test_filesystem_declares_registry2_parameters() -> None:
    assert within(FilesystemParameters, {}) == FilesystemParameters(
        rootdirectory="/var/lib/registry", maxthreads=100
    )
    assert role_of(fields_of(FilesystemParameters)["maxthreads"]) == "ignored"
    assert honoured_keys(FilesystemParameters) == ["rootdirectory"]
    assert FilesystemParameters(rootdirectory="/srv").local_directory == "/srv"
    assert InMemoryParameters().local_directory is None
    with pytest.raises(Problem) as caught:
        within(FilesystemParameters, {"rootdirectory": ""}, "storage", "filesystem")
    assert format_path(caught.value.at) == "storage.filesystem.rootdirectory"
    assert caught.value.message == "must not be empty"


def test_create_driver_takes_the_validated_parameters(tmp_path: Path) -> None:
    driver = create_driver("filesystem", FilesystemParameters(rootdirectory=str(tmp_path)))
    assert isinstance(driver, CheckedDriver)
    assert isinstance(driver, LocalPath)
    assert driver.local_path("/") == str(tmp_path)
    assert create_driver("inmemory", InMemoryParameters()).name == "inmemory"
    with pytest.raises(ValueError, match=r"storage driver 'inmemory' takes InMemoryParameters"):
        create_driver("inmemory", FilesystemParameters(rootdirectory=str(tmp_path)))


def test_mapping_parameters_are_checked_by_the_declaration(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"needs 'rootdirectory' \(must not be empty\)"):
        create_driver("filesystem", {"rootdirectory": ""})
    with pytest.raises(ValueError, match=r"needs 'rootdirectory' \(expected a string, got 5"):
        create_driver("filesystem", {"rootdirectory": 5})
    with pytest.raises(ValueError, match=r"needs 'rootdirectory' \(required\)"):
        create_driver("filesystem", {"rootdirectory": None})


def test_declarations_do_not_load_the_drivers() -> None:
    # The object-store drivers' SDKs must only be imported by deployments that use them.
    probe = (
        "import sys, mirror.config, mirror.store.drivers\n"
        "loaded = [m for m in ('mirror.store.drivers.filesystem', 'mirror.store.drivers.inmemory',"
        " 'mirror.store.drivers.s3', 'mirror.store.drivers.azure', 'obstore')"
        " if m in sys.modules]\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
