"""Opening what a job reads without trusting it: a regular file, with a UTF-8 name, readable, of a
size within the limit for its kind, opened so that nothing can block.

A path in a job file can name anything the service user can see: ``/dev/zero`` (endless), a FIFO
(opening it for reading blocks until a writer comes), a symbolic link loop, a folder, a file only
root may read. :func:`check_input_file` refuses each with a :class:`~pipeline.errors.MediaError`
naming the path and the job field, before anything hashes, probes or decodes it, and
:func:`open_input` opens non-blocking and checks the opened descriptor (not the name, which may
have been swapped since) before a byte is read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import MediaError

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY


def display_path(path: str | Path) -> str:
    """A path as text that any console and JSON file can hold: a byte of a non-UTF-8 file name
    shows as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def has_utf8_name(path: str | Path) -> bool:
    """True when the path's bytes are valid UTF-8 (manifests, summaries and Prefect need text)."""
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def resolve_path(base_dir: Path, value: str | Path) -> Path:
    """``value`` made absolute against ``base_dir``, symbolic links followed. A symbolic link loop
    is left unresolved rather than raising: :func:`check_input_file` reports it, naming the field."""
    return Path(os.path.realpath(base_dir / value))


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _os_problem(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "file not found"
    if error.errno == errno.ELOOP:
        return "a symbolic link loop"
    if isinstance(error, PermissionError):
        return "cannot be read (permission denied)"
    return f"cannot be read ({error.strerror or error})"


def open_input(path: Path, field: str | None = None, max_bytes: int | None = None) -> BinaryIO:
    """Open an input for reading: non-blocking (a FIFO cannot hang the open), and only when the
    opened descriptor is a regular file within ``max_bytes``. Read it to its size at open time.

    Raises:
        MediaError: not a regular file, missing, unreadable, a link loop, too large or empty;
            the message names the path (and ``field`` when given).
    """
    def fail(problem: str) -> MediaError:
        return MediaError(display_path(path), problem + (f" (named by {field})" if field else ""))

    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError as error:
        raise fail(_os_problem(error)) from None
    status = os.fstat(descriptor)
    problem = None
    if not stat.S_ISREG(status.st_mode):
        problem = f"not a regular file: it is {_kind_of(status.st_mode)}"
    elif status.st_size == 0:
        problem = "file is empty (0 bytes)"
    elif max_bytes is not None and status.st_size > max_bytes:
        problem = f"file is {status.st_size} bytes; the limit for this kind of input is {max_bytes} bytes"
    if problem is not None:
        os.close(descriptor)
        raise fail(problem)
    return os.fdopen(descriptor, "rb")


def check_input_file(path: Path, field: str | None = None, max_bytes: int | None = None) -> None:
    """Fail unless ``path`` is a readable regular file with a UTF-8 name within ``max_bytes``.

    Raises:
        MediaError: the path and problem (and ``field``), e.g. ``/in/clip.mp4: a symbolic link loop``.
    """
    if not has_utf8_name(path):
        raise MediaError(display_path(path), "the file name is not valid UTF-8; rename the file"
                         + (f" (named by {field})" if field else ""))
    open_input(path, field, max_bytes).close()


def input_size(handle: BinaryIO) -> int:
    """Bytes an opened input held when opened; a reader stops there even if it grows."""
    return os.fstat(handle.fileno()).st_size


_HASH_CHUNK = 1 << 20
_known_hashes: dict[tuple[str, int, int, int], str] = {}


def sha256_of_input(path: Path, field: str | None = None) -> str:
    """Hex SHA-256 of an input, read through :func:`open_input` up to its size when opened, so a
    device, a FIFO or a file still growing cannot keep the hash reading forever.

    A batch hashes one source for its fingerprint, its analysis-cache keys and its manifest; the
    hash is computed once per process for each version of a file (its size, modification time and
    inode say whether an earlier hash still holds).

    Raises:
        MediaError: as :func:`open_input`.
    """
    with open_input(path, field) as handle:
        status = os.fstat(handle.fileno())
        identity = (str(Path(path).resolve()), status.st_size, status.st_mtime_ns, status.st_ino)
        if identity not in _known_hashes:
            digest = hashlib.sha256()
            left = input_size(handle)
            while left > 0 and (chunk := handle.read(min(_HASH_CHUNK, left))):
                digest.update(chunk)
                left -= len(chunk)
            _known_hashes[identity] = digest.hexdigest()
    return _known_hashes[identity]
