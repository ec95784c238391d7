"""Content hashes of files, computed once per process for each version of a file.

A nightly batch hashes the same source for its fingerprint, its analysis cache keys and its
manifest; the file's size, modification time and inode say whether an earlier hash still holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20
_known: dict[tuple[str, int, int, int], str] = {}


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (again only when the file has changed)."""
    status = path.stat()
    identity = (str(path.resolve()), status.st_size, status.st_mtime_ns, status.st_ino)
    if identity not in _known:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        _known[identity] = digest.hexdigest()
    return _known[identity]
