"""The error types every layer raises, each tied to the CLI exit code a user sees.

Like PyAV's errors they also subclass the matching built-in, so callers can catch what they expect.
"""

import errno


class PostprodError(Exception):
    """Base of every error postprod raises on purpose."""

    exit_code = 1
    transient = False
    """True when the same work may succeed if run again (a killed process, a full disk)."""


class JobError(PostprodError, ValueError):
    """A job file, preset or command-line request is invalid (exit 2)."""

    exit_code = 2


class MediaError(PostprodError, ValueError):
    """An input file is missing, unreadable or unsupported (exit 3)."""

    exit_code = 3

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class RenderError(PostprodError, RuntimeError):
    """ffmpeg failed, or an output failed verification against its plan (exit 4)."""

    exit_code = 4


FFMPEG_SIGNALLED_EXIT = 255
"""ffmpeg's exit status after it caught a termination signal."""


class FFmpegError(RenderError):
    """ffmpeg exited non-zero; carries the command and the last lines of its stderr."""

    def __init__(self, argv: list[str], returncode: int, stderr_tail: list[str]):
        self.argv = argv
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        tail = "\n  ".join(stderr_tail) or "(ffmpeg printed nothing on stderr)"
        super().__init__(f"ffmpeg exited with code {returncode}:\n  {tail}")

    @property
    def transient(self) -> bool:
        """True when ffmpeg was killed by a signal (out of memory, shutdown), not refused its input.

        ffmpeg catches SIGTERM and SIGINT, closes its outputs and exits 255; other failures exit
        with 1 or a negated error code (254 for a missing file, 183 for invalid data).
        """
        return self.returncode < 0 or self.returncode == FFMPEG_SIGNALLED_EXIT


class IncompleteRenderError(RenderError):
    """ffmpeg stopped before its output was complete (it was signalled, exited 0 without writing
    it, or left a file that does not open): the sources are fine, so running it again may pass."""

    transient = True

    def __init__(self, path, what_happened: str):
        self.path = str(path)
        super().__init__(f"{self.path}: the render stopped before its output was complete ({what_happened})")


class OutputWriteError(RenderError):
    """An output, report or manifest could not be written (a full disk, a read-only folder); what
    the job had written so far was removed."""

    transient = True

    def __init__(self, path, error: OSError):
        self.path = str(path)
        super().__init__(f"{self.path}: could not be written ({error.strerror or error}); "
                         "the job's outputs were removed")


class VerificationError(RenderError):
    """A rendered output does not have the properties its plan promised."""

    def __init__(self, path, mismatches: list[str]):
        self.path = str(path)
        self.mismatches = mismatches
        listing = "\n  ".join(mismatches)
        super().__init__(f"{self.path} failed verification:\n  {listing}")


class MissingCapabilityError(RenderError):
    """The ffmpeg binary lacks an encoder or filter the job needs."""


class StoppedError(PostprodError):
    """postprod was asked to stop (SIGINT, SIGTERM): no new ffmpeg starts, nothing is renamed into place."""

    exit_code = 130
    transient = True


PERMANENT_OS_ERRORS = frozenset({errno.ENAMETOOLONG, errno.ELOOP, errno.EILSEQ, errno.ENOTDIR, errno.EISDIR})
"""Operating-system errors that the same input will meet again."""


def is_transient(error: BaseException) -> bool:
    """True when running the same work again may pass: a render stopped from outside, an I/O fault.

    A file name too long for the file system, or a link loop, is the input's fault, not the moment's.
    """
    if isinstance(error, PostprodError):
        return error.transient
    return isinstance(error, OSError) and error.errno not in PERMANENT_OS_ERRORS


class QcFailedError(RenderError):
    """A deliverable failed a QC check under the ``fail`` policy (exit 4); its reports are written."""
