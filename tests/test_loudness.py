"""The loudness meter against EBU Tech 3341 (cases 1-6, 9, 12, true peak 15-19) and Tech 3342 (LRA 1-4).

Every signal is synthesised as the specifications define it: a 1 kHz sine in both stereo channels
(or the given channels), its level written as the sine's peak in dBFS. Tolerances are the
specifications': +-0.1 LU for loudness, +0.2/-0.4 dB for true peak, +-1 LU for loudness range.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis import loudness
from pipeline.analysis.loudness import LoudnessMeter, channel_weights, k_weighting_sos, measure

RATE = 48000


def tone(segments: list[tuple[float, float]], channels: int = 2, frequency: float = 1000.0) -> np.ndarray:
    """Consecutive 1 kHz sine segments of (peak dBFS, seconds), continuous in phase, shape (channels, n)."""
    levels = np.concatenate([np.full(round(seconds * RATE), 10 ** (dbfs / 20)) for dbfs, seconds in segments])
    wave = levels * np.sin(2 * np.pi * frequency * np.arange(levels.size) / RATE)
    return np.tile(wave, (channels, 1))


def test_k_weighting_matches_the_bs1770_table_at_48k():
    sos = k_weighting_sos(48000)
    shelf = [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585]
    highpass = [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]
    np.testing.assert_allclose(sos, [shelf, highpass], atol=1e-9)


@pytest.mark.parametrize(
    ("case", "segments", "expected"),
    [
        (1, [(-23, 20)], -23.0),
        (2, [(-33, 20)], -33.0),
        (3, [(-36, 10), (-23, 60), (-36, 10)], -23.0),
        (4, [(-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)], -23.0),
        (5, [(-26, 20), (-20, 20.1), (-26, 20)], -23.0),
    ],
)
def test_tech3341_integrated(case, segments, expected):
    assert measure(tone(segments), RATE).integrated_lufs == pytest.approx(expected, abs=0.1), f"case {case}"


def test_tech3341_case6_five_channels():
    """L, R, C, Ls, Rs at -28, -28, -24, -30, -30 dBFS; the surrounds weigh 1.41."""
    levels = [-28, -28, -24, -30, -30]
    samples = np.concatenate([tone([(level, 20)], channels=1) for level in levels])
    weights = channel_weights(["FL", "FR", "FC", "SL", "SR"])
    assert weights == [1.0, 1.0, 1.0, 1.41, 1.41]
    assert measure(samples, RATE, weights).integrated_lufs == pytest.approx(-23.0, abs=0.1)


def test_tech3341_case9_short_term_is_steady():
    """1.34 s at -20 dBFS then 1.66 s at -30, repeated: every short-term reading is -23.0."""
    result = measure(tone([(-20, 1.34), (-30, 1.66)] * 5), RATE)
    assert result.short_term_max_lufs == pytest.approx(-23.0, abs=0.1)
    assert np.all(np.abs(result.short_term_lufs - -23.0) <= 0.1)


def test_tech3341_case12_momentary_is_steady():
    """0.18 s at -20 dBFS then 0.22 s at -30, repeated: every momentary reading is -23.0."""
    result = measure(tone([(-20, 0.18), (-30, 0.22)] * 25), RATE)
    assert result.momentary_max_lufs == pytest.approx(-23.0, abs=0.1)
    assert np.all(np.abs(result.momentary_lufs - -23.0) <= 0.1)


@pytest.mark.parametrize(
    ("case", "frequency_divisor", "phase_deg", "amplitude", "expected_dbtp"),
    [
        (15, 4, 0.0, 0.5, -6.0),
        (16, 4, 45.0, 0.5, -6.0),
        (17, 6, 60.0, 0.5, -6.0),
        (18, 8, 67.5, 0.5, -6.0),
        (19, 4, 45.0, 1.41, 3.0),
    ],
)
def test_tech3341_true_peak(case, frequency_divisor, phase_deg, amplitude, expected_dbtp):
    """A sine at fs/4, fs/6 or fs/8 whose samples miss its crests; the true peak must not.

    The sine fades in and out over 10 ms: a sine switched on or off mid-cycle is a step, and the
    band-limited reconstruction of a step overshoots; the cases are about the steady crests.
    """
    n = np.arange(RATE)
    wave = amplitude * np.sin(2 * np.pi * n / frequency_divisor + np.radians(phase_deg))
    ramp = np.sin(np.linspace(0, np.pi / 2, RATE // 100)) ** 2
    wave[: ramp.size] *= ramp
    wave[-ramp.size :] *= ramp[::-1]
    result = measure(np.tile(wave, (2, 1)), RATE)
    assert expected_dbtp - 0.4 <= result.true_peak_dbtp <= expected_dbtp + 0.2, f"case {case}"
    if phase_deg:
        # The sample peak misses the crest: only the oversampled reading finds it.
        assert result.sample_peak_dbfs < result.true_peak_dbtp - 0.5


@pytest.mark.parametrize(
    ("case", "segments", "expected_lu"),
    [
        (1, [(-20, 20), (-30, 20)], 10.0),
        (2, [(-20, 20), (-15, 20)], 5.0),
        (3, [(-40, 20), (-20, 20)], 20.0),
        (4, [(-50, 20), (-35, 20), (-20, 20), (-35, 20), (-50, 20)], 15.0),
    ],
)
def test_tech3342_loudness_range(case, segments, expected_lu):
    assert measure(tone(segments), RATE).lra_lu == pytest.approx(expected_lu, abs=1.0), f"case {case}"


def test_chunked_feeding_equals_one_piece():
    """The meter streams: any chunking gives the same readings, true peak included."""
    samples = tone([(-20, 1.34), (-30, 1.66)] * 2) + 0.01 * np.random.default_rng(1).standard_normal((2, 6 * RATE))
    whole = measure(samples, RATE)
    meter = LoudnessMeter(RATE, [1.0, 1.0])
    for start in range(0, samples.shape[1], 7777):
        meter.feed(samples[:, start : start + 7777])
    chunked = meter.result()
    assert chunked.integrated_lufs == pytest.approx(whole.integrated_lufs, abs=1e-9)
    assert chunked.true_peak_dbtp == pytest.approx(whole.true_peak_dbtp, abs=1e-9)
    np.testing.assert_allclose(chunked.short_term_lufs, whole.short_term_lufs)


def test_silence_and_short_programmes_have_no_levels():
    silent = measure(np.zeros((2, RATE)), RATE)
    assert silent.integrated_lufs is None and silent.true_peak_dbtp is None and silent.lra_lu is None
    short = measure(tone([(-23, 0.3)]), RATE)
    assert short.integrated_lufs is None and short.momentary_max_lufs is None
    assert short.true_peak_dbtp == pytest.approx(-23.0, abs=0.05)


def test_other_sample_rates_read_the_same():
    """At 44.1 kHz the filters are derived again and true peak is read at 5x."""
    rate = 44100
    assert loudness.oversampling_factor(rate) == 5
    wave = 10 ** (-23 / 20) * np.sin(2 * np.pi * 1000 * np.arange(20 * rate) / rate)
    assert measure(np.tile(wave, (2, 1)), rate).integrated_lufs == pytest.approx(-23.0, abs=0.1)
