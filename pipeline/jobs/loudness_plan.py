"""Loudness corrections planned from the programmes as they will be mixed: a linear gain, a
true-peak limiter where the gain alone would break the peak limit, settled from measurements of the
limited result, and, for lossy deliverables whose peaks come near enough the limit for the encoder
to lift them over it, from their programme encoded as it will ship.

The corrections are cached by content (:func:`cached_loudness_corrections`): a rerun whose sound
chain and sound encode are unchanged measures nothing."""

from __future__ import annotations

import math
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.analysis.cache import modules_fingerprint
from pipeline.analysis.loudness import (
    LimitedPass,
    LoudnessCorrection,
    limiter_shortfall,
    measure_file,
    plan_correction,
    refine_gain,
)
from pipeline.errors import JobError
from pipeline.inputs import sha256_of_input
from pipeline.jobs.analyses import Analyse
from pipeline.media.runner import run_ffmpeg
from pipeline.model.job import Job
from pipeline.model.presets import AudioSpec, Preset
from pipeline.plan import programme_sound
from pipeline.plan.audio_tracks import resolve_programme_layout
from pipeline.plan.facts import JobFacts
from pipeline.plan.outputs import resolve_preset
from pipeline.plan.programme_sound import plan_programme_audio, sound_encode_options, source_sound_programmes


def cached_loudness_corrections(job: Job, facts: JobFacts, presets: dict[str, Preset],
                                analyse: Analyse) -> dict[str, LoudnessCorrection]:
    """:func:`loudness_corrections` through ``analyse`` (the job's analysis cache), as the
    ``loudness`` analysis of the programme's first source with :func:`loudness_parameters`: the
    same sound chain, targets and sound encodes of the same content are measured once. A programme
    without a loudness target measures nothing and is not recorded.

    Raises:
        JobError: as :func:`loudness_corrections` (a failure is never cached).
        MediaError: an input cannot be read for its content hash.
    """
    parameters = loudness_parameters(job, facts, presets)
    if not parameters["deliverables"]:
        return {}
    return analyse("loudness", job.shots[0].source, parameters,
                   lambda: loudness_corrections(job, facts, presets))


PROGRAMME_PLACEHOLDER = Path("programme")
"""The folder the keyed programme render is planned into: the real one is a new temporary folder
each time, which must not make every key new."""


def loudness_parameters(job: Job, facts: JobFacts, presets: dict[str, Preset]) -> dict[str, Any]:
    """Everything :func:`loudness_corrections` depends on besides the analysis code, for its cache key.

    - ``programme_audio``: the first programme-audio render's ffmpeg arguments (each programme's
      conformed shots, sync corrections, crossfades, music bed and its gain, rate and layout), with
      every input's path replaced by its content hash, so a renamed clip is the same programme;
    - ``deliverables``: in order, each one with a target: its label, the target, its sound codec,
      and the options of its codec check's encode (encoder, options, rate, channels);
    - ``planner``: the source of this module and of :mod:`pipeline.plan.programme_sound`, which
      decide the limiter passes and codec checks that follow the first measurement.

    Raises:
        MediaError: an input cannot be read.
    """
    plan = plan_programme_audio(job, facts.with_loudness(None), presets, PROGRAMME_PLACEHOLDER)
    inputs = [shot.source for shot in job.shots] + ([job.music.source] if job.music else [])
    hashes = {str(path): f"sha256:{sha256_of_input(path)}" for path in inputs}
    shot_media = [facts.media[shot.source] for shot in job.shots]
    deliverables = []
    for index, deliverable in enumerate(job.deliverables):
        preset = resolve_programme_layout(resolve_preset(job, index, presets), shot_media, index)
        if preset.loudness is None:
            continue
        encode = sound_encode_options(preset)
        target = preset.loudness
        # The values the standard resolves to, so a changed standard's table is a miss too.
        resolved = {"lufs": target.target_lufs, "tolerance_lu": target.tolerance,
                    "true_peak_dbtp": target.max_true_peak_dbtp}
        deliverables.append({"label": deliverable.label, "target": {**target.model_dump(mode="json"), **resolved},
                             "codec": preset.audio.codec, "encode": encode})
    return {
        "programme_audio": [hashes.get(argument, argument) for argument in plan.args],
        "deliverables": deliverables,
        "planner": modules_fingerprint(sys.modules[__name__], programme_sound),
    }


def loudness_corrections(job: Job, facts: JobFacts, presets: dict[str, Preset]) -> dict[str, LoudnessCorrection]:
    """Measure each deliverable's programme sound as it will be mixed and plan what meets its target.

    Each programme with a loudness target is measured (BS.1770-4): one that is its one source's
    sound as it is (:func:`pipeline.plan.programme_sound.source_sound_programmes`) from the
    source pass's measurement in ``facts.source_loudness`` where it has one, the others from one
    audio-only ffmpeg run that writes them as float WAV to a temporary folder. Each gets a linear
    gain, or a gain and a true-peak limiter where the gain alone would break the peak limit. Those
    with a limiter are rendered and measured once more, and their gain trimmed by what the limiting
    took off. Once they settle, each lossy deliverable's corrected programme is encoded as its
    deliverable will be (in one ffmpeg run, the same programme and encode once); one whose encoder
    lifts the peaks over the limit gets its limiter ceiling lowered by that much, and is trimmed
    again. A programme whose corrected peak sits further under the limit than its encoder was ever
    measured to lift peaks (:func:`codec_check_skipped`) is not encoded. Programmes that come out
    the same are rendered and measured once.

    Returns:
        Corrections by deliverable label; deliverables without a target are absent. The ``facts``'
        own loudness corrections are not used.
    """
    shot_media = [facts.media[shot.source] for shot in job.shots]
    resolved = {
        deliverable.label: resolve_programme_layout(resolve_preset(job, index, presets), shot_media, index)
        for index, deliverable in enumerate(job.deliverables)
    }
    sound = {label: preset.audio for label, preset in resolved.items()}
    lossy = {label: not audio.codec.startswith("pcm") for label, audio in sound.items()}
    targets = {label: preset.loudness for label, preset in resolved.items()}
    with tempfile.TemporaryDirectory(prefix="postprod-loudness-") as scratch:
        measured = _first_measurements(job, facts.with_loudness(None), presets, Path(scratch))
        corrections = {
            label: plan_correction(measurement, targets[label], lossy[label])
            for label, measurement in measured.items()
        }
        limited = {label: c for label, c in corrections.items() if c.limiter_ceiling_dbtp is not None}
        passes: dict[str, LimitedPass] = {}
        programme = (job, facts, presets, Path(scratch))
        _settle_limiters(programme, limited, corrections, passes)
        # A lossy encoder lifts peaks by more than its usual headroom on some sound (noise, dense
        # highs): encode each settled programme as its deliverable will be (unless its peaks sit
        # further under the limit than the encoder was measured to lift them), lower the ceiling of any
        # whose encoded peak breaks the limit, and settle those again. The gain that makes up for a
        # lower ceiling drives the encoder harder, so this may take rounds; a programme still over
        # after the last is a job error that says so, before anything is rendered.
        checked = set()
        for label, correction in corrections.items():
            if not (lossy[label] and correction.applies):
                continue
            skipped = codec_check_skipped(correction, sound[label])
            if skipped is None:
                checked.add(label)
            else:
                corrections[label] = replace(correction, reason=f"{correction.reason}; {skipped}")
        for attempt in range(CODEC_CHECKS):
            peaks = _encoded_peaks(*programme, {label: corrections[label] for label in checked})
            lowered = {label: _lowered_for_codec(corrections[label], peak) for label, peak in peaks.items()}
            lowered = {label: correction for label, correction in lowered.items() if correction is not None}
            for label, peak in peaks.items():
                if peak is not None and label not in lowered:
                    corrections[label] = replace(
                        corrections[label],
                        reason=f"{corrections[label].reason}; encoded as it ships, its peaks reached {peak:.2f} "
                               f"dBTP, under the {corrections[label].target.max_true_peak_dbtp:.1f} dBTP limit")
            if not lowered:
                break
            if attempt == CODEC_CHECKS - 1:
                label, correction = next(iter(lowered.items()))
                raise JobError(
                    f"deliverable {label}: its sound cannot meet {correction.target.target_lufs:.1f} LUFS under "
                    f"the {correction.target.max_true_peak_dbtp:.1f} dBTP limit once encoded: "
                    f"{correction.reason.rsplit('; ', 1)[-1]}, and the encoder keeps lifting the peaks over the "
                    "limit as the limiter works harder. Lower the target (loudness.integrated_lufs) or deliver "
                    "PCM sound")
            corrections.update(lowered)
            for label in lowered:
                passes.pop(label, None)
            _settle_limiters(programme, lowered, corrections, passes)
            checked = set(lowered)
    return corrections


def _settle_limiters(programme: tuple, limited: dict[str, LoudnessCorrection],
                     corrections: dict[str, LoudnessCorrection], passes: dict[str, LimitedPass]) -> None:
    """Measure each limited programme with its correction applied and trim gain and ceiling from the
    result, at most :data:`LIMITER_PASSES` times, updating ``corrections`` and ``passes``.

    Raises:
        JobError: a target cannot be met under its ceiling (:func:`limiter_shortfall` says why).
    """
    job, facts, presets, scratch = programme
    for _ in range(LIMITER_PASSES):
        if not limited:
            return
        again = _measure_programmes(job, facts.with_loudness(limited), presets, scratch)
        for label, correction in limited.items():
            shortfall = limiter_shortfall(correction, again[label], passes.get(label))
            if shortfall is not None:
                raise JobError(f"deliverable {label}: {shortfall}")
        refined = {label: refine_gain(limited[label], again[label], passes.get(label)) for label in limited}
        passes.update({label: LimitedPass(limited[label].gain_db, again[label].integrated_lufs)
                       for label in limited if again[label].integrated_lufs is not None})
        corrections.update(refined)
        # Only those still off target, or whose peaks came back over the ceiling, go round again.
        limited = {
            label: correction for label, correction in refined.items()
            if abs(again[label].integrated_lufs - correction.target.target_lufs) > LIMITER_SETTLED_LU
            or again[label].true_peak_dbtp > correction.limiter_ceiling_dbtp
        }


LIMITER_PASSES = 4
"""Measurements of a limited programme at most: the limiting lowers its loudness and the resampling
after it can lift its peaks, so gain and ceiling are trimmed from a measurement of the result (a
secant step, see :func:`pipeline.analysis.loudness.refine_gain`; most programmes settle in one or two)."""
LIMITER_SETTLED_LU = 0.1
"""A limited programme this close to its target needs no further pass."""


CODEC_PEAK_MARGIN_DB = 0.2
"""How far under the true-peak limit an encoded programme is brought when its encoder overshot."""
CODEC_CHECKS = 5
"""Encodes of a lossy programme at most, each followed by lowering its ceiling where it peaked over."""

MEASURED_ENCODER = "aac"
"""The encoder whose peak lift was measured: ffmpeg's native AAC, what every lossy preset uses."""
MEASURED_MIN_BITS_PER_CHANNEL = 128_000
"""The bitrate per channel the lift was bounded at (256k stereo, every lossy preset's). At 192k and
128k stereo it lifts dense peaks further (real underwater noise held at -2 dBTP by the limiter:
+1.7 and +2.2 dB), and those programmes are always checked."""
PEAK_LIFT_LU = -2.0
"""The most :data:`MEASURED_ENCODER` at 256k stereo was measured to lift a programme's true peak by,
as an amplitude added to the peak, relative to the programme's integrated loudness (dB). Set on
half of the development clips with sound, the batch's synthetic clip and clipped pink noise, each
brought to its -14 LUFS target and, with linear gains, to peaks of -1 to -6 dBTP: at most -2.01,
on real underwater noise held at -2 dBTP by the limiter. The other half and a square wave stayed
under it plus :data:`PEAK_LIFT_SAFETY_DB` (at most -1.66, the square wave; ``bench/codec_overshoot.py``,
the table in docs/analyses-on-real-footage.md). The lift follows the sound's level, not its peaks,
so no fixed number of dB over the peak bounds it: a square wave's peaks sit at its loudness and its
encode rises 4 to 6 dB over them, while a peaky speech programme's barely moves."""
PEAK_LIFT_SAFETY_DB = 1.0
"""Headroom on top of :data:`PEAK_LIFT_LU` for sound none of the measured clips is like."""


def codec_check_skipped(correction: LoudnessCorrection, sound: AudioSpec) -> str | None:
    """Why ``correction``'s programme needs no codec check, for its reason, or None when it does.

    It needs none when its deliverable's sound is :data:`MEASURED_ENCODER` at the bitrate measured
    or more, its correction is a linear gain, and its corrected true peak (the measured peak plus
    the gain) with the largest lift measured added (:data:`PEAK_LIFT_LU` on the target loudness,
    and :data:`PEAK_LIFT_SAFETY_DB`, as amplitudes) stays under the limit. A limited programme is
    always checked: its peaks are packed against the ceiling, 1 dB under the limit, where the
    encoder lifts them most. What a skipped check could miss is still caught: each deliverable's
    true peak is measured after its render (:mod:`pipeline.render.verify`), and one over the limit
    fails verification (exit 4) with nothing delivered.
    """
    if correction.limiter_ceiling_dbtp is not None or correction.measured_true_peak_dbtp is None:
        return None
    bitrate = _bits_per_second(sound.options.get("b"))
    if (sound.encoder != MEASURED_ENCODER or bitrate is None
            or bitrate < MEASURED_MIN_BITS_PER_CHANNEL * sound.channels):
        return None
    target = correction.target
    lift = 10 ** ((target.target_lufs + PEAK_LIFT_LU + PEAK_LIFT_SAFETY_DB) / 20)
    room = 10 ** (target.max_true_peak_dbtp / 20) - lift
    peak = correction.measured_true_peak_dbtp + correction.gain_db
    if room <= 0 or peak > 20 * math.log10(room):
        return None
    return (f"encoded peak not checked: its true peak of {peak:.2f} dBTP is under {20 * math.log10(room):.2f} dBTP, "
            f"the highest that {MEASURED_ENCODER} at this bitrate cannot lift over the {target.max_true_peak_dbtp:.1f} "
            f"dBTP limit (the most it was measured to add at {target.target_lufs:.1f} LUFS, "
            f"{PEAK_LIFT_LU + target.target_lufs:.1f} dBFS as an amplitude, "
            f"with {PEAK_LIFT_SAFETY_DB:.1f} dB to spare)")


def _bits_per_second(bitrate: str | int | float | None) -> float | None:
    """An encoder's ``b`` option (``256k``, ``0.3M``, ``192000``) in bits per second; None when not given."""
    if bitrate is None:
        return None
    text = str(bitrate)
    scale = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1].lower())
    return float(text[:-1]) * scale if scale else float(text)


def _encoded_peaks(job: Job, facts: JobFacts, presets: dict[str, Preset], scratch: Path,
                   corrected: dict[str, LoudnessCorrection]) -> dict[str, float | None]:
    """The true peak of each corrected programme encoded as its deliverable's sound and decoded, by
    label (None for digital silence): one ffmpeg run, each programme and encode written once."""
    if not corrected:
        return {}
    job = job.model_copy(update={"deliverables": [d for d in job.deliverables if d.label in corrected]})
    plan = plan_programme_audio(job, facts.with_loudness(corrected), presets, scratch, encoded=True)
    run_ffmpeg(list(plan.args), expected_duration_s=float(plan.duration_s))
    peaks = {path: measure_file(path).true_peak_dbtp for path in dict.fromkeys(plan.paths.values())}
    return {label: peaks[path] for label, path in plan.paths.items()}


def _lowered_for_codec(correction: LoudnessCorrection, peak: float | None) -> LoudnessCorrection | None:
    """``correction`` with its limiter ceiling lowered by how far its encoded programme's ``peak``
    came over the limit (and :data:`CODEC_PEAK_MARGIN_DB`); None when the peak stayed under."""
    limit = correction.target.max_true_peak_dbtp
    if peak is None or peak <= limit - CODEC_PEAK_MARGIN_DB:
        return None
    ceiling = correction.limiter_ceiling_dbtp
    if ceiling is None:
        ceiling = correction.measured_true_peak_dbtp + correction.gain_db
    ceiling -= peak - limit + CODEC_PEAK_MARGIN_DB
    # Said before any "; trimmed" note, which later passes replace.
    settled = correction.reason.split("; trimmed")[0]
    return replace(
        correction, limiter_ceiling_dbtp=round(ceiling, 2),
        reason=f"{settled}; encoded, its peaks reached {peak:.2f} dBTP, so the limiter ceiling is lowered "
               f"to {ceiling:.2f} dBTP",
    )


def _first_measurements(job: Job, facts: JobFacts, presets: dict[str, Preset], scratch: Path) -> dict:
    """Each deliverable's programme measured before correction: from the source pass where it is
    the source's sound as the pass measured it, else mixed and measured."""
    source = job.shots[0].source
    passed = facts.source_loudness.get(source)
    from_pass = {
        label: passed.measurement for label, rate in source_sound_programmes(job, facts, presets).items()
        if passed is not None and passed.sample_rate == rate
    }
    rest = job.model_copy(update={"deliverables": [d for d in job.deliverables if d.label not in from_pass]})
    mixed = _measure_programmes(rest, facts, presets, scratch)
    return {d.label: from_pass[d.label] if d.label in from_pass else mixed[d.label]
            for d in job.deliverables if d.label in from_pass or d.label in mixed}


def _measure_programmes(job: Job, facts: JobFacts, presets: dict[str, Preset], scratch: Path) -> dict:
    """Mix and measure each deliverable's programme; with loudness corrections in ``facts`` (a
    limiter pass), only those deliverables, with their corrections applied."""
    if facts.loudness:
        job = job.model_copy(update={"deliverables": [d for d in job.deliverables if d.label in facts.loudness]})
    plan = plan_programme_audio(job, facts, presets, scratch)
    if not plan.paths:
        return {}
    run_ffmpeg(list(plan.args), expected_duration_s=float(plan.duration_s))
    measured = {path: measure_file(path) for path in dict.fromkeys(plan.paths.values())}
    return {label: measured[path] for label, path in plan.paths.items()}
