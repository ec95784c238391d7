"""Stopping cleanly when postprod is told to (SIGINT, SIGTERM).

The command line turns a signal into :func:`request_stop` (see ``postprod/interrupts.py``); from
then on no ffmpeg starts (:func:`raise_if_stopped`) and nothing is renamed into place
(:func:`committing`), whichever thread is rendering. What to clean up is known two ways: the files
renders have in flight (:func:`in_flight`), and the output folders this process holds locks on
(:mod:`pipeline.render.locks`), where its other partial files (reports, the manifest) lie.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.errors import StoppedError
from pipeline.files import PARTIAL_SUFFIX, is_own_partial, is_stale_partial

PARTIAL_GLOB = f".*{PARTIAL_SUFFIX}"
"""Files written under a temporary name (ffmpeg's outputs, reports, the manifest) before their rename."""
COMMIT_WAIT_S = 5.0
"""How long a stop waits for a rename already under way (renames take microseconds)."""

_stop = threading.Event()
_commit = threading.RLock()
_held: dict[Path, int] = {}
_held_lock = threading.Lock()
_flying: dict[int, tuple[Path, ...]] = {}


def request_stop() -> None:
    """Stop starting work and renaming outputs; returns once no rename is under way."""
    _stop.set()
    if _commit.acquire(timeout=COMMIT_WAIT_S):
        _commit.release()


def stop_requested() -> bool:
    """True once :func:`request_stop` was called."""
    return _stop.is_set()


def raise_if_stopped() -> None:
    """Raise when a stop was requested.

    Raises:
        StoppedError: postprod is stopping.
    """
    if _stop.is_set():
        raise StoppedError("postprod is stopping (interrupted): no new work starts")


@contextlib.contextmanager
def committing() -> Iterator[None]:
    """Rename outputs into place inside this block: a stop either waits for it or prevents it.

    Raises:
        StoppedError: a stop was requested before the block began.
    """
    with _commit:
        raise_if_stopped()
        yield


@contextlib.contextmanager
def holding(folder: Path) -> Iterator[None]:
    """Record that this process writes into ``folder`` (under its lock) for the block's duration.

    Once a stop is requested the record stays: the block may be left (a signal unwinds the main
    thread) while ffmpeg, stopped from another thread, still has its partial file there.
    """
    with _held_lock:
        _held[folder] = _held.get(folder, 0) + 1
    try:
        yield
    finally:
        with _held_lock:
            if not _stop.is_set():
                _held[folder] -= 1
                if not _held[folder]:
                    del _held[folder]


@contextlib.contextmanager
def in_flight(paths: tuple[Path, ...]) -> Iterator[None]:
    """Record files a render is writing under temporary names, for the block's duration (and for
    good once a stop is requested, since the thread that would remove them may not get to)."""
    with _held_lock:
        token = max(_flying, default=0) + 1
        _flying[token] = paths
    try:
        yield
    finally:
        with _held_lock:
            if not _stop.is_set():
                del _flying[token]


def remove_in_flight() -> list[Path]:
    """Remove the files renders had in flight; for a stop, after ffmpeg ended."""
    with _held_lock:
        paths = [path for paths in _flying.values() for path in paths]
    return _remove(paths)


def remove_stale_partials(folder: Path) -> list[Path]:
    """Remove the partial files in ``folder`` that no process writes any more (a dead process's
    leftovers, see :func:`pipeline.files.is_stale_partial`); only its lock's holder may call this.

    Returns:
        What was removed.
    """
    return _remove(path for path in folder.glob(PARTIAL_GLOB) if is_stale_partial(path))


def _remove(paths: Iterable[Path]) -> list[Path]:
    removed = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def held_folders() -> list[Path]:
    """The output folders this process holds locked now."""
    with _held_lock:
        return list(_held)


def remove_held_partials() -> list[Path]:
    """Remove this process's partial files in every folder it holds, and those no process writes
    any more (its stopped workers'); for a stop, after ffmpeg and the workers ended. A live
    process's (on a machine the lock does not span) are left to it."""
    return _remove(path for folder in held_folders() for path in folder.glob(PARTIAL_GLOB)
                   if is_own_partial(path) or is_stale_partial(path))
