"""Locks that keep two postprod processes out of each other's way: one per job output folder (two
``postprod run`` of one job, a manual run beside the nightly batch), one per inbox item (two
batches over one inbox: a manual ``batch`` overlapping ``serve``, two workers).

They are ``flock`` locks, so the kernel releases them when their holder dies, however it dies:
a crash never leaves a folder locked. A folder's lock file lives only as long as the lock is held
(a failed job leaves its folder as it found it); an item's lock is taken on the item file itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.errors import PostprodError
from pipeline.media.stopping import holding, remove_stale_partials

LOCK_NAME = ".postprod.lock"
"""The lock file in an output folder while a job writes there; it holds the writer's process id."""


class LockedError(PostprodError):
    """Another postprod process is working on the same folder or inbox item (exit 1: try later)."""

    transient = True


def _holder(lock_path: Path) -> str:
    try:
        pid = lock_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return "another postprod process"
    return f"another postprod process (pid {pid})" if pid.isdigit() else "another postprod process"


@contextlib.contextmanager
def output_folder_lock(folder: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``folder``'s lock for the block, waiting for another holder to finish first.

    Partial files already in the folder that no process writes any more (a dead process's
    leftovers) are removed once the lock is held; a live writer's on another machine are left.

    Args:
        folder: The job's output folder (made if missing).
        on_wait: Told, once, why the caller waits (another process holds the lock).
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / LOCK_NAME
    while True:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(f"{folder}: {_holder(lock_path)} is writing this folder; waiting for it to finish")
                on_wait = None
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        # The previous holder removes the file as it lets go: a lock on a removed file guards nothing.
        try:
            same_file = os.stat(lock_path).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        os.close(descriptor)
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode("ascii"))
        remove_stale_partials(folder)
        with holding(folder):
            yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock_path.unlink()
        os.close(descriptor)


@contextlib.contextmanager
def item_lock(item: Path) -> Iterator[None]:
    """Hold the lock of an inbox item (a job file or loose clip) for the block, without waiting.

    An item this process may not read is not locked: its run fails on it and says so.

    Raises:
        LockedError: another process holds it (another batch is finishing this item).
        FileNotFoundError: it is gone (another batch set it aside).
    """
    try:
        # O_NONBLOCK: opening never waits, whatever the file turns out to be.
        descriptor = os.open(item, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except PermissionError:
        yield
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{item}: another postprod batch is finishing this item; left to it") from None
        yield
    finally:
        os.close(descriptor)
