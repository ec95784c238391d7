"""The one place that finds ffmpeg, checks what it can do, and runs it.

Every ffmpeg call in postprod goes through :func:`run_ffmpeg`: an argument list (never a shell string),
progress parsed from ``-progress pipe:1``, and a typed :class:`~pipeline.errors.FFmpegError` with the
last lines of stderr when ffmpeg fails.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shlex
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import FFmpegError, MissingCapabilityError, StoppedError
from pipeline.media.stopping import raise_if_stopped, stop_requested

log = logging.getLogger(__name__)

FFMPEG_ENV_VAR = "POSTPROD_FFMPEG"
"""Environment variable naming an ffmpeg binary to use instead of imageio-ffmpeg's."""

STDERR_TAIL_LINES = 25


@functools.cache
def ffmpeg_executable() -> str:
    """Path of the ffmpeg binary: ``$POSTPROD_FFMPEG`` if set, else the one imageio-ffmpeg ships."""
    override = os.environ.get(FFMPEG_ENV_VAR)
    if override:
        if not Path(override).is_file():
            raise MissingCapabilityError(f"{FFMPEG_ENV_VAR}={override} does not name a file")
        return override
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg_query(*args: str) -> str:
    completed = subprocess.run(
        [ffmpeg_executable(), "-hide_banner", *args], capture_output=True, text=True, check=False
    )
    return completed.stdout


@functools.cache
def ffmpeg_version() -> str:
    """The version string ffmpeg reports, e.g. ``n9.0.2-17-g2a571b6068-20260930``."""
    first_line = _ffmpeg_query("-version").splitlines()[0]
    return first_line.split()[2]


@functools.cache
def decoder_versions() -> dict[str, str]:
    """What decodes media here: the ffmpeg binary's version, PyAV's, and its libav libraries'."""
    import av

    libraries = {name: ".".join(map(str, version)) for name, version in av.library_versions.items()}
    return {"ffmpeg": ffmpeg_version(), "av": av.__version__, **libraries}


@functools.cache
def available_encoders() -> frozenset[str]:
    """Names of the encoders this ffmpeg binary was built with."""
    names = re.findall(r"^ [VASFXBD.]{6} (\S+)", _ffmpeg_query("-encoders"), flags=re.MULTILINE)
    return frozenset(names)


@functools.cache
def available_filters() -> frozenset[str]:
    """Names of the filters this ffmpeg binary was built with."""
    names = re.findall(r"^ [TSC.]{2,3} (\S+)\s", _ffmpeg_query("-filters"), flags=re.MULTILINE)
    return frozenset(names)


def require_capabilities(encoders: Iterable[str] = (), filters: Iterable[str] = ()) -> None:
    """Fail with the names of any encoders or filters the binary lacks."""
    missing_encoders = sorted(set(encoders) - available_encoders())
    missing_filters = sorted(set(filters) - available_filters())
    if missing_encoders or missing_filters:
        parts = []
        if missing_encoders:
            parts.append(f"encoders {', '.join(missing_encoders)}")
        if missing_filters:
            parts.append(f"filters {', '.join(missing_filters)}")
        raise MissingCapabilityError(
            f"ffmpeg at {ffmpeg_executable()} lacks {' and '.join(parts)}; "
            f"point {FFMPEG_ENV_VAR} at a build that has them"
        )


@dataclass(frozen=True)
class Progress:
    """One progress report from a running ffmpeg."""

    done_s: float
    """Output time written so far, in seconds."""
    total_s: float
    """Expected output duration, in seconds."""
    elapsed_s: float
    """Wall-clock time since ffmpeg started, in seconds."""

    @property
    def fraction(self) -> float:
        """Share of the work done, 0..1."""
        return min(1.0, self.done_s / self.total_s) if self.total_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Estimated seconds left, or None before there is anything to extrapolate from."""
        if self.fraction <= 0:
            return None
        return self.elapsed_s * (1 - self.fraction) / self.fraction


ProgressCallback = Callable[[Progress], None]


def _parse_out_time_s(value: str) -> float | None:
    """ffmpeg prints ``out_time_us=N/A`` until the first frame is written."""
    try:
        return int(value) / 1_000_000
    except ValueError:
        return None


def run_ffmpeg(
    args: list[str],
    *,
    expected_duration_s: float = 0.0,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Run ffmpeg with ``args`` (everything after the binary name) and wait for it.

    Args:
        args: ffmpeg arguments: inputs, filter graph and outputs. Never a shell string.
        expected_duration_s: Duration of the longest output, in seconds, for progress fractions.
        on_progress: Called with a :class:`Progress` each time ffmpeg reports.

    Raises:
        FFmpegError: ffmpeg exited non-zero; the error carries the last lines of stderr.
        StoppedError: postprod is stopping (see :mod:`pipeline.media.stopping`): ffmpeg was not started,
            or was stopped with it.
    """
    raise_if_stopped()
    argv = [
        ffmpeg_executable(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "warning",
        "-progress",
        "pipe:1",
        "-y",
        *args,
    ]
    log.info("running %s", shlex.join(argv))
    stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    started = time.monotonic()
    # SVT-AV1 prints its banner straight to stderr; keep only its errors so the tail stays useful.
    environment = {**os.environ, "SVT_LOG": os.environ.get("SVT_LOG", "1")}
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
        env=environment,
    )

    def drain_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if line.strip():
                stderr_tail.append(line.rstrip())

    stderr_reader = threading.Thread(target=drain_stderr, daemon=True)
    stderr_reader.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and on_progress is not None:
                done_s = _parse_out_time_s(value)
                if done_s is not None:
                    on_progress(Progress(done_s, expected_duration_s, time.monotonic() - started))
        returncode = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        stderr_reader.join(timeout=5)
    if returncode != 0:
        if stop_requested():
            raise StoppedError(f"ffmpeg was stopped (exit {returncode}): postprod is stopping")
        raise FFmpegError(argv, returncode, list(stderr_tail))
    if on_progress is not None:
        on_progress(Progress(expected_duration_s, expected_duration_s, time.monotonic() - started))
    for line in stderr_tail:
        log.debug("ffmpeg: %s", line)


@contextlib.contextmanager
def open_ffmpeg_pipe(args: list[str], *, stdin: bool = False, stdout: bool = False) -> Iterator[subprocess.Popen]:
    """Run ffmpeg with raw media on its standard input or output, for frame-by-frame work in Python.

    The caller reads frames from ``process.stdout`` (``stdout=True``, output ``pipe:1``) or writes
    them to ``process.stdin`` (``stdin=True``, input ``pipe:0``). On leaving the block stdin is
    closed and ffmpeg is waited for; if the block raised, ffmpeg is killed instead.

    Args:
        args: ffmpeg arguments: inputs, filters and outputs. Never a shell string.
        stdin: Give the caller ffmpeg's standard input.
        stdout: Give the caller ffmpeg's standard output.

    Raises:
        FFmpegError: ffmpeg exited non-zero; the error carries the last lines of stderr.
        StoppedError: postprod is stopping; ffmpeg was not started.
    """
    raise_if_stopped()
    argv = [ffmpeg_executable(), "-hide_banner", "-nostats", "-loglevel", "error", "-y"]
    if not stdin:
        argv.append("-nostdin")
    argv += args
    log.info("running %s", shlex.join(argv))
    stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def drain_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                stderr_tail.append(text)

    stderr_reader = threading.Thread(target=drain_stderr, daemon=True)
    stderr_reader.start()
    try:
        yield process
        if process.stdin is not None:
            process.stdin.close()
        returncode = process.wait()
    except BrokenPipeError:
        # ffmpeg stopped reading before the input ended: a failure, whatever it exits with.
        returncode = process.wait() or 1
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        if process.stdout is not None:
            process.stdout.close()
        stderr_reader.join(timeout=5)
    if returncode != 0:
        raise FFmpegError(argv, returncode, list(stderr_tail))
