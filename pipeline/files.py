"""Writing a file so that no reader ever sees half of it: deliverables, reports, manifests, exports.

A file is written under a hidden partial name beside its target and renamed over it once complete
(a rename within one folder is atomic). The partial name carries its writer: a tag of the machine,
the process id and a random part, ``.NAME.WRITER.partial``. Two processes writing one deliverable
into one folder, on machines the folder lock does not span (:mod:`pipeline.render.locks` holds on
one machine), each write a file of their own, and the later rename wins with a whole file. The
writer also tells a stale partial from a live one (:func:`is_stale_partial`).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

PARTIAL_SUFFIX = ".partial"
"""The last suffix of every partial name (``.*.partial`` finds them)."""
FOREIGN_PARTIAL_STALE_S = 24 * 3600
"""A partial of another machine untouched this long is a dead writer's: its process cannot be asked."""
_WRITER_PATTERN = re.compile(r"\.(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]{8}\.partial$")


@dataclass(frozen=True)
class PartialWriter:
    """Who writes a partial file."""

    host: str
    """Eight hex digits of the SHA-256 of the writer's host name."""
    pid: int
    """The writer's process id on that host."""

    @property
    def on_this_host(self) -> bool:
        """The writer runs (or ran) on this machine."""
        return self.host == _host_tag()


_writer_tokens: dict[int, str] = {}


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def writer_token() -> str:
    """This process's part of its partial names: host tag, process id and a random part (made
    again in a forked child, which has a process id of its own)."""
    pid = os.getpid()
    if pid not in _writer_tokens:
        _writer_tokens[pid] = f"{_host_tag()}-{pid}-{secrets.token_hex(4)}"
    return _writer_tokens[pid]


def partial_path(path: Path, stage: str = "") -> Path:
    """The hidden name this process writes ``path`` under until it is complete; ``stage`` names a
    second partial of the same target (``signing``: the signed copy)."""
    infix = f".{stage}" if stage else ""
    return path.with_name(f".{path.name}{infix}.{writer_token()}{PARTIAL_SUFFIX}")


def partial_writer(path: Path) -> PartialWriter | None:
    """Who writes the partial file ``path``; None for a name without a writer (an older postprod's)."""
    match = _WRITER_PATTERN.search(path.name)
    return PartialWriter(match["host"], int(match["pid"])) if match else None


def is_own_partial(path: Path) -> bool:
    """``path`` is a partial name of this process."""
    return path.name.endswith(f".{writer_token()}{PARTIAL_SUFFIX}")


def is_stale_partial(path: Path) -> bool:
    """No process is writing ``path`` any more, as far as this machine can tell: it names no writer,
    or a writer on this machine that has exited, or it is another machine's and untouched for
    :data:`FOREIGN_PARTIAL_STALE_S`. A partial of this process is never stale."""
    if is_own_partial(path):
        return False
    writer = partial_writer(path)
    if writer is None:
        return True
    if writer.on_this_host:
        # This process's id with another random part: an exited process that had the id before.
        return writer.pid == os.getpid() or not _running(writer.pid)
    try:
        return time.time() - path.stat().st_mtime > FOREIGN_PARTIAL_STALE_S
    except FileNotFoundError:
        return False


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` under its partial name, then rename it into place; on failure
    the partial file is removed and ``path`` is left as it was. Returns ``path``."""
    partial = partial_path(path)
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
