"""Read access to the members of an OCI image layout: a directory's files (`oci:`), or
the members of an uncompressed tar (`oci-archive:`), read in place at their offsets."""

from __future__ import annotations

import os
import tarfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO

from mirror.client.errors import LayoutError

INDEX = "index.json"


class LayoutFiles(ABC):
    """Read access to a layout's members by name."""

    name: str

    @abstractmethod
    def read(self, member: str, limit: int) -> bytes:
        """The member's bytes, at most `limit` of them (LayoutError beyond)."""

    @abstractmethod
    def open_at(self, member: str, offset: int) -> tuple[IO[bytes], int]:
        """An open file positioned at the member's byte `offset`, and the bytes left."""

    def close(self) -> None:  # noqa: B027 - most layouts hold nothing open
        """Release what the layout holds open (a tar file); nothing by default."""


class DirFiles(LayoutFiles):
    def __init__(self, root: Path) -> None:
        self.name = str(root)
        self._root = root
        if not (root / INDEX).is_file():
            raise LayoutError(f"{root} is not an OCI image layout (no {INDEX})")

    def read(self, member: str, limit: int) -> bytes:
        path = self._root / member
        try:
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            raise LayoutError(f"{self.name}: {member} is missing") from None
        except OSError as exc:
            raise LayoutError(f"{self.name}: {member}: {exc.strerror}") from None
        if len(data) > limit:
            raise LayoutError(f"{self.name}: {member} is larger than {limit} bytes")
        return data

    def open_at(self, member: str, offset: int) -> tuple[IO[bytes], int]:
        try:
            f = (self._root / member).open("rb")
        except FileNotFoundError:
            raise LayoutError(f"{self.name}: {member} is missing") from None
        except OSError as exc:
            raise LayoutError(f"{self.name}: {member}: {exc.strerror}") from None
        size = os.fstat(f.fileno()).st_size
        f.seek(offset)
        return f, max(size - offset, 0)


class TarFiles(LayoutFiles):
    """Members of an uncompressed tar, read at their offsets in the file."""

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        self._path = path
        self._members: dict[str, tuple[int, int]] = {}
        try:
            with tarfile.open(path, "r:") as tar:
                for info in tar:
                    if info.isreg():
                        name = os.path.normpath(info.name).lstrip("/")
                        self._members[name] = (info.offset_data, info.size)
        except FileNotFoundError:
            raise LayoutError(f"{path} does not exist") from None
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise LayoutError(f"{path} is not an uncompressed tar: {exc}") from None
        if INDEX not in self._members:
            raise LayoutError(f"{path} is not an OCI image layout archive (no {INDEX})")

    def _member(self, member: str) -> tuple[int, int]:
        found = self._members.get(member)
        if found is None:
            raise LayoutError(f"{self.name}: {member} is missing")
        return found

    def read(self, member: str, limit: int) -> bytes:
        offset, size = self._member(member)
        if size > limit:
            raise LayoutError(f"{self.name}: {member} is larger than {limit} bytes")
        with self._path.open("rb") as f:
            f.seek(offset)
            return f.read(size)

    def open_at(self, member: str, offset: int) -> tuple[IO[bytes], int]:
        start, size = self._member(member)
        f = self._path.open("rb")
        f.seek(start + min(offset, size))
        return f, max(size - offset, 0)
