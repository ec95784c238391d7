"""The loudness meter's two filters in numpy: K-weighting a block at a time, and the true-peak interpolator.

SciPy's ``signal`` package did both (``sosfilt``, ``firwin`` and ``upfirdn``), and importing it cost
0.7 CPU s: more than measuring an 8 s deliverable's sound, paid by every process that verifies a
render. The results are the same to float64 rounding (``tests/test_meter_filters.py`` holds them to
SciPy's).

- :class:`BlockIir`: a cascade of biquads (second-order sections, SciPy's layout) as a state-space
  system, run a whole block of fixed length at once: the block's response from rest is one FFT
  convolution with the impulse response, plus what the state carried in contributes, a matrix
  product. Exact: within a block, the response from rest *is* that convolution.
- :class:`PeakInterpolator`: the largest magnitude of a signal oversampled by a windowed-sinc
  polyphase interpolator. A block whose input could not reach the peak found so far (its largest
  sample times the largest sum of tap magnitudes of any phase) is not interpolated: the peak is the
  same, and most blocks of a programme sit well under its loudest moment.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=8)
def _block_matrices(sos_bytes: bytes, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """For second-order sections (rows ``b0 b1 b2 a0 a1 a2``, float64 bytes) and a block length:
    the impulse response's spectrum, the state's response over the block (states x length), the
    block's contribution to the next state (states x length), the state's decay over a block
    (states x states), and the FFT length."""
    sos = np.frombuffer(sos_bytes).reshape(-1, 6)
    a_matrix, b_vector, c_vector, d_scalar = _state_space(sos)
    order = len(b_vector)
    # Row n of `state_out` is C A^n; column j of `powers` is A^j B.
    state_out = np.empty((length, order))
    powers = np.empty((order, length))
    row, column = c_vector.copy(), b_vector.copy()
    for n in range(length):
        state_out[n], powers[:, n] = row, column
        row, column = row @ a_matrix, a_matrix @ column
    impulse = np.concatenate([[d_scalar], c_vector @ powers[:, : length - 1]])
    fft_length = 2 * length
    return (np.fft.rfft(impulse, fft_length), state_out.T.copy(), powers[:, ::-1].copy(),
            np.linalg.matrix_power(a_matrix, length), fft_length)


def _state_space(sos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A, B, C, D of a cascade of biquads, each in transposed direct form II, first section first."""
    a_total, b_total, c_total, d_total = np.zeros((0, 0)), np.zeros(0), np.zeros(0), 1.0
    for b0, b1, b2, a0, a1, a2 in sos:
        b0, b1, b2, a1, a2 = b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0
        # One section: s' = [[-a1, 1], [-a2, 0]] s + [b1 - a1 b0, b2 - a2 b0] u; y = s[0] + b0 u.
        a_section = np.array([[-a1, 1.0], [-a2, 0.0]])
        b_section = np.array([b1 - a1 * b0, b2 - a2 * b0])
        c_section = np.array([1.0, 0.0])
        # Its input u is the cascade so far: u = C_total s_total + D_total x.
        order = len(b_total)
        a_next = np.zeros((order + 2, order + 2))
        a_next[:order, :order] = a_total
        a_next[order:, :order] = np.outer(b_section, c_total)
        a_next[order:, order:] = a_section
        b_total = np.concatenate([b_total, b_section * d_total])
        c_total = np.concatenate([b0 * c_total, c_section])
        a_total, d_total = a_next, b0 * d_total
    return a_total, b_total, c_total, d_total


class BlockIir:
    """A cascade of biquads over blocks of exactly ``length`` samples, from rest, state kept between blocks."""

    def __init__(self, sos: np.ndarray, length: int, channels: int):
        """Args:
            sos: Second-order sections, one row ``b0 b1 b2 a0 a1 a2`` each (SciPy's layout).
            length: Samples per block.
            channels: Channels filtered side by side.
        """
        self.length = length
        (self._spectrum, self._state_out, self._state_in, self._decay,
         self._fft_length) = _block_matrices(np.ascontiguousarray(sos, np.float64).tobytes(), length)
        self._state = np.zeros((channels, self._decay.shape[0]))

    def filter(self, blocks: np.ndarray) -> np.ndarray:
        """Filter ``blocks`` (channels, whole blocks x ``length``) in order; the filtered samples, same shape."""
        out = np.empty_like(blocks, dtype=np.float64)
        for start in range(0, blocks.shape[1], self.length):
            block = blocks[:, start : start + self.length]
            from_rest = np.fft.irfft(np.fft.rfft(block, self._fft_length) * self._spectrum, self._fft_length)
            out[:, start : start + self.length] = from_rest[:, : self.length] + self._state @ self._state_out
            self._state = self._state @ self._decay.T + block @ self._state_in.T
        return out


def lowpass_taps(taps: int, cutoff: float, kaiser_beta: float) -> np.ndarray:
    """A linear-phase windowed-sinc lowpass (``cutoff`` a share of Nyquist), unity gain at DC: what
    SciPy's ``firwin(taps, cutoff, window=("kaiser", beta))`` gives."""
    offsets = np.arange(taps) - (taps - 1) / 2
    ideal = cutoff * np.sinc(cutoff * offsets) * np.kaiser(taps, kaiser_beta)
    return ideal / ideal.sum()


class PeakInterpolator:
    """The largest magnitude of a signal oversampled ``factor`` times through ``taps`` (a lowpass at
    1/``factor`` of Nyquist, gain ``factor``, an odd length ``factor * history + 1``).

    Fed block by block; each block is interpolated with the ``history`` samples before it (silence
    before the first), so every output sample is computed once, from a full set of taps.
    """

    def __init__(self, taps: np.ndarray, factor: int, channels: int):
        self.factor = factor
        self.history = (len(taps) - 1) // factor
        span = self.history + 1
        padded = np.zeros(span * factor)
        padded[: len(taps)] = taps
        # Column p: phase p's taps, oldest input sample first, so that a window of span input
        # samples times this matrix is the outputs factor * (last sample) + p.
        self._phases = padded.reshape(span, factor)[::-1].copy()
        self._reach = float(np.abs(self._phases).sum(axis=0).max())
        self._recent = np.zeros((channels, self.history))
        self.peak = 0.0

    def feed(self, samples: np.ndarray) -> None:
        """Add samples (channels, n)."""
        joined = np.concatenate([self._recent, samples], axis=1)
        self._recent = joined[:, -self.history :]
        # No output of this block can exceed its largest input times the largest phase gain.
        if not samples.shape[1] or float(np.abs(joined).max()) * self._reach <= self.peak:
            return
        windows = np.lib.stride_tricks.sliding_window_view(joined, self.history + 1, axis=1)
        self.peak = max(self.peak, float(np.abs(windows @ self._phases).max()))

    def flush(self) -> None:
        """Interpolate the last samples against the silence after them."""
        self.feed(np.zeros_like(self._recent))
