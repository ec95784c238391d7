"""Where sounds start, judged against the sound's own level just before: a word, a knock or a note
over room tone, a music bed or generated ambience.

A threshold on the clip's typical onset strength fails over a bed: noise and music make spectral
flux everywhere, so a word over room tone stands out from the median by much less than from silence.
Here each instant is compared with the 100 ms before it, band by band: a sound starts where, in at
least :data:`BAND_SHARE` of 24 log-spaced bands (125 Hz to 8 kHz), the level over the next 30 ms
rises :data:`RISE_DB` above the level of those 100 ms (counted from :data:`BAND_FLOOR_DB` under the
local level), and the sound as a whole gets louder. A bed, steady or fluctuating, keeps its
bands near their own recent level; a sound added on top lifts the bands it occupies. Averaging
over 30 and 100 ms keeps the random frame-to-frame wobble of noise under the threshold.

Measured on mixes of real speech, singing and sound effects from the development clips, and
synthetic knocks and plucks, placed at known instants over room tone, a music pad, and real
underwater and outdoor ambience (6 to 18 dB above the bed): see ``tests/test_sound_starts.py``.
"""

from __future__ import annotations

import numpy as np

ANALYSIS_RATE_HZ = 16000
"""Sample rate the sound must be given at (mono)."""
WINDOW_SAMPLES = 512
"""Hann window of the band levels: 32 ms, fine enough in frequency to split 125 Hz bands."""
HOP_SAMPLES = 80
"""Band levels every 5 ms."""
BAND_COUNT = 24
"""Log-spaced bands asked for between 125 Hz and 8 kHz (the narrowest merge)."""
BEFORE_S = 0.1
"""The level a rise is measured from: the bands' mean level over this long ..."""
GAP_S = 0.01
"""... ending this long before the instant (so the attack itself is not part of it) ..."""
AFTER_S = 0.03
"""... to the mean level over this long from the instant."""
RISE_DB = 8.0
"""A band rises when it gains this many dB (tuned on half the mixes: 6 dB lets ambience through,
10 dB misses quiet words)."""
BAND_SHARE = 0.25
"""A sound starts where at least this share of the bands rise (a quarter: a knock or a voice fills
a few octaves, not all of them)."""
BAND_FLOOR_DB = 40.0
"""Band levels are counted from this many dB under the local level (all bands together, over
:data:`BEFORE_S`)."""
SEPARATION_S = 0.05
"""Two starts are at least this far apart: the strongest rise within it is the start."""
CHUNK_FRAMES = 8192
"""Band-level frames computed at once, bounding memory for long sound tracks."""


def sound_starts(samples: np.ndarray) -> np.ndarray:
    """Seconds from the first sample at which sounds start, ascending.

    Args:
        samples: Mono sound at :data:`ANALYSIS_RATE_HZ`, float, full scale 1.0.
    """
    before, gap, after = (round(seconds * ANALYSIS_RATE_HZ / HOP_SAMPLES) for seconds in (BEFORE_S, GAP_S, AFTER_S))
    # Silence before the first sample: a sound that starts with the file starts there.
    lead = (before + gap) * HOP_SAMPLES
    levels = _band_levels_db(np.concatenate([np.zeros(lead, np.float32), samples]))
    if len(levels) < before + gap + after + 1:
        return np.zeros(0)
    running = np.vstack([np.zeros((1, levels.shape[1])), np.cumsum(levels, axis=0)])
    instants = np.arange(before + gap, len(levels) - after)
    level_before = (running[instants - gap] - running[instants - gap - before]) / before
    level_after = (running[instants + after] - running[instants]) / after
    local_db = _total_db(level_before)
    # Bands far below the local level do not count: an abrupt end splatters into every band for a
    # moment, lifting the empty ones by tens of dB without anything starting.
    floor = (local_db - BAND_FLOOR_DB)[:, None]
    band_rise = np.maximum(level_after, floor) - np.maximum(level_before, floor)
    louder = _total_db(level_after) > local_db
    rise = np.zeros(len(levels))
    rise[instants] = np.where(louder, np.quantile(band_rise, 1 - BAND_SHARE, axis=1), 0.0)
    separation = round(SEPARATION_S * ANALYSIS_RATE_HZ / HOP_SAMPLES)
    from scipy.ndimage import maximum_filter1d  # here, not with the module: importing SciPy costs 0.8 CPU s

    strongest = maximum_filter1d(rise, size=2 * separation + 1, mode="constant")
    frames = np.flatnonzero((rise >= RISE_DB) & (rise >= strongest))
    # A frame is dated at its window's centre.
    return (frames * HOP_SAMPLES - lead + WINDOW_SAMPLES / 2) / ANALYSIS_RATE_HZ


def _total_db(band_levels_db: np.ndarray) -> np.ndarray:
    """The power of all bands together, dB, from per-band levels (frames, bands)."""
    return 10 * np.log10(np.sum(10 ** (band_levels_db / 10), axis=1))


def _band_levels_db(samples: np.ndarray) -> np.ndarray:
    """Level of each band in each window, dB, shape (frames, bands)."""
    frame_count = (len(samples) - WINDOW_SAMPLES) // HOP_SAMPLES + 1
    lowest_bin = round(125 * WINDOW_SAMPLES / ANALYSIS_RATE_HZ)
    edges = np.unique(np.geomspace(lowest_bin, WINDOW_SAMPLES // 2, BAND_COUNT + 1).round().astype(int))
    if frame_count < 1:
        return np.zeros((0, len(edges) - 1))
    window = np.hanning(WINDOW_SAMPLES).astype(np.float32)
    chunks = []
    for first in range(0, frame_count, CHUNK_FRAMES):
        starts = HOP_SAMPLES * np.arange(first, min(frame_count, first + CHUNK_FRAMES))
        frames = samples[starts[:, None] + np.arange(WINDOW_SAMPLES)].astype(np.float32) * window
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        chunks.append(10 * np.log10(np.add.reduceat(power, edges[:-1], axis=1) + 1e-10))
    return np.concatenate(chunks)
