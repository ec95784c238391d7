"""Quality control of a finished file: every check judged on one decode of its picture and sound.

A deliverable finished here was decoded once by verification (:mod:`pipeline.render.verify`); QC
judges the measures that decode took (:class:`pipeline.render.measure.MeasuredOutput`) and decodes
nothing again. A file checked on its own (``postprod qc``) is measured here by the same code.
Conformance is verification's check (:func:`pipeline.render.verify.find_mismatches`) on the probe
and that decode: against the plan in a job, against the preset and the file on its own.
The checks live by family: :mod:`pipeline.qc.conformance`, :mod:`pipeline.qc.sound_checks`,
:mod:`pipeline.qc.picture_checks`; the report in :mod:`pipeline.qc.report`.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from pipeline.analysis.loudness import LoudnessCorrection
from pipeline.analysis.sync import SyncReport
from pipeline.media.probe import MediaInfo, probe
from pipeline.model.presets import Preset
from pipeline.model.timebase import frames_to_samples
from pipeline.plan.audio_tracks import programme_channels, programme_tracks, resolve_for_file
from pipeline.plan.leader import leader_frames
from pipeline.plan.outputs import ExpectedOutput
from pipeline.qc.conformance import conformance_check, expected_of_file
from pipeline.qc.picture_checks import picture_checks
from pipeline.qc.report import Check, QcReport, Status
from pipeline.qc.sound_checks import loudness_checks, silence_check
from pipeline.render.measure import MeasuredOutput, measure_output
from pipeline.render.verify import find_mismatches


def run_qc(
    path: str | Path,
    preset: Preset,
    *,
    expected: ExpectedOutput | None = None,
    correction: LoudnessCorrection | None = None,
    sync: SyncReport | None = None,
    policy: Literal["fail", "warn"] | None = None,
    info: MediaInfo | None = None,
    measured: MeasuredOutput | None = None,
    mismatches: tuple[str, ...] | None = None,
    out_of_sync: Status = "fail",
) -> QcReport:
    """Check ``path`` against ``preset``, from verification's measures or one decode of its own.

    Args:
        path: The file.
        preset: What it should be (overrides applied).
        expected: The plan's promises, when the file was just rendered; without it, the file is
            held to what its preset fixes, its sound within a frame of its picture.
        correction: The loudness correction made while finishing, reported beside the levels.
        sync: A sync measurement to judge (the sources', when finishing; ``pipeline.analysis.sync`` otherwise).
        policy: ``fail`` or ``warn``; None: the preset's.
        info: The file's probe, when the caller has one.
        measured: Verification's measures of the file (its one decode); None, or measures without
            the picture: decode it here.
        mismatches: Verification's mismatches against ``expected``; None: find them here.
        out_of_sync: The status an out-of-sync verdict gets; a job whose sync policy is ``report``
            asked for the offset to be recorded, not to fail on it, and passes ``warn``.

    Raises:
        MediaError: the file is unreadable or does not decode.
    """
    started = time.monotonic()
    path = Path(path)
    info = info or probe(path)
    preset = resolve_for_file(preset, info)
    frame_rate = info.video.frame_rate
    reused = measured is not None and measured.picture is not None
    decoded_by: Literal["verification", "qc"] = "verification" if reused else "qc"
    if not reused:
        measured = measure_output(path, info, programme_tracks(preset.audio),
                                  _leader_length(preset, expected, frame_rate, info),
                                  programme_channels=programme_channels(preset.audio), legalised=preset.video.legalise)
    picture, sound = measured.picture, measured.sound
    programme = sound if sound is not None and sound.programme is not None else None
    duration_s = picture.frame_count / float(frame_rate)
    if mismatches is None:
        mismatches = tuple(find_mismatches(path, info, measured, expected or expected_of_file(preset, info, measured)))
    checks = [
        conformance_check(mismatches, preset),
        *loudness_checks(programme.programme if programme else None, preset),
        *picture_checks(picture, frame_rate),
        silence_check(programme, duration_s),
    ]
    if sync is not None:
        checks.append(_sync_check(sync, out_of_sync))
    return QcReport(
        path=path,
        preset=preset.name,
        policy=policy or preset.qc_policy,
        duration_s=duration_s,
        frame_rate=frame_rate,
        frame_count=picture.frame_count,
        checks=tuple(checks),
        loudness=programme.programme if programme else None,
        correction=correction,
        thumbnails=picture.thumbnails,
        waveform=programme.envelope if programme else np.zeros((2, 0), np.float32),
        analysis_s=time.monotonic() - started,
        decoded_by=decoded_by,
        legalised_share=float(np.mean(picture.legalised)) if picture.legalised is not None and picture.legalised.size
        else None,
    )


def _leader_length(preset: Preset, expected: ExpectedOutput | None, frame_rate: Fraction,
                   info: MediaInfo) -> tuple[int, int]:
    """Frames and samples of the leader before the programme, which QC leaves out: the plan's, or
    for a file checked on its own, what its preset's leader lasts."""
    if expected is not None:
        return expected.programme_start_frame, expected.programme_start_sample
    if preset.leader is None:
        return 0, 0
    frames = leader_frames(preset.leader, frame_rate)
    sample_rate = info.audio.sample_rate if info.audio else preset.audio.sample_rate
    return frames, frames_to_samples(frames, frame_rate, sample_rate)


def _sync_check(report: SyncReport, out_of_sync: Status) -> Check:
    """The sync measurement against its standard's lead and lag limits."""
    limit = (f"{report.standard.title}: sound may lead by {report.standard.max_lead_ms} ms, "
             f"lag by {report.standard.max_lag_ms} ms")
    if report.verdict == "undetermined":
        return Check("sync", "pass", None, "ms (sound late > 0)", limit, f"no verdict: {report.reason}")
    return Check(
        "sync", out_of_sync if report.verdict == "out_of_sync" else "pass", report.offset_ms,
        "ms (sound late > 0)", limit, f"{report.verdict}, confidence {report.confidence:.2f}",
    )
