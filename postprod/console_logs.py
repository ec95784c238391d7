"""Keep the console to one clear message per expected failure.

A job that fails QC or verification, or names bad media, fails its Prefect flow and tasks, and
Prefect's engine logs each such failure at ERROR with a traceback before postprod prints its own
message. The filter here drops those records from the console only: Prefect's API log handler
still sends them to the server, and ``--debug`` leaves the console as it was. Expected means a
:class:`PostprodError` or an operating-system error (a full disk: postprod reports it as
:class:`~pipeline.errors.OutputWriteError`); anything else (a bug) keeps its traceback.
"""

from __future__ import annotations

import logging

from pipeline.errors import PostprodError


EXPECTED = (PostprodError, OSError)


def _expected_error_names() -> frozenset[str]:
    names, pending = {"OSError"}, [PostprodError]
    while pending:
        kind = pending.pop()
        names.add(kind.__name__)
        pending += kind.__subclasses__()
    return frozenset(names)


class ExpectedFailureFilter(logging.Filter):
    """Drops the engine's records of a flow or task that failed with an expected error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, EXPECTED):
            return False
        if record.levelno >= logging.ERROR and record.name.startswith("prefect") and error is None:
            # "Finished in state Failed('Task run encountered an exception QcFailedError: ...')"
            message = record.getMessage()
            return not (message.startswith("Finished in state Failed")
                        and any(f"{name}:" in message for name in _expected_error_names()))
        return True


def hide_expected_tracebacks() -> None:
    """Add :class:`ExpectedFailureFilter` to the root logger's console handlers (once)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not any(
            isinstance(existing, ExpectedFailureFilter) for existing in handler.filters
        ):
            handler.addFilter(ExpectedFailureFilter())
