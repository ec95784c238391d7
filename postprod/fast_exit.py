"""Ending a ``postprod`` process as soon as its command is done.

Python's own exit then tears down every module and object the command loaded (Prefect, pydantic,
SciPy, OpenCV, PyAV): measured 0.4 s wall after a ``--no-prefect`` finish and 1.1 to 1.7 s after
a flow run on a loaded 2-core machine (bench/README.md, "Per-command overhead"), with nothing owed
to anyone left in it. :func:`exit_now` does what matters of that exit (Prefect's logs and events
sent to the server, the exit handlers: logging's flush, temporary folders' clean-up) and ends the
process there.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Flush what the process owes the server and the console, run the exit handlers, and end the
    process with ``code`` without tearing its modules down."""
    if "prefect" in sys.modules:
        from flows.server import flush_reports

        flush_reports()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone away: nothing left to deliver
            stream.flush()
    os._exit(code)
