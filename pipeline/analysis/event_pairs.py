"""Sync from agreeing event pairs: sharp picture events matched one to one with sound onsets.

Seven flashes that each meet a click 120 ms later are overwhelming evidence of a 120 ms offset,
however much else moves in the picture. A correlation of the whole event signals dilutes that
evidence with every picture event the sound does not share; counting does not. The picture's
sharp events (local peaks of :class:`~pipeline.analysis.onsets.PictureEvents` strength) and the sound's
onsets (local peaks of spectral flux) are paired at every lag within the search range; the lag
window one frame wide that pairs the most of them, each event and onset used once, is the
candidate (a 5 ms window is tried too). It decides when chance cannot explain that many pairs:
with ``P`` picture events and ``S`` onsets spread over ``T`` seconds, a picture event meets some
onset in a given window of width ``w`` with probability ``p = S w / T``, the pairs in one window
are at most binomial ``(P, p)``, and the search tries ``2 * range / w`` windows of each width (a
union bound). The offset is the median of the paired differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.analysis.onsets import ENVELOPE_RATE_HZ, PictureEvents, SoundOnsets

MIN_PICTURE_EVENT = 1.0
"""Smallest event strength of a sharp picture event (a local peak of the strength): a flash or a
cut scores several, steady motion nothing."""
MIN_ONSET_SHARE = 0.2
"""Smallest sound onset, as a share of the clip's largest spectral flux peak."""
TIGHT_WINDOW_MS = 5
"""Besides one frame, pairs are also sought agreeing within this many milliseconds: events that
fall on frames, as flashes and cuts do, meet their onsets that closely, which chance rarely does."""
MIN_PAIRS = 3
"""Fewest agreeing pairs that can decide, whatever the odds."""
MAX_CHANCE = 1e-4
"""Largest probability that chance alone lines up as many pairs at some lag for the pairs to decide."""


@dataclass(frozen=True)
class EventAgreement:
    """The lag at which most sharp picture events meet a sound onset, and how unlikely that is by chance."""

    offset_ms: int
    """Median of the paired differences, onset minus picture event, in milliseconds (> 0: sound late)."""
    pairs: int
    """Picture events paired one to one with an onset within one window of lags (5 ms or a frame wide)."""
    picture_events: int
    """Sharp picture events in the part of the clip that has sound."""
    sound_onsets: int
    """Sound onsets in the part of the clip that has picture."""
    spread_ms: float
    """Largest minus smallest paired difference, in milliseconds."""
    chance: float
    """Probability that chance alone lines up at least this many pairs at some searched lag (at most 1)."""

    @property
    def decides(self) -> bool:
        """Enough pairs, too unlikely by chance: the offset is determined."""
        return self.pairs >= MIN_PAIRS and self.chance <= MAX_CHANCE

    def describe(self) -> str:
        """The evidence in words."""
        return (f"{self.pairs} of {self.picture_events} sharp picture events meet one of "
                f"{self.sound_onsets} sound onsets at {self.offset_ms:+d} ms (spread {self.spread_ms:.0f} ms); "
                f"chance of as many at some lag {self.chance:.1g}, needs at most {MAX_CHANCE:g}")


def event_agreement(picture: PictureEvents, sound: SoundOnsets, max_offset_ms: int) -> EventAgreement | None:
    """The best-agreeing lag of sharp picture events and sound onsets; None when either has none."""
    frame_s = picture.frame_interval_s
    if frame_s <= 0:
        return None
    start_s = max(float(picture.frame_times_s[0]), sound.start_s)
    end_s = min(float(picture.frame_times_s[-1]) + frame_s, sound.end_s)
    events = _sharp_events(picture)
    onsets = _onset_times(sound, frame_s)
    events = events[(events >= start_s) & (events < end_s)]
    onsets = onsets[(onsets >= start_s) & (onsets < end_s)]
    if not len(events) or not len(onsets) or end_s <= start_s:
        return None
    reach_s = max_offset_ms / 1000 + frame_s
    event_index, onset_index = np.nonzero(np.abs(onsets[None, :] - events[:, None]) <= reach_s)
    if not len(event_index):
        return None
    differences = onsets[onset_index] - events[event_index]
    order = np.argsort(differences)
    differences, event_index, onset_index = differences[order], event_index[order], onset_index[order]
    widths_s = (TIGHT_WINDOW_MS / 1000, frame_s)
    candidates = []
    for width_s in widths_s:
        first, last, pairs = _fullest_window(differences, event_index, onset_index, width_s)
        hit_probability = min(1.0, len(onsets) * width_s / (end_s - start_s))
        windows = len(widths_s) * 2 * reach_s / width_s
        chance = min(1.0, windows * binomial_tail(pairs, len(events), hit_probability))
        candidates.append((chance, -pairs, first, last))
    chance, pairs, first, last = min(candidates)
    paired = differences[first:last]
    return EventAgreement(
        offset_ms=round(float(np.median(paired)) * 1000), pairs=-pairs, picture_events=len(events),
        sound_onsets=len(onsets), spread_ms=float(paired[-1] - paired[0]) * 1000, chance=chance,
    )


def _fullest_window(
    differences: np.ndarray, event_index: np.ndarray, onset_index: np.ndarray, width_s: float
) -> tuple[int, int, int]:
    """The window of sorted ``differences`` no wider than ``width_s`` that pairs the most events
    with onsets one to one: (first, end, pairs), the tightest of the fullest."""
    best = (0, 1, 0, 0.0)
    for first in range(len(differences)):
        last = int(np.searchsorted(differences, differences[first] + width_s, side="right"))
        pairs = min(len(set(event_index[first:last].tolist())), len(set(onset_index[first:last].tolist())))
        spread = float(differences[last - 1] - differences[first])
        if pairs > best[2] or (pairs == best[2] and spread < best[3]):
            best = (first, last, pairs, spread)
    return best[0], best[1], best[2]


def _sharp_events(picture: PictureEvents) -> np.ndarray:
    """Times of the frames whose event strength is a local peak of at least :data:`MIN_PICTURE_EVENT`."""
    strength = picture.strength
    padded = np.pad(strength, 1)
    peak = (strength >= padded[:-2]) & (strength > padded[2:]) & (strength >= MIN_PICTURE_EVENT)
    return picture.frame_times_s[peak]


def _onset_times(sound: SoundOnsets, frame_s: float) -> np.ndarray:
    """Times of spectral flux peaks of at least :data:`MIN_ONSET_SHARE` of the largest, the
    strongest within each half frame either side."""
    flux = sound.strength
    if not len(flux) or flux.max() <= 0:
        return np.zeros(0)
    half = max(1, round(frame_s * ENVELOPE_RATE_HZ / 2))
    padded = np.pad(flux, half)
    neighbourhood = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).max(axis=1)
    peak = (flux >= neighbourhood) & (flux >= MIN_ONSET_SHARE * flux.max())
    # Of a flat top, the first sample.
    peak &= np.concatenate([[True], flux[1:] > flux[:-1]]) | np.concatenate([[True], ~peak[:-1]])
    return sound.start_s + np.flatnonzero(peak) / ENVELOPE_RATE_HZ


def binomial_tail(at_least: int, trials: int, probability: float) -> float:
    """P(X >= ``at_least``) for X binomial (``trials``, ``probability``): SciPy's
    ``binom.sf(at_least - 1, trials, probability)``, summed term by term in logs (positive terms, no
    cancellation) rather than importing ``scipy.stats`` (0.7 CPU s) for it."""
    if at_least <= 0:
        return 1.0
    if at_least > trials or probability <= 0:
        return 0.0
    if probability >= 1:
        return 1.0
    log_p, log_q, log_all = math.log(probability), math.log1p(-probability), math.lgamma(trials + 1)
    return math.fsum(math.exp(log_all - math.lgamma(k + 1) - math.lgamma(trials - k + 1) + k * log_p
                              + (trials - k) * log_q) for k in range(at_least, trials + 1))
