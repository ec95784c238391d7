"""How far ffmpeg's native AAC encoder lifts a loudness-corrected programme's true peak: the
measurement behind :data:`pipeline.jobs.loudness_plan.PEAK_LIFT_LU`, which decides how far under
its limit a programme's peak must sit for the loudness plan not to encode it to check its peaks.

Each development clip with sound (the first 10 s; ``../shared/devclips``), the batch's synthetic
Sora 2 shaped clip (``bench/batch.py``) and two synthetic extremes (:data:`STRESS`) is mixed as a
``web-h264-1080p`` deliverable's programme (48 kHz stereo, the preset's -14 LUFS / -1 dBTP target)
through the plan's own chain (:func:`pipeline.plan.programme_sound.plan_programme_audio`), corrected

- as the plan corrects it (:func:`pipeline.analysis.loudness.plan_correction`: a linear gain, or a gain
  and the true-peak limiter, before the limiter passes trim it), and
- with linear gains that put its true peak at each of :data:`CORRECTED_PEAKS_DBTP`,

and each corrected programme is measured as float WAV and encoded at each of :data:`BITRATES` (the
presets' lossy sound is ``aac`` at 256k; review-540p's 128k has no loudness target), decoded and
measured again. The overshoot is the encoded true peak less the corrected one; the lift is the
same as an amplitude added to the peak (the two peaks' difference as amplitudes), in dB relative to
the programme's loudness. The clips are split in two alternately by name: the bound is set on the
tuning half and checked on the other.

Run from the repository root (about ten minutes on one core)::

    python bench/codec_overshoot.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch import _clip  # noqa: E402

from pipeline.analysis.loudness import LoudnessCorrection, measure_file, plan_correction  # noqa: E402
from pipeline.jobs.analyses import probe_sources  # noqa: E402
from pipeline.jobs.loudness_plan import (  # noqa: E402
    MEASURED_MIN_BITS_PER_CHANNEL,
    PEAK_LIFT_LU,
    PEAK_LIFT_SAFETY_DB,
)
from pipeline.media.probe import probe  # noqa: E402
from pipeline.media.runner import run_ffmpeg  # noqa: E402
from pipeline.model.job import parse_job  # noqa: E402
from pipeline.model.presets import load_presets  # noqa: E402
from pipeline.plan.facts import JobFacts  # noqa: E402
from pipeline.plan.programme_sound import plan_programme_audio  # noqa: E402

DEVCLIPS = Path("../shared/devclips")
PRESET = "web-h264-1080p"
BITRATES = ("256k", "192k", "128k")
CORRECTED_PEAKS_DBTP = (-1.0, -2.0, -3.0, -4.0, -6.0)
SYNTHETIC = "synthetic sora2-1280x720-24"
STRESS = {
    "stress: square 440 Hz": "aevalsrc=0.5*sgn(sin(2*PI*440*t))|0.5*sgn(sin(2*PI*440*t+1)):s=48000:d=10",
    "stress: hard-clipped pink noise":
        "anoisesrc=c=pink:a=0.9:r=48000:d=10:seed=7,volume=12dB,aformat=channel_layouts=stereo",
}
"""Sound no clip has: a naive square wave (flat tops, every harmonic) and pink noise clipped 12 dB
into full scale (dense peaks at full scale, the densest a programme gets), as 24-bit PCM."""


def _sources(folder: Path) -> dict[str, Path]:
    """Every development clip with at least 0.4 s of sound, and the synthetic bench clip, by name."""
    clips = {}
    if DEVCLIPS.is_dir():
        for path in sorted(DEVCLIPS.iterdir()):
            if path.suffix not in (".mp4", ".webm") or path.name.startswith(("broken", "hdr_hlg")):
                continue
            clips[path.name] = path.resolve()
    clips[SYNTHETIC] = _clip(folder, 0, 8)
    for number, (name, sound) in enumerate(STRESS.items()):
        path = folder / f"stress{number}.mov"
        run_ffmpeg(["-f", "lavfi", "-i", "color=c=gray:s=64x64:r=24:d=10", "-f", "lavfi", "-i", sound,
                    "-c:v", "libx264", "-c:a", "pcm_s24le", "-shortest", str(path)])
        clips[name] = path
    return clips


def _measure(job, facts, presets, corrections, scratch: Path, encoded: bool) -> dict:
    plan = plan_programme_audio(job, facts.with_loudness(corrections), presets, scratch, encoded=encoded)
    run_ffmpeg(list(plan.args), expected_duration_s=float(plan.duration_s))
    measured = {path: measure_file(path) for path in dict.fromkeys(plan.paths.values())}
    return {label: measured[path] for label, path in plan.paths.items()}


def _clip_rows(name: str, source: Path, seconds: int, presets, scratch: Path) -> list[tuple]:
    info = probe(source)
    if info.audio is None:
        return []
    shot = {"source": str(source), **({"out": str(seconds)} if info.duration_s > seconds else {})}
    job = parse_job({
        "version": 1, "name": "overshoot", "shots": [shot],
        "deliverables": [{"preset": PRESET, "name": f"aac-{rate}",
                          "overrides": {"video": {"width": 320, "height": 180}, "audio": {"options": {"b": rate}}}}
                         for rate in BITRATES],
    }, scratch)
    facts = JobFacts(probe_sources(job))
    first = next(iter(_measure(job, facts, presets, {}, scratch, encoded=False).values()))
    if first.integrated_lufs is None:
        return []
    target = presets[PRESET].loudness
    cases = {"plan": plan_correction(first, target, lossy=True)}
    for peak in CORRECTED_PEAKS_DBTP:
        gain = peak - first.true_peak_dbtp
        cases[f"TP {peak:+.0f}"] = LoudnessCorrection(target, first.integrated_lufs, first.true_peak_dbtp,
                                                      gain, None, "")
    rows = []
    for case, correction in cases.items():
        corrections = {f"aac-{rate}": correction for rate in BITRATES}
        corrected = next(iter(_measure(job, facts, presets, corrections, scratch, encoded=False).values()))
        encoded = _measure(job, facts, presets, corrections, scratch, encoded=True)
        for rate in BITRATES:
            peak = encoded[f"aac-{rate}"].true_peak_dbtp
            rows.append((name, case, correction.mode, corrected.true_peak_dbtp, rate, peak,
                         peak - corrected.true_peak_dbtp, corrected.integrated_lufs))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds of each clip")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    options = parser.parse_args()
    console = Console(width=200)
    presets = load_presets()
    with tempfile.TemporaryDirectory(prefix="codec-overshoot-") as folder:
        sources = _sources(Path(folder))
        rows = []
        for index, (name, source) in enumerate(sources.items()):
            scratch = Path(folder) / f"scratch{index}"
            scratch.mkdir()
            clip_rows = _clip_rows(name, source, options.seconds, presets, scratch)
            half = ("tuning", "validation")[len({row[1] for row in rows}) % 2]
            rows += [(half, *row) for row in clip_rows]
            console.print(f"measured {name}" if clip_rows else f"{name}: no sound to measure")
    if options.json:
        options.json.write_text(json.dumps(rows, indent=1))
    table = Table(title=f"AAC overshoot, {PRESET} programme, first {options.seconds} s")
    for column in ("half", "clip", "correction", "mode", "corrected TP dBTP", "LUFS", "AAC", "encoded TP dBTP",
                   "overshoot dB", "lift dB on LUFS"):
        table.add_column(column)
    for half, name, case, mode, corrected, rate, encoded, overshoot, lufs in rows:
        table.add_row(half, name, case, mode, f"{corrected:.2f}", f"{lufs:.2f}", rate, f"{encoded:.2f}",
                      f"{overshoot:+.2f}", f"{_lift(corrected, encoded, lufs):+.2f}")
    console.print(table)
    summary = Table(title="Largest overshoot and lift, every programme (linear and limited)")
    for column in ("half", "AAC", "largest overshoot dB", "where", "largest lift dB on LUFS", "where"):
        summary.add_column(column)
    for half in ("tuning", "validation"):
        for rate in BITRATES:
            chosen = [row for row in rows if row[0] == half and row[5] == rate]
            over = max(chosen, key=lambda row: row[7])
            lifted = max(chosen, key=lambda row: _lift(row[4], row[6], row[8]))
            summary.add_row(half, rate, f"{over[7]:+.2f}", f"{over[1]}, {over[2]}",
                            f"{_lift(lifted[4], lifted[6], lifted[8]):+.2f}", f"{lifted[1]}, {lifted[2]}")
    console.print(summary)
    console.print(f"in the plan: a lift of {PEAK_LIFT_LU:+.1f} dB on the loudness, "
                  f"{PEAK_LIFT_SAFETY_DB:.1f} dB to spare, {MEASURED_MIN_BITS_PER_CHANNEL * 2 // 1000}k stereo and up")


def _lift(corrected_dbtp: float, encoded_dbtp: float, lufs: float) -> float:
    """What lifted ``corrected_dbtp`` to ``encoded_dbtp``, as an amplitude added to the peak, in dB
    relative to ``lufs``; -inf where the peak did not rise."""
    lifted = 10 ** (encoded_dbtp / 20) - 10 ** (corrected_dbtp / 20)
    return 20 * math.log10(lifted) - lufs if lifted > 0 else -math.inf


if __name__ == "__main__":
    main()
