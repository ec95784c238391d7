"""Loudness per ITU-R BS.1770-4 and EBU Tech 3341/3342, and the corrections that meet a target.

Measured here, in numpy, rather than read from ffmpeg's ``ebur128`` log: the QC pass
decodes a deliverable once and feeds the same audio to this meter, and the values come back as
numbers, not parsed text.

- **K-weighting**: the two BS.1770 biquads (a high shelf of about +4 dB above 1.5 kHz and the RLB
  high-pass), derived for any sample rate from their analogue prototypes; at 48 kHz they equal the
  standard's table.
- **Blocks**: mean squares over 100 ms segments, summed with the channel weights (1.0 front, 1.41
  surround, 0 LFE). A momentary block is 4 segments (400 ms, 75 % overlap), a short-term block 30
  (3 s), both updated every 100 ms.
- **Integrated**: momentary blocks gated at -70 LUFS absolute, then 10 LU under the mean of those.
  **Loudness range** (Tech 3342): short-term blocks gated at -70 LUFS and 20 LU under their mean,
  the spread between the 10th and 95th percentiles.
- **True peak**: each channel oversampled to at least 192 kHz (4x at 48 kHz) by a polyphase FIR
  interpolator, the largest magnitude in dB.

The meter streams: audio is fed in chunks, memory holds one value per 100 ms segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from pipeline.analysis.meter_filters import BlockIir, PeakInterpolator, lowpass_taps
from pipeline.errors import MediaError
from pipeline.model.presets import LoudnessSpec

ABSOLUTE_GATE_LUFS = -70.0
"""Blocks quieter than this never count (BS.1770-4, Tech 3342)."""
RELATIVE_GATE_LU = -10.0
"""Integrated loudness ignores blocks this far under the absolutely gated mean (BS.1770-4)."""
LRA_RELATIVE_GATE_LU = -20.0
"""Loudness range ignores short-term blocks this far under their gated mean (Tech 3342)."""
LRA_PERCENTILES = (10.0, 95.0)
"""Loudness range is the spread between these percentiles of the gated short-term values."""
SEGMENT_S = 0.1
"""Blocks advance by this much: 10 readings a second, as Tech 3341 asks of a meter."""
MOMENTARY_SEGMENTS = 4
"""A momentary block: 400 ms."""
SHORT_TERM_SEGMENTS = 30
"""A short-term block: 3 s."""
TRUE_PEAK_RATE_HZ = 192_000
"""True peak is read at this rate or above (4x oversampling at 48 kHz)."""
SURROUND_WEIGHT = 1.41
"""BS.1770 channel weight of the surround channels (+1.5 dB)."""
_SURROUND_CHANNELS = frozenset({"BL", "BR", "SL", "SR", "BC", "SDL", "SDR", "LB", "RB", "Ls", "Rs"})
_LFE_CHANNELS = frozenset({"LFE", "LFE2", "LFE1"})
_TAPS_PER_PHASE = 24
"""Interpolator length per output phase; 24 keeps passband ripple under 0.01 dB to 20 kHz."""

# Analogue prototypes of the K-weighting stages, as fitted to the 48 kHz coefficients of BS.1770.
_SHELF_HZ, _SHELF_GAIN_DB, _SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
_SHELF_BANDWIDTH_EXPONENT = 0.4996667741545416
_HIGHPASS_HZ, _HIGHPASS_Q = 38.13547087602444, 0.5003270373238773


def _to_lufs(mean_square: np.ndarray | float) -> np.ndarray | float:
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(mean_square)


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """The two K-weighting biquads at ``sample_rate`` as second-order sections, shape (2, 6)."""
    k = math.tan(math.pi * _SHELF_HZ / sample_rate)
    gain = 10 ** (_SHELF_GAIN_DB / 20)
    band = gain**_SHELF_BANDWIDTH_EXPONENT
    a0 = 1 + k / _SHELF_Q + k * k
    shelf = [
        (gain + band * k / _SHELF_Q + k * k) / a0,
        2 * (k * k - gain) / a0,
        (gain - band * k / _SHELF_Q + k * k) / a0,
        1.0,
        2 * (k * k - 1) / a0,
        (1 - k / _SHELF_Q + k * k) / a0,
    ]
    k = math.tan(math.pi * _HIGHPASS_HZ / sample_rate)
    a0 = 1 + k / _HIGHPASS_Q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / _HIGHPASS_Q + k * k) / a0]
    return np.array([shelf, highpass])


def channel_weights(channel_names: list[str]) -> list[float]:
    """BS.1770 weights for channels named as ffmpeg names them (``FL``, ``FR``, ``FC``, ``LFE``, ``SL``...).

    Front channels weigh 1.0, surround channels 1.41, LFE 0.
    """
    return [
        0.0 if name in _LFE_CHANNELS else SURROUND_WEIGHT if name in _SURROUND_CHANNELS else 1.0
        for name in channel_names
    ]


def oversampling_factor(sample_rate: int) -> int:
    """How many times a signal at ``sample_rate`` is oversampled to read its true peak."""
    return max(1, math.ceil(TRUE_PEAK_RATE_HZ / sample_rate))


@dataclass(frozen=True, eq=False)
class LoudnessMeasurement:
    """A programme's loudness. Levels are None where the programme is too short or too quiet to have one."""

    integrated_lufs: float | None
    """Gated integrated loudness (BS.1770-4), LUFS; None for silence or under 400 ms of sound."""
    true_peak_dbtp: float | None
    """Largest oversampled sample magnitude, dBTP; None for digital silence."""
    sample_peak_dbfs: float | None
    """Largest sample magnitude, dBFS; None for digital silence."""
    lra_lu: float | None
    """Loudness range (EBU Tech 3342), LU; None under 3 s of sound or when no block passes the gate."""
    short_term_max_lufs: float | None
    """Loudest 3 s block, LUFS; None under 3 s."""
    momentary_max_lufs: float | None
    """Loudest 400 ms block, LUFS; None under 400 ms."""
    momentary_lufs: np.ndarray
    """Momentary loudness every 100 ms (block ending at ``(i + 4) * 0.1`` s), LUFS, -inf for silence."""
    short_term_lufs: np.ndarray
    """Short-term loudness every 100 ms (block ending at ``(i + 30) * 0.1`` s), LUFS."""
    duration_s: float
    """Seconds of audio measured."""
    sample_count: int
    """Samples per channel measured."""

    def to_dict(self) -> dict[str, Any]:
        """The summary levels, rounded to 0.01, for JSON (curves left out)."""
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 2)

        return {
            "integrated_lufs": rounded(self.integrated_lufs),
            "true_peak_dbtp": rounded(self.true_peak_dbtp),
            "sample_peak_dbfs": rounded(self.sample_peak_dbfs),
            "lra_lu": rounded(self.lra_lu),
            "short_term_max_lufs": rounded(self.short_term_max_lufs),
            "momentary_max_lufs": rounded(self.momentary_max_lufs),
        }


class LoudnessMeter:
    """Feed audio chunk by chunk, then :meth:`result`. Memory: one value per 100 ms of audio."""

    def __init__(self, sample_rate: int, weights: list[float]):
        """Args:
            sample_rate: Samples per second.
            weights: BS.1770 weight of each channel (see :func:`channel_weights`).
        """
        self.sample_rate = sample_rate
        self._weights = np.asarray(weights, dtype=np.float64)[:, None]
        self._segment_samples = round(sample_rate * SEGMENT_S)
        # K-weighting runs on whole segments, the only samples the blocks read.
        self._k_weighting = BlockIir(k_weighting_sos(sample_rate), self._segment_samples, len(weights))
        self._pending = np.zeros((len(weights), 0))
        self._segments: list[float] = []
        self._factor = oversampling_factor(sample_rate)
        # An odd length delays by a whole number of output samples, so every input sample is also
        # an output sample (the oversampled peak is never under the sample peak).
        taps = _TAPS_PER_PHASE * self._factor + 1
        self._true_peak = PeakInterpolator(self._factor * lowpass_taps(taps, 1 / self._factor, 8.0), self._factor,
                                           len(weights))
        self._sample_peak = 0.0
        self._samples = 0

    def feed(self, samples: np.ndarray) -> None:
        """Add audio, float full scale 1.0, shape (channels, samples)."""
        samples = np.asarray(samples, dtype=np.float64)
        if samples.shape[1] == 0:
            return
        self._samples += samples.shape[1]
        self._sample_peak = max(self._sample_peak, float(np.max(np.abs(samples))))
        self._true_peak.feed(samples)
        pending = np.concatenate([self._pending, samples], axis=1)
        whole = pending.shape[1] // self._segment_samples
        if whole:
            weighted = self._k_weighting.filter(pending[:, : whole * self._segment_samples])
            squares = (weighted * weighted).reshape(len(self._weights), whole, self._segment_samples).mean(axis=2)
            self._segments.extend((self._weights * squares).sum(axis=0).tolist())
        self._pending = pending[:, whole * self._segment_samples :]

    def result(self) -> LoudnessMeasurement:
        """The measurement of everything fed so far (the interpolator's tail is flushed with silence)."""
        self._true_peak.flush()
        segments = np.array(self._segments)
        momentary = _block_means(segments, MOMENTARY_SEGMENTS)
        short_term = _block_means(segments, SHORT_TERM_SEGMENTS)
        momentary_lufs, short_term_lufs = _to_lufs(momentary), _to_lufs(short_term)
        return LoudnessMeasurement(
            integrated_lufs=_gated_loudness(momentary),
            true_peak_dbtp=_db(self._true_peak.peak),
            sample_peak_dbfs=_db(self._sample_peak),
            lra_lu=_loudness_range(short_term),
            short_term_max_lufs=_finite_max(short_term_lufs),
            momentary_max_lufs=_finite_max(momentary_lufs),
            momentary_lufs=momentary_lufs,
            short_term_lufs=short_term_lufs,
            duration_s=self._samples / self.sample_rate,
            sample_count=self._samples,
        )


def _db(magnitude: float) -> float | None:
    return 20 * math.log10(magnitude) if magnitude > 0 else None


def _finite_max(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else None


def _block_means(segments: np.ndarray, length: int) -> np.ndarray:
    """Mean of every run of ``length`` consecutive segments (blocks advancing one segment at a time)."""
    if len(segments) < length:
        return np.zeros(0)
    sums = np.cumsum(np.concatenate([[0.0], segments]))
    return (sums[length:] - sums[:-length]) / length


def _gated_loudness(blocks: np.ndarray) -> float | None:
    """BS.1770-4 integrated loudness of momentary block powers, or None when no block passes."""
    loud = blocks[_to_lufs(blocks) > ABSOLUTE_GATE_LUFS]
    if not loud.size:
        return None
    gate = _to_lufs(loud.mean()) + RELATIVE_GATE_LU
    return float(_to_lufs(loud[_to_lufs(loud) > gate].mean()))


def _loudness_range(blocks: np.ndarray) -> float | None:
    """EBU Tech 3342 loudness range of short-term block powers."""
    levels = _to_lufs(blocks[_to_lufs(blocks) > ABSOLUTE_GATE_LUFS])
    if not levels.size:
        return None
    gate = _to_lufs(np.mean(10 ** ((levels + 0.691) / 10))) + LRA_RELATIVE_GATE_LU
    kept = levels[levels > gate]
    low, high = np.percentile(kept, LRA_PERCENTILES)
    return float(high - low)


def measure(samples: np.ndarray, sample_rate: int, weights: list[float] | None = None) -> LoudnessMeasurement:
    """Measure a whole signal, float full scale 1.0, shape (channels, samples); weights default to 1.0."""
    meter = LoudnessMeter(sample_rate, weights or [1.0] * samples.shape[0])
    meter.feed(samples)
    return meter.result()


def measure_file(path: str | Path) -> LoudnessMeasurement:
    """Decode the first audio stream of ``path`` and measure it.

    Raises:
        MediaError: the file has no audio stream or it does not decode.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(path, "no audio stream to measure")
            stream = container.streams.audio[0]
            meter = meter_for(stream)
            resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    meter.feed(converted.to_ndarray())
            for converted in resampler.resample(None):
                meter.feed(converted.to_ndarray())
    except av.error.FFmpegError as error:
        raise MediaError(path, f"audio does not decode ({error.strerror or error})") from error
    return meter.result()


def meter_for(stream: av.audio.stream.AudioStream) -> LoudnessMeter:
    """A meter for a PyAV audio stream: its rate, and weights from its channel layout."""
    names = [channel.name for channel in stream.layout.channels]
    return LoudnessMeter(stream.rate, channel_weights(names))


LOSSY_PEAK_HEADROOM_DB = 1.0
"""Lossy encoders (AAC) overshoot the peaks they are given; their limiter ceiling sits this far
under the preset's true-peak limit."""
PCM_PEAK_HEADROOM_DB = 0.2
"""PCM keeps the samples, but resampling back from the limiter's oversampled rate can overshoot
slightly; the ceiling sits this far under the limit."""


@dataclass(frozen=True)
class LoudnessCorrection:
    """How a deliverable's programme sound meets its loudness target: one linear gain, plus a
    true-peak limiter only when the gain alone would break the peak limit (never silently)."""

    target: LoudnessSpec
    """The preset's target."""
    measured_lufs: float | None
    """Integrated loudness of the programme before correction, LUFS; None for silence."""
    measured_true_peak_dbtp: float | None
    """True peak of the programme before correction, dBTP; None for silence."""
    gain_db: float
    """Linear gain applied to the whole programme, dB."""
    limiter_ceiling_dbtp: float | None
    """Ceiling of the true-peak limiter (run 4x oversampled), dBTP; None: no limiter."""
    reason: str
    """Why this correction, in words, for the report."""

    @property
    def mode(self) -> str:
        """``linear``, ``linear+limiter`` or ``none`` (nothing to correct: silence)."""
        if self.measured_lufs is None:
            return "none"
        return "linear" if self.limiter_ceiling_dbtp is None else "linear+limiter"

    @property
    def applies(self) -> bool:
        """True when the sound is changed at all."""
        return self.mode != "none"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, levels rounded to 0.01."""
        return {
            "standard": self.target.standard,
            "target_lufs": self.target.target_lufs,
            "tolerance_lu": self.target.tolerance,
            "max_true_peak_dbtp": self.target.max_true_peak_dbtp,
            "mode": self.mode,
            "measured_lufs": None if self.measured_lufs is None else round(self.measured_lufs, 2),
            "measured_true_peak_dbtp": (
                None if self.measured_true_peak_dbtp is None else round(self.measured_true_peak_dbtp, 2)
            ),
            "gain_db": round(self.gain_db, 2),
            "limiter_ceiling_dbtp": self.limiter_ceiling_dbtp,
            "reason": self.reason,
        }


def plan_correction(measured: LoudnessMeasurement, target: LoudnessSpec, lossy: bool) -> LoudnessCorrection:
    """The gain (and limiter, if needed) that brings ``measured`` to ``target``.

    Args:
        measured: The programme sound as mixed, before correction.
        target: The preset's loudness target.
        lossy: The deliverable's audio codec is lossy (AAC): leave more headroom under the limit.
    """
    if measured.integrated_lufs is None or measured.true_peak_dbtp is None:
        return LoudnessCorrection(
            target, None, None, 0.0, None,
            "no measurable programme loudness (digital silence or under 0.4 s of sound): levels left alone",
        )
    gain = target.target_lufs - measured.integrated_lufs
    ceiling = target.max_true_peak_dbtp - (LOSSY_PEAK_HEADROOM_DB if lossy else PCM_PEAK_HEADROOM_DB)
    peak_after_gain = measured.true_peak_dbtp + gain
    if peak_after_gain <= ceiling:
        return LoudnessCorrection(
            target, measured.integrated_lufs, measured.true_peak_dbtp, gain, None,
            f"linear gain {gain:+.2f} dB; true peak {peak_after_gain:.2f} dBTP after it",
        )
    return LoudnessCorrection(
        target, measured.integrated_lufs, measured.true_peak_dbtp, gain, round(ceiling, 2),
        f"linear gain {gain:+.2f} dB would put the true peak at {peak_after_gain:+.2f} dBTP, over "
        f"{ceiling:.2f} dBTP (the {target.max_true_peak_dbtp:.1f} dBTP limit less encoder headroom): "
        f"a true-peak limiter holds the peaks",
    )


MIN_LIMITER_SLOPE = 0.2
"""When a gain change raises the limited programme's loudness by less than this share of itself,
the limiter is squashing the peaks it was meant to hold: more gain would distort, not reach."""
MAX_LIMITING_LU = 12.0
"""The most the limiter may take off the programme's loudness (the gain's loudness less the
limited result's): beyond it speech is crushed and the noise floor pumped up by as much."""


@dataclass(frozen=True)
class LimitedPass:
    """One measurement of a limited programme: the gain it was mixed with and the loudness that came out."""

    gain_db: float
    """Gain before the limiter, dB."""
    integrated_lufs: float
    """Integrated loudness of the limited result, LUFS."""


def limiter_slope(correction: LoudnessCorrection, limited: LoudnessMeasurement, earlier: LimitedPass | None) -> float:
    """How much of a gain change reaches the loudness through the limiter, 0..1: the secant through
    this pass and ``earlier``; 1 when there is no earlier pass with another gain."""
    if earlier is None or limited.integrated_lufs is None or correction.gain_db == earlier.gain_db:
        return 1.0
    slope = (limited.integrated_lufs - earlier.integrated_lufs) / (correction.gain_db - earlier.gain_db)
    return min(1.0, max(0.0, slope))


def refine_gain(
    correction: LoudnessCorrection, limited: LoudnessMeasurement, earlier: LimitedPass | None = None
) -> LoudnessCorrection:
    """The correction trimmed from a measurement of its own result: the gain by what the limiting
    took off the integrated loudness, the ceiling by any true peak the resampling after the limiter
    brought back over it. ``limited`` is the programme measured with ``correction`` applied.

    The limiter takes more off the louder it is driven, so the gain moves by the shortfall divided
    by how much of the last gain change came through (:func:`limiter_slope`, at least
    :data:`MIN_LIMITER_SLOPE`): a secant step, which reaches the target in a pass or two where a
    1:1 step creeps up on it.
    """
    if limited.integrated_lufs is None or correction.limiter_ceiling_dbtp is None:
        return correction
    shortfall = correction.target.target_lufs - limited.integrated_lufs
    trim = shortfall / max(MIN_LIMITER_SLOPE, limiter_slope(correction, limited, earlier))
    trim = min(trim, _max_gain_db(correction) - correction.gain_db)
    peak = -math.inf if limited.true_peak_dbtp is None else limited.true_peak_dbtp
    overshoot = max(0.0, peak - correction.limiter_ceiling_dbtp)
    base_reason = correction.reason.split("; trimmed")[0]
    return LoudnessCorrection(
        correction.target, correction.measured_lufs, correction.measured_true_peak_dbtp,
        correction.gain_db + trim, round(correction.limiter_ceiling_dbtp - overshoot, 2),
        f"{base_reason}; trimmed from a measurement of the limited result: gain {trim:+.2f} dB"
        + (f", ceiling {-overshoot:+.2f} dB" if overshoot else ""),
    )


def _max_gain_db(correction: LoudnessCorrection) -> float:
    """The gain at which the limiter would have to take :data:`MAX_LIMITING_LU` off to meet the target."""
    return correction.target.target_lufs - (correction.measured_lufs or 0.0) + MAX_LIMITING_LU


def limiter_shortfall(
    correction: LoudnessCorrection, limited: LoudnessMeasurement, earlier: LimitedPass | None
) -> str | None:
    """Why ``correction``'s target cannot be met under its limiter ceiling, judged from the programme
    measured with it (``limited``) and the pass before (``earlier``); None while it can be.

    It cannot once the result is outside the tolerance and either the last gain change reached the
    loudness by less than :data:`MIN_LIMITER_SLOPE` of itself or the gain is already at the most
    :data:`MAX_LIMITING_LU` allows.
    """
    if (limited.integrated_lufs is None or correction.limiter_ceiling_dbtp is None or earlier is None
            or abs(limited.integrated_lufs - correction.target.target_lufs) <= correction.target.tolerance):
        return None
    at_most = correction.gain_db >= _max_gain_db(correction) - 1e-6
    if limiter_slope(correction, limited, earlier) >= MIN_LIMITER_SLOPE and not at_most:
        return None
    target = correction.target
    allowed = correction.limiter_ceiling_dbtp - target.target_lufs
    ratio = ("" if correction.measured_true_peak_dbtp is None or correction.measured_lufs is None else
             f"; its peaks stand {correction.measured_true_peak_dbtp - correction.measured_lufs:.1f} dB over "
             f"its loudness, the target and ceiling allow {allowed:.1f}")
    return (
        f"{target.target_lufs:.1f} LUFS cannot be reached under the true-peak ceiling of "
        f"{correction.limiter_ceiling_dbtp:.2f} dBTP ({target.max_true_peak_dbtp:.1f} dBTP less encoder headroom): "
        f"raising the gain from {earlier.gain_db:+.1f} to {correction.gain_db:+.1f} dB raised the limited "
        f"programme only {limited.integrated_lufs - earlier.integrated_lufs:.2f} LU, to "
        f"{limited.integrated_lufs:.2f} LUFS, with the limiter taking "
        f"{correction.measured_lufs + correction.gain_db - limited.integrated_lufs:.1f} LU off "
        f"(the target would need more than the {MAX_LIMITING_LU:.0f} LU allowed){ratio}. Lower the target (loudness.integrated_lufs) or raise "
        f"the limit (loudness.true_peak_dbtp) in the deliverable's overrides"
    )


def loudness_problems(measured: LoudnessMeasurement, target: LoudnessSpec) -> list[str]:
    """Every way ``measured`` misses ``target`` (empty when it meets it)."""
    problems = []
    if measured.integrated_lufs is None:
        problems.append(f"loudness: expected {target.target_lufs:.1f} LUFS, measured no loudness (silence)")
    elif abs(measured.integrated_lufs - target.target_lufs) > target.tolerance:
        problems.append(
            f"loudness: expected {target.target_lufs:.1f} LUFS +-{target.tolerance} LU "
            f"({target.standard}), measured {measured.integrated_lufs:.2f} LUFS"
        )
    if measured.true_peak_dbtp is not None and measured.true_peak_dbtp > target.max_true_peak_dbtp:
        problems.append(
            f"true peak: expected at most {target.max_true_peak_dbtp:.1f} dBTP ({target.standard}), "
            f"measured {measured.true_peak_dbtp:.2f} dBTP"
        )
    return problems
