"""Run render plans: ffmpeg to partial files, verify each, then rename into place.

A deliverable appears under its final name only once it has been verified, so a crash, a failed
encode or a failed check never leaves a file that looks finished, and nothing is renamed into place
once postprod is stopping (:mod:`pipeline.media.stopping`).

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

from pipeline.media.content_credentials import (
    SignedCredentials,
    SigningConfig,
    sidecar_partial_path,
    sign,
    signing_path,
    signing_config,
    warn_unsigned_once,
)
from pipeline.plan.caption_files import caption_file_problems
from pipeline.errors import VerificationError, FFmpegError, IncompleteRenderError, MediaError
from pipeline.media.runner import ProgressCallback, require_capabilities, run_ffmpeg
from pipeline.plan.outputs import JobPlan, OutputPlan, RenderPlan
from pipeline.media.probe import MediaInfo, probe
from pipeline.render.measure import MeasuredOutput
from pipeline.render.verify import Verification, verify_output
from pipeline.render.prepare import prepared
from pipeline.media.stopping import committing, in_flight

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
    """Wall-clock seconds spent verifying it: its one decode (measured for QC too), and signing and
    validating its credentials."""
    measured: MeasuredOutput
    """Its picture and sound measures from verification's decode, for QC to judge."""
    mismatches: tuple[str, ...]
    """How verification found it to differ from its plan, for QC's conformance check (none, for a
    file kept today: any mismatch stops the render)."""
    credentials: SignedCredentials | None = None
    """Its content credentials; None for working files that are not signed."""


def _remove_partials(plan: RenderPlan, sidecars: list[Path]) -> None:
    captions = (file.partial_path for output in plan.outputs for file in output.caption_files)
    for path in (*(output.partial_path for output in plan.outputs), *captions, *plan.intermediates, *sidecars):
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


def _check_written(output: OutputPlan) -> Verification:
    """Verify what ffmpeg wrote for ``output``; a missing or unopenable file means it was cut short."""
    partial = output.partial_path
    if not partial.is_file() or partial.stat().st_size == 0:
        raise IncompleteRenderError(output.path, "ffmpeg exited without writing it")
    try:
        return verify_output(partial, output.expected, legalised=output.preset.video.legalise,
                             picture=output.quality_checked)
    except MediaError as error:
        raise IncompleteRenderError(output.path, f"what ffmpeg wrote does not open: {error.problem}") from error


def render(plan: RenderPlan, on_progress: ProgressCallback | None = None) -> list[RenderedOutput]:
    """Run one ffmpeg invocation, verify what it wrote, and move the outputs into place.

    Each verified deliverable is signed with C2PA content credentials (when the environment names
    signing keys, see :mod:`pipeline.media.content_credentials`), and the signed file is validated, before
    anything is renamed into place.

    Raises:
        MissingCapabilityError: ffmpeg lacks an encoder or filter the plan needs.
        FFmpegError: ffmpeg refused the plan or an input.
        IncompleteRenderError: ffmpeg stopped before its outputs were complete (retry it).
        VerificationError: an output differs from its plan, or its credentials do not validate; no
            output of this plan is kept.
        StoppedError: postprod is stopping; no output of this plan is kept.
        JobError: the signing configuration is incomplete or unreadable.
    """
    require_capabilities(encoders=plan.encoders, filters=plan.filters)
    signing = signing_config() if any(output.provenance for output in plan.outputs) else None
    for path in (*(output.path for output in plan.outputs), *plan.intermediates):
        path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    sidecars: list[Path] = []
    # Everything a stop must remove: the encodes, caption files and the signing copies and sidecars.
    writing = (
        *(output.partial_path for output in plan.outputs), *plan.intermediates,
        *(file.partial_path for output in plan.outputs for file in output.caption_files),
        *(path for output in plan.outputs if output.provenance
          for path in (signing_path(output.path), sidecar_partial_path(output.path))),
    )
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
                verification = _check_written(output)
                if verification.mismatches:
                    raise VerificationError(output.path, list(verification.mismatches))
                _write_caption_files(output)
                credentials, sidecar = _sign(output, signing)
                if sidecar is not None:
                    sidecars.append(sidecar)
                checked.append((output, verification, time.monotonic() - verify_started, credentials, sidecar))
            rendered = []
            with committing():
                for output, verification, verify_s, credentials, sidecar in checked:
                    os.replace(output.partial_path, output.path)
                    for file in output.caption_files:
                        os.replace(file.partial_path, file.path)
                    if sidecar is not None:
                        os.replace(sidecar, credentials.sidecar)
                    log.info("verified and wrote %s", output.path)
                    rendered.append(RenderedOutput(output, replace(verification.info, path=output.path), encode_s,
                                                   verify_s, verification.measured, verification.mismatches,
                                                   credentials))
        except BaseException:
            _remove_partials(plan, sidecars)
            raise
    for path in plan.consumes:
        path.unlink(missing_ok=True)
    return rendered


def _sign(output: OutputPlan, signing: SigningConfig | None) -> tuple[SignedCredentials | None, Path | None]:
    """Sign a verified deliverable, or say why it stays unsigned."""
    if output.provenance is None:
        return None, None
    if signing is None:
        warn_unsigned_once()
        return SignedCredentials("unsigned", "no signing certificate and key configured"), None
    return sign(output.partial_path, output.path, output.provenance, signing)

