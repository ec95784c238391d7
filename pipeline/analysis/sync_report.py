"""What a sync measurement reports: the standards it is judged against, the container's timing
facts, and the report itself (:class:`SyncReport`, the manifest's ``inputs[].sync``).

Measured by :func:`pipeline.analysis.sync.measure_sync`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av

from pipeline.errors import JobError
from pipeline.media.probe import MediaInfo
from pipeline.model.timebase import format_rate

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


def container_findings(info: MediaInfo) -> ContainerFindings:
    """Timing facts from the container and the video bitstream, with a note for each oddity."""
    video, audio = info.video, info.audio
    nominal, audio_frame_samples = declared_timing(info.path)
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


def declared_timing(path: Path) -> tuple[Fraction | None, int]:
    """The frame rate the video bitstream declares (H.264/HEVC timing info; None without one), and
    the samples per coded audio frame (1024 for AAC; 1 for PCM, which has no frames, or no audio)."""
    with av.open(str(path), metadata_errors="ignore") as container:
        declared = container.streams.video[0].codec_context.framerate
        audio = container.streams.audio
        frame_samples = (audio[0].codec_context.frame_size or 1) if audio else 1
    return (Fraction(declared) if declared else None), frame_samples
