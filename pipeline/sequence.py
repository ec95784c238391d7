"""Timeline arithmetic: where each shot sits in an output, in whole frames and samples.

Positions are integers at the output's frame rate and sample rate; seconds are exact fractions and
are converted once, so nothing accumulates rounding error across joins.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from pipeline.errors import JobError
from pipeline.job import Shot
from pipeline.probe import MediaInfo
from pipeline.timebase import frames_to_samples, parse_time, seconds_to_frames


@dataclass(frozen=True)
class ShotSpan:
    """One shot's source range and its place on the output timeline."""

    source_start_frame: int
    """First source frame used, counted at the output rate from the source's first frame."""
    frame_count: int
    """Frames the shot contributes to the output."""
    timeline_start_frame: int
    """Output frame where the shot begins."""
    timeline_start_sample: int
    """Output audio sample where the shot begins."""
    sample_count: int
    """Audio samples the shot contributes to the output."""


@dataclass(frozen=True)
class Timeline:
    """Shots laid end to end (hard cuts) at one frame rate and sample rate."""

    frame_rate: Fraction
    """Output frames per second."""
    sample_rate: int
    """Output audio samples per second."""
    spans: tuple[ShotSpan, ...]
    """One span per shot, in order."""

    @property
    def frame_count(self) -> int:
        """Total output frames."""
        return sum(span.frame_count for span in self.spans)

    @property
    def sample_count(self) -> int:
        """Total output audio samples per channel."""
        return sum(span.sample_count for span in self.spans)

    @property
    def duration_s(self) -> Fraction:
        """Exact output duration in seconds."""
        return self.frame_count / self.frame_rate


def shot_bounds_s(shot: Shot, media: MediaInfo, field_prefix: str) -> tuple[Fraction, Fraction]:
    """A shot's in and out points in source seconds, measured from the first video frame.

    Frames and timecode are read at the source's own rate, as an editor logging the clip would.

    Raises:
        JobError: a point lies outside the source or the in point is not before the out point.
    """
    source_rate = media.video.planning_rate
    source_end = media.video.duration_s
    try:
        in_s = parse_time(shot.in_point, source_rate) if shot.in_point is not None else Fraction(0)
    except ValueError as error:
        raise JobError(f"{field_prefix}.in: {error} (source {media.path})") from None
    try:
        out_s = parse_time(shot.out_point, source_rate) if shot.out_point is not None else source_end
    except ValueError as error:
        raise JobError(f"{field_prefix}.out: {error} (source {media.path})") from None
    if in_s >= source_end:
        raise JobError(
            f"{field_prefix}.in: {shot.in_point} is at or past the end of {media.path} "
            f"({float(source_end):.3f} s)"
        )
    if out_s > source_end:
        raise JobError(
            f"{field_prefix}.out: {shot.out_point} is past the end of {media.path} "
            f"({float(source_end):.3f} s)"
        )
    if in_s >= out_s:
        raise JobError(
            f"{field_prefix}: in point {shot.in_point} is not before out point {shot.out_point}"
        )
    return in_s, out_s


def build_timeline(
    shots: list[Shot], media: list[MediaInfo], frame_rate: Fraction, sample_rate: int
) -> Timeline:
    """Lay shots end to end at ``frame_rate``; each shot's audio ends exactly where its picture does."""
    spans = []
    timeline_frame = 0
    for number, (shot, info) in enumerate(zip(shots, media, strict=True)):
        in_s, out_s = shot_bounds_s(shot, info, f"shots.{number}")
        first = seconds_to_frames(in_s, frame_rate)
        frame_count = max(1, seconds_to_frames(out_s, frame_rate) - first)
        start_sample = frames_to_samples(timeline_frame, frame_rate, sample_rate)
        end_sample = frames_to_samples(timeline_frame + frame_count, frame_rate, sample_rate)
        spans.append(
            ShotSpan(
                source_start_frame=first,
                frame_count=frame_count,
                timeline_start_frame=timeline_frame,
                timeline_start_sample=start_sample,
                sample_count=end_sample - start_sample,
            )
        )
        timeline_frame += frame_count
    return Timeline(frame_rate=frame_rate, sample_rate=sample_rate, spans=tuple(spans))
