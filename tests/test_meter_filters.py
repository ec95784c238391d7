"""The loudness meter's numpy filters against SciPy's (``sosfilt``, ``firwin``, ``upfirdn``), which they replace."""

import numpy as np
import pytest
from scipy import signal

from pipeline.analysis.loudness import k_weighting_sos
from pipeline.analysis.meter_filters import BlockIir, PeakInterpolator, lowpass_taps


def _programme(rate: int, seconds: float, seed: int = 1) -> np.ndarray:
    """Two channels of speech-like noise bursts over a low hum with a few near-full-scale clicks."""
    rng = np.random.default_rng(seed)
    times = np.arange(int(rate * seconds)) / rate
    noise = rng.normal(0, 0.1, (2, len(times))) * (np.sin(2 * np.pi * 3 * times) > 0)
    hum = 0.3 * np.sin(2 * np.pi * 50 * times + np.array([[0.0], [1.0]]))
    signal_ = noise + hum
    signal_[:, rng.integers(0, len(times), 5)] = 0.97
    return signal_


@pytest.mark.parametrize("rate", [44_100, 48_000, 96_000])
def test_k_weighting_in_blocks_equals_sosfilt(rate):
    samples = _programme(rate, 2.0)
    segment = round(rate / 10)
    whole = samples[:, : samples.shape[1] // segment * segment]
    expected = signal.sosfilt(k_weighting_sos(rate), whole, axis=1)
    blocks = BlockIir(k_weighting_sos(rate), segment, 2)
    # Fed one, then three segments at a time: the state carries across calls.
    filtered = np.concatenate([blocks.filter(whole[:, :segment]), blocks.filter(whole[:, segment:])], axis=1)
    assert np.max(np.abs(filtered - expected)) < 1e-12


def test_lowpass_taps_equal_firwin():
    for factor in (2, 4):
        taps = 24 * factor + 1
        assert np.allclose(lowpass_taps(taps, 1 / factor, 8.0),
                           signal.firwin(taps, 1 / factor, window=("kaiser", 8.0)), atol=1e-15)


@pytest.mark.parametrize("factor", [2, 4])
def test_true_peak_equals_upfirdn(factor):
    samples = _programme(48_000, 1.0, seed=factor)
    taps = factor * lowpass_taps(24 * factor + 1, 1 / factor, 8.0)
    joined = np.concatenate([np.zeros((2, 24)), samples, np.zeros((2, 24))], axis=1)
    expected = np.abs(signal.upfirdn(taps, joined, up=factor, axis=1)[:, 24 * factor : joined.shape[1] * factor]).max()
    interpolator = PeakInterpolator(taps, factor, 2)
    for start in range(0, samples.shape[1], 1000):
        interpolator.feed(samples[:, start : start + 1000])
    interpolator.flush()
    assert interpolator.peak == pytest.approx(expected, rel=1e-12)
    assert interpolator.peak > np.abs(samples).max()
