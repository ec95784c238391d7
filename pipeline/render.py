"""Run render plans: ffmpeg to partial files, verify each, then rename into place.

A deliverable appears under its final name only once it has been verified, so a crash, a failed
encode or a failed check never leaves a file that looks finished.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace

from pipeline.caption_files import caption_file_problems
from pipeline.errors import VerificationError
from pipeline.media import ProgressCallback, require_capabilities, run_ffmpeg
from pipeline.plan import JobPlan, OutputPlan, RenderPlan
from pipeline.probe import MediaInfo
from pipeline.verify import find_mismatches
from pipeline.workfiles import prepared

log = logging.getLogger(__name__)


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
    captions = (file.partial_path for output in plan.outputs for file in output.caption_files)
    for path in (*(output.partial_path for output in plan.outputs), *captions, *plan.intermediates):
        path.unlink(missing_ok=True)


def _write_caption_files(output: OutputPlan) -> None:
    """Write the output's caption files under partial names and read each back.

    Raises:
        VerificationError: a file reads back with other cues than were planned.
    """
    rate = output.expected.frame_rate
    for file in output.caption_files:
        file.partial_path.write_text(file.text, encoding="utf-8")
        problems = caption_file_problems(file, file.partial_path, output.captions, rate)
        if problems:
            raise VerificationError(file.path, problems)


def remove_intermediates(plan: JobPlan) -> None:
    """Remove what a job's renders wrote for one another and what planning made for them (its
    scratch files), once the job is over or has failed."""
    for path in (*plan.intermediates, *plan.scratch_files):
        path.unlink(missing_ok=True)


def render(plan: RenderPlan, on_progress: ProgressCallback | None = None) -> list[RenderedOutput]:
    """Run one ffmpeg invocation, verify what it wrote, and move the outputs into place.

    Raises:
        MissingCapabilityError: ffmpeg lacks an encoder or filter the plan needs.
        FFmpegError: ffmpeg failed.
        VerificationError: an output differs from its plan; no output of this plan is kept.
    """
    require_capabilities(encoders=plan.encoders, filters=plan.filters)
    for path in (*(output.path for output in plan.outputs), *plan.intermediates):
        path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        with prepared(plan.prepared_files):
            run_ffmpeg(list(plan.args), expected_duration_s=float(plan.duration_s), on_progress=on_progress)
        encode_s = time.monotonic() - started
        checked = []
        for output in plan.outputs:
            verify_started = time.monotonic()
            info, mismatches = find_mismatches(output.partial_path, output.expected)
            if mismatches:
                raise VerificationError(output.path, mismatches)
            _write_caption_files(output)
            checked.append((output, info, time.monotonic() - verify_started))
    except BaseException:
        _remove_partials(plan)
        raise
    rendered = []
    for output, info, verify_s in checked:
        os.replace(output.partial_path, output.path)
        for file in output.caption_files:
            os.replace(file.partial_path, file.path)
        log.info("verified and wrote %s", output.path)
        rendered.append(RenderedOutput(output, replace(info, path=output.path), encode_s, verify_s))
    for path in plan.consumes:
        path.unlink(missing_ok=True)
    return rendered

