"""SIGINT and SIGTERM for the command line: stop everything postprod started and exit at once.

A watcher thread reads the signal numbers Python's C-level handler writes to a wakeup pipe, so it
sees a signal even while Prefect's flow engine has put its own SIGTERM handler in place (one that
would raise in the main thread and then report a crash to a server that may be gone: minutes of
connection retries). On the first signal it

1. stops new ffmpeg runs and renames into place (:func:`pipeline.media.stopping.request_stop`),
2. silences the console, so what Prefect logs while the process winds down is not shown,
3. stops every child process (ffmpeg, the Prefect server Prefect or postprod started, Dask
   workers): SIGTERM, then SIGKILL after a grace period,
4. removes the files renders had in flight, and the partial files (and lock files) in the output
   folders this process holds locked,
5. prints what it did and exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).

The kernel releases the folder and item locks as the process exits.
"""

from __future__ import annotations

import os
import signal
import threading

import psutil

from pipeline.render.locks import LOCK_NAME
from pipeline.media.stopping import (
    held_folders,
    remove_held_partials,
    request_stop,
    stop_requested,
    remove_in_flight,
)

CHILD_GRACE_S = 3.0
"""How long children get to exit after SIGTERM before they are killed."""
EXIT_WAIT_S = 30.0
"""How long the main thread waits for a signal's handler to end the process."""
HANDLED = (signal.SIGINT, signal.SIGTERM)

_installed = False


def _ignore(signum, frame) -> None:
    """A Python-level handler is what makes Python's C handler write to the wakeup pipe."""


def _stop_children() -> tuple[int, int]:
    """Stop every descendant process; returns how many were ffmpeg and how many something else."""
    children = psutil.Process().children(recursive=True)
    ffmpeg = 0
    for child in children:
        try:
            ffmpeg += "ffmpeg" in child.name()
            child.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(children, timeout=CHILD_GRACE_S)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=CHILD_GRACE_S)
    return ffmpeg, len(children) - ffmpeg


def _silence_console() -> int:
    """Point stdout and stderr at /dev/null; returns a descriptor of the old stderr."""
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    return saved


def stop_and_exit(signum: int) -> None:
    """Stop everything postprod started, clean up, say so, and exit with 128 + ``signum``."""
    request_stop()
    console = _silence_console()
    ffmpeg, others = _stop_children()
    removed = set(remove_in_flight()) | set(remove_held_partials())
    for folder in held_folders():
        # Removing the lock file releases the lock as the lock's own holder does (see pipeline/locks.py).
        (folder / LOCK_NAME).unlink(missing_ok=True)
    name = signal.Signals(signum).name
    stopped = f"stopped {ffmpeg} ffmpeg process(es)" + (f" and {others} other child process(es) (a Prefect "
                                                        "server, workers)" if others else "")
    message = (f"postprod: interrupted by {name}; {stopped}, removed {len(removed)} partial file(s); "
               "nothing was renamed into place after the signal\n")
    os.write(console, message.encode("utf-8", "backslashreplace"))
    os._exit(128 + signum)


def wait_if_stopping() -> None:
    """Block while a signal is being handled (the handler exits the process); return otherwise.

    The main thread calls this when the work it ran ended in an error, which a stop causes: left
    to itself it would exit (or print that error) before the children are stopped.
    """
    if stop_requested():
        threading.Event().wait(EXIT_WAIT_S)


def _watch(read_end: int) -> None:
    while True:
        data = os.read(read_end, 64)
        for signum in data:
            if signum in HANDLED:
                stop_and_exit(signum)


def install() -> None:
    """Handle SIGINT and SIGTERM as described above; call once, from the main thread."""
    global _installed
    if _installed:
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    for signum in HANDLED:
        signal.signal(signum, _ignore)
    threading.Thread(target=_watch, args=(read_end,), name="postprod-signals", daemon=True).start()
    _installed = True
