"""QC's sound checks: silence, loudness and true peak, judged on the one decode's sound measures
(:class:`pipeline.analysis.track_levels.SoundMeasures`).
"""

from __future__ import annotations

import numpy as np

from pipeline.analysis.loudness import LoudnessMeasurement, loudness_problems
from pipeline.analysis.track_levels import ENVELOPE_BLOCK_S, SoundMeasures
from pipeline.model.presets import Preset
from pipeline.qc.report import Check, Fault, fault_status, true_runs

SILENCE_DBFS = -60.0
"""Sound whose peak stays under this is silence."""
SILENCE_MIN_S = 1.0
"""Silence this long or longer is a fault."""

def silence_check(sound: SoundMeasures | None, duration_s: float) -> Check:
    """Stretches of :data:`SILENCE_MIN_S` or more whose peak stays under :data:`SILENCE_DBFS`."""
    limit = f"no sound under {SILENCE_DBFS:.0f} dBFS for {SILENCE_MIN_S} s or more"
    if sound is None:
        return Check("silence", "warn", duration_s, "seconds of silence", limit, "no audio stream",
                     (Fault(0.0, duration_s),))
    envelope = sound.envelope
    quiet = np.maximum(-envelope[0], envelope[1]) < 10 ** (SILENCE_DBFS / 20)
    block_s = float(ENVELOPE_BLOCK_S)
    minimum = round(SILENCE_MIN_S / block_s)
    runs = [run for run in true_runs(quiet) if run[1] - run[0] >= minimum]
    end_s = sound.programme_samples / sound.sample_rate
    faults = tuple(Fault(first * block_s, min(last * block_s, end_s)) for first, last in runs)
    total = sum(fault.end_s - fault.start_s for fault in faults)
    return Check(
        "silence", fault_status(faults, "warn"), round(total, 3), "seconds of silence", limit,
        f"{len(faults)} stretch(es) of silence" if faults else "", faults,
    )


def loudness_checks(loudness: LoudnessMeasurement | None, preset: Preset) -> list[Check]:
    """Integrated loudness and true peak against the preset's target (measured only without one)."""
    target = preset.loudness
    if loudness is None:
        return [Check("loudness", "fail" if target else "warn", None, "LUFS", "an audio stream", "no audio stream")]
    integrated, peak = loudness.integrated_lufs, loudness.true_peak_dbtp
    rounded_i = None if integrated is None else round(integrated, 2)
    rounded_tp = None if peak is None else round(peak, 2)
    if target is None:
        return [
            Check("loudness", "pass", rounded_i, "LUFS integrated", "no target in the preset", "measured only"),
            Check("true_peak", "pass", rounded_tp, "dBTP", "no limit in the preset", "measured only"),
        ]
    loudness_limit = f"{target.target_lufs:.1f} LUFS +-{target.tolerance} LU ({target.standard})"
    peak_limit = f"at most {target.max_true_peak_dbtp:.1f} dBTP ({target.standard})"
    if integrated is None:
        # Digital silence has no loudness to correct: the silence check reports it.
        return [
            Check("loudness", "warn", None, "LUFS integrated", loudness_limit,
                  "no measurable loudness (silence or under 0.4 s of sound)"),
            Check("true_peak", "pass", rounded_tp, "dBTP", peak_limit),
        ]
    problems = loudness_problems(loudness, target)
    loudness_problem = [problem for problem in problems if problem.startswith("loudness")]
    peak_problem = [problem for problem in problems if problem.startswith("true peak")]
    return [
        Check("loudness", "fail" if loudness_problem else "pass", rounded_i, "LUFS integrated", loudness_limit,
              "; ".join(loudness_problem)),
        Check("true_peak", "fail" if peak_problem else "pass", rounded_tp, "dBTP", peak_limit,
              "; ".join(peak_problem)),
    ]
