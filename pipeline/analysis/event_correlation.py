"""Event correlation: the whole picture-event envelope against the whole sound-onset envelope.

Picture events (cuts, flashes, abrupt motion changes, :mod:`pipeline.analysis.onsets`) and sound
onsets (spectral flux) on one 1 ms grid in presentation time, matched by normalised
cross-correlation over the search range. The confidence is the best correlation peak over the best
one more than two frames away, rivals being sought over every (circular) alignment of the two
signals, so it says how far the match stands above what chance alignments of these very events
score. Around an answer, windows of the clip are matched on their own to find drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.analysis.onsets import ENVELOPE_RATE_HZ, PictureEvents, SoundOnsets

MIN_CONFIDENCE = 1.7
"""Best peak over best rival needed to report an offset. Calibrated on synthetic clips: flash and
beep clips score 1.9 and up; a picture paired with another clip's sound scored up to 1.67, when
its knocks fell on the rhythm of a silently zigzagging object."""
MIN_CORRELATION = 0.1
"""Normalised cross-correlation at the best peak needed to report an offset."""
MAX_CONFIDENCE = 100.0
"""Confidence reported when nothing else correlates at all."""
RIVAL_DISTANCE_FRAMES = 2
"""A rival peak must lie more than this many frame intervals from the best one."""
DRIFT_WINDOW_S = 4.0
"""Length of the windows offsets are measured in to find drift, in seconds."""
DRIFT_HOP_S = 2.0
"""Step between drift windows, in seconds."""
DRIFT_MIN_WINDOWS = 3
"""Windows with a clear match needed before drift is estimated."""
DRIFT_MIN_T_STATISTIC = 3.0
"""The fitted slope must be this many standard errors from zero to count as real drift."""
DRIFT_MIN_CHANGE_MS = 2.0
"""... and change the offset by at least this much across the windows, in milliseconds."""


@dataclass(frozen=True)
class EventMatch:
    """The best alignment of the picture's events with the sound's onsets."""

    offset_ms: int
    """Lag of the best peak, in milliseconds (> 0: sound late)."""
    correlation: float
    """Normalised cross-correlation at the best peak."""
    rival_offset_ms: int
    """Lag of the best peak more than two frames away, in milliseconds (circular: any lag)."""
    rival_correlation: float
    """Normalised cross-correlation at that rival peak."""
    at_search_edge: bool
    """The best peak sits on the edge of the searched range: the true offset may lie beyond."""

    @property
    def confidence(self) -> float:
        """Best peak over rival peak, capped at :data:`MAX_CONFIDENCE`."""
        if self.correlation <= 0:
            return 1.0
        return self.correlation / max(self.rival_correlation, self.correlation / MAX_CONFIDENCE)



def weakness(match: EventMatch) -> str | None:
    """Why ``match`` is not good enough to report, or None when it is."""
    if match.at_search_edge:
        return (f"the best match ({match.offset_ms:+d} ms) lies at the edge of the search range: "
                "the offset may be larger")
    if match.correlation < MIN_CORRELATION:
        return (f"weak evidence: picture events and sound onsets barely agree (correlation "
                f"{match.correlation:.3f} at {match.offset_ms:+d} ms, needs {MIN_CORRELATION})")
    if match.confidence < MIN_CONFIDENCE:
        return (f"ambiguous: the best match ({match.offset_ms:+d} ms) is only {match.confidence:.2f}x "
                f"the next best ({match.rival_offset_ms:+d} ms), needs {MIN_CONFIDENCE}x")
    return None


def _envelopes(picture: PictureEvents, sound: SoundOnsets) -> tuple[np.ndarray, np.ndarray, float]:
    """Both signals on one 1 kHz grid: (picture, sound, grid origin in seconds)."""
    origin_s = np.floor(min(picture.frame_times_s[0], sound.start_s) * ENVELOPE_RATE_HZ) / ENVELOPE_RATE_HZ
    end_s = max(picture.frame_times_s[-1], sound.end_s)
    length = int(np.ceil((end_s - origin_s) * ENVELOPE_RATE_HZ)) + 1
    return picture.envelope(origin_s, length), sound.envelope(origin_s, length), origin_s


def _circular_correlation(picture: np.ndarray, sound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised correlation of ``picture`` with ``sound`` circularly delayed by every lag.

    Both are centred and scaled to unit norm, so every lag uses every event and the values are
    comparable across lags. Returns (lags in ms, -n/2..n/2, and their correlations).
    """
    picture = picture - picture.mean()
    sound = sound - sound.mean()
    length = len(picture)
    spectrum = np.conj(np.fft.rfft(picture)) * np.fft.rfft(sound)
    correlation = np.fft.irfft(spectrum, length) / (np.linalg.norm(picture) * np.linalg.norm(sound))
    lags = np.arange(length)
    lags[lags > length // 2] -= length
    return lags, correlation


def best_match(picture: PictureEvents, sound: SoundOnsets, max_offset_ms: int) -> EventMatch:
    """The best lag within the search range, and its best rival among all other alignments.

    Rivals are sought over every circular lag, not just the search range: the question is how a
    random alignment of these events and onsets would score, and every lag is one.
    """
    frame_ms = max(1, round(picture.frame_interval_s * ENVELOPE_RATE_HZ))
    max_lag = max_offset_ms + RIVAL_DISTANCE_FRAMES * frame_ms
    picture_envelope, sound_envelope, _ = _envelopes(picture, sound)
    lags, correlation = _circular_correlation(picture_envelope, sound_envelope)
    searched = np.flatnonzero(np.abs(lags) <= max_lag)
    best = int(searched[np.argmax(correlation[searched])])
    distance = np.abs(lags - lags[best])
    distance = np.minimum(distance, len(lags) - distance)
    rivals = np.flatnonzero(distance > RIVAL_DISTANCE_FRAMES * frame_ms)
    rival = int(rivals[np.argmax(correlation[rivals])]) if len(rivals) else best
    return EventMatch(
        offset_ms=int(lags[best]),
        correlation=float(correlation[best]),
        rival_offset_ms=int(lags[rival]),
        rival_correlation=float(correlation[rival]) if len(rivals) else 0.0,
        at_search_edge=abs(int(lags[best])) == max_lag,
    )


def drift_fit(picture: PictureEvents, sound: SoundOnsets, offset_ms: int) -> tuple[float, float] | None:
    """The slope of the offset over time (ms per minute) and the offset at the picture's start (ms),
    from windows measured near ``offset_ms``; None unless the drift is real.

    Each 4 s window (2 s apart) is matched within two frames of the clip's offset. A line through
    the windows' offsets is real drift when at least three windows match clearly, the slope stands
    three standard errors clear of zero, and it moves the offset by 2 ms or more.
    """
    picture_envelope, sound_envelope, origin_s = _envelopes(picture, sound)
    frame_ms = max(1, round(picture.frame_interval_s * ENVELOPE_RATE_HZ))
    window = int(DRIFT_WINDOW_S * ENVELOPE_RATE_HZ)
    hop = int(DRIFT_HOP_S * ENVELOPE_RATE_HZ)
    reach = RIVAL_DISTANCE_FRAMES * frame_ms
    lags = np.arange(offset_ms - reach, offset_ms + reach + 1)
    centres_s, offsets_ms = [], []
    for start in range(0, len(picture_envelope) - window + 1, hop):
        events = picture_envelope[start : start + window]
        if not events.any():
            continue
        scores = [_window_correlation(events, sound_envelope, start, int(lag)) for lag in lags]
        best = int(np.argmax(scores))
        if scores[best] >= MIN_CORRELATION and 0 < best < len(lags) - 1:
            centres_s.append(origin_s + (start + window / 2) / ENVELOPE_RATE_HZ)
            offsets_ms.append(float(lags[best]))
    if len(centres_s) < DRIFT_MIN_WINDOWS:
        return None
    times, offsets = np.array(centres_s), np.array(offsets_ms)
    slope, intercept = np.polyfit(times, offsets, 1)
    residuals = offsets - (slope * times + intercept)
    spread = np.sum((times - times.mean()) ** 2)
    standard_error = np.sqrt(np.sum(residuals**2) / (len(times) - 2) / spread)
    change_ms = abs(slope) * (times[-1] - times[0])
    if change_ms < DRIFT_MIN_CHANGE_MS or abs(slope) < DRIFT_MIN_T_STATISTIC * standard_error:
        return None
    first_frame_s = float(picture.frame_times_s[0])
    return round(float(slope * 60), 1), round(float(intercept + slope * first_frame_s), 1)


def _window_correlation(events: np.ndarray, sound: np.ndarray, start: int, lag: int) -> float:
    """Normalised correlation of a window of picture events with the sound ``lag`` ms later."""
    begin = start + lag
    segment = np.zeros(len(events))
    source_from, source_to = max(0, begin), min(len(sound), begin + len(events))
    if source_to > source_from:
        segment[source_from - begin : source_to - begin] = sound[source_from:source_to]
    events = events - events.mean()
    segment = segment - segment.mean()
    norm = np.linalg.norm(events) * np.linalg.norm(segment)
    return float(events @ segment / norm) if norm > 0 else 0.0
