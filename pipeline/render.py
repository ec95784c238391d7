"""Run render plans: ffmpeg to partial files, verify each, then rename into place.

A deliverable appears under its final name only once it has been verified, so a crash, a failed
encode or a failed check never leaves a file that looks finished, and nothing is renamed into place
once postprod is stopping (:mod:`pipeline.stopping`).

A failure is told apart by what happened, not by ffmpeg's exit code alone: ffmpeg stopped by a
signal while it opened its inputs can exit 0 without an output, or 183 ("moov atom not found",
"Invalid data found") as if an input were bad. An input that opens fine afterwards was not the
cause, so such a render is :class:`~pipeline.errors.IncompleteRenderError` (retried), and only an
input that still does not open is the input's fault.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace

from pathlib import Path

from pipeline.errors import FFmpegError, IncompleteRenderError, MediaError, VerificationError
from pipeline.media import ProgressCallback, require_capabilities, run_ffmpeg
from pipeline.plan import JobPlan, OutputPlan, RenderPlan
from pipeline.probe import MediaInfo, probe
from pipeline.stopping import committing, in_flight
from pipeline.verify import find_mismatches
from pipeline.workfiles import prepared

log = logging.getLogger(__name__)

INPUT_READ_FAILURES = ("moov atom not found", "Invalid data found when processing input", "Error opening input")
"""What ffmpeg prints when it could not read an input, bad or interrupted."""


@dataclass(frozen=True)
class RenderedOutput:
    """A verified deliverable in its final place."""

    plan: OutputPlan
    """What was asked for."""
    info: MediaInfo
    """What the file probes as."""
    encode_s: float
    """Wall-clock seconds of the ffmpeg run that wrote it (shared by its sibling outputs)."""
    verify_s: float
    """Wall-clock seconds spent verifying it."""


def _remove_partials(plan: RenderPlan) -> None:
    for path in (*(output.partial_path for output in plan.outputs), *plan.intermediates):
        path.unlink(missing_ok=True)


def remove_intermediates(plan: JobPlan) -> None:
    """Remove what a job's renders wrote for one another and what planning made for them (its
    scratch files), once the job is over or has failed."""
    for path in (*plan.intermediates, *plan.scratch_files):
        path.unlink(missing_ok=True)


def _inputs_open_fine(error: FFmpegError) -> bool:
    """True when ffmpeg failed reading its inputs, yet every input it named opens now: the read was
    interrupted (ffmpeg signalled while opening it), the input is not bad."""
    if not any(marker in line for line in error.stderr_tail for marker in INPUT_READ_FAILURES):
        return False
    inputs = [value for flag, value in zip(error.argv, error.argv[1:], strict=False) if flag == "-i"]
    missing = [value for value in inputs if not Path(value).exists()]
    if any(value in line for value in missing for line in error.stderr_tail):
        return False
    try:
        for value in inputs:
            if Path(value).is_file():
                probe(value)
    except MediaError:
        return False
    return True


def _check_written(output: OutputPlan) -> tuple[MediaInfo, list[str]]:
    """Verify what ffmpeg wrote for ``output``; a missing or unopenable file means it was cut short."""
    partial = output.partial_path
    if not partial.is_file() or partial.stat().st_size == 0:
        raise IncompleteRenderError(output.path, "ffmpeg exited without writing it")
    try:
        return find_mismatches(partial, output.expected)
    except MediaError as error:
        raise IncompleteRenderError(output.path, f"what ffmpeg wrote does not open: {error.problem}") from error


def render(plan: RenderPlan, on_progress: ProgressCallback | None = None) -> list[RenderedOutput]:
    """Run one ffmpeg invocation, verify what it wrote, and move the outputs into place.

    Raises:
        MissingCapabilityError: ffmpeg lacks an encoder or filter the plan needs.
        FFmpegError: ffmpeg refused the plan or an input.
        IncompleteRenderError: ffmpeg stopped before its outputs were complete (retry it).
        VerificationError: an output differs from its plan; no output of this plan is kept.
        StoppedError: postprod is stopping; no output of this plan is kept.
    """
    require_capabilities(encoders=plan.encoders, filters=plan.filters)
    for path in (*(output.path for output in plan.outputs), *plan.intermediates):
        path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    writing = (*(output.partial_path for output in plan.outputs), *plan.intermediates)
    with in_flight(writing):
        try:
            with prepared(plan.prepared_files):
                try:
                    run_ffmpeg(list(plan.args), expected_duration_s=float(plan.duration_s),
                               on_progress=on_progress)
                except FFmpegError as error:
                    if error.transient or not _inputs_open_fine(error):
                        raise
                    first = plan.outputs[0].path if plan.outputs else plan.intermediates[0]
                    raise IncompleteRenderError(
                        first, f"ffmpeg exited {error.returncode} reading inputs that open fine afterwards"
                    ) from error
            encode_s = time.monotonic() - started
            checked = []
            for output in plan.outputs:
                verify_started = time.monotonic()
                info, mismatches = _check_written(output)
                if mismatches:
                    raise VerificationError(output.path, mismatches)
                checked.append((output, info, time.monotonic() - verify_started))
            rendered = []
            with committing():
                for output, info, verify_s in checked:
                    os.replace(output.partial_path, output.path)
                    log.info("verified and wrote %s", output.path)
                    rendered.append(RenderedOutput(output, replace(info, path=output.path), encode_s, verify_s))
        except BaseException:
            _remove_partials(plan)
            raise
    for path in plan.consumes:
        path.unlink(missing_ok=True)
    return rendered

