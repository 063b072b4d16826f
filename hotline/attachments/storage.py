"""Where attachments' bytes live: outside the database, behind a small interface. The default
keeps them in a directory, one file per key, readable by the server's user only; keys are
random, never derived from what a user sent."""

import os
import secrets
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 64 * 1024


class Storage(Protocol):
    """A store of files by key; another (an object store) implements the same four methods."""

    def save(self, key: str, source: BinaryIO) -> None: ...

    def open(self, key: str) -> BinaryIO: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


def new_key() -> str:
    """A new random key: 32 hex digits."""
    return secrets.token_hex(16)


class DirectoryStorage:
    """Files under one directory (mode 0700), each 0600, in sub-directories by the key's first two digits."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if len(key) != 32 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key[:2] / key

    def save(self, key: str, source: BinaryIO) -> None:
        """Copy `source` from its start under `key`: written whole to a temporary file, then renamed."""
        path = self._path(key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                source.seek(0)
                shutil.copyfileobj(source, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


@lru_cache
def directory_storage(root: Path) -> DirectoryStorage:
    """The store of one directory (one object per process)."""
    return DirectoryStorage(root)
