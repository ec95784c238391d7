"""Timeline arithmetic: where each shot, transition and split edit sits in an output, in whole frames
and samples.

Positions are integers at the output's frame rate and sample rate; seconds are exact fractions and
each boundary is converted once, so nothing accumulates rounding error across joins. Transition and
split-edit lengths are given in frames at the sequence rate and converted to the output's rate.

Length of the cut: the sum of the shots less the sum of the transition overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pipeline.errors import JobError
from pipeline.model.job import Job, Shot
from pipeline.media.probe import MediaInfo
from pipeline.model.timebase import frames_to_samples, parse_time, round_half_up, seconds_to_frames


@dataclass(frozen=True)
class ShotSpan:
    """One shot's source range and its place on the output timeline."""

    source_start_frame: int
    """First source frame used, counted at the output rate from the source's first frame."""
    frame_count: int
    """Frames of picture the shot contributes, transition overlaps included."""
    timeline_start_frame: int
    """Output frame where the shot's picture begins."""
    audio_source_start_sample: int
    """First source audio sample used, counted from the source's first video frame."""
    audio_timeline_start_sample: int
    """Output sample where the shot's sound begins (earlier than its picture in a J-cut)."""
    sample_count: int
    """Audio samples the shot contributes, crossfade overlaps included."""
    speed: Fraction = Fraction(1)
    """How much faster than recorded the shot plays (``rate_conversion: speed``, e.g. 25/24); its
    frames and samples above count in the sped-up time."""


@dataclass(frozen=True)
class Join:
    """The hand-over from one shot to the next."""

    overlap_frames: int
    """Frames the two pictures overlap; 0 for a cut."""
    xfade: str | None
    """xfade transition name; None for a cut."""
    smooth: bool
    """Ease the transition in and out."""
    crossfade_samples: int
    """Samples the two sounds overlap in an equal-power crossfade; 0 for a hard audio cut."""


@dataclass(frozen=True)
class Timeline:
    """Shots laid end to end with their transitions, at one frame rate and sample rate."""

    frame_rate: Fraction
    """Output frames per second."""
    sample_rate: int
    """Output audio samples per second."""
    spans: tuple[ShotSpan, ...]
    """One span per shot, in order."""
    joins: tuple[Join, ...]
    """One join between each pair of neighbouring shots."""
    start_frame: int = 0
    """Where this timeline begins in the whole sequence, in frames; not 0 for a :class:`TimelineWindow`."""

    @property
    def frame_count(self) -> int:
        """Total output frames."""
        last = self.spans[-1]
        return last.timeline_start_frame + last.frame_count

    @property
    def sample_count(self) -> int:
        """Total output audio samples per channel."""
        end = self.start_frame + self.frame_count
        return (frames_to_samples(end, self.frame_rate, self.sample_rate)
                - frames_to_samples(self.start_frame, self.frame_rate, self.sample_rate))


@dataclass(frozen=True)
class TimelineWindow:
    """A stretch of a timeline rendered on its own, as a timeline counted from its first frame."""

    first_shot: int
    """Index in the whole timeline of the window's first shot."""
    timeline: Timeline
    """The window's shots (the first and last possibly cut short) and the joins between them."""

    @property
    def shot_count(self) -> int:
        """Shots (or parts of shots) in the window."""
        return len(self.timeline.spans)


def split_timeline(timeline: Timeline, max_shots: int) -> list[TimelineWindow]:
    """Cut ``timeline`` into consecutive windows of at most ``max_shots`` shots each.

    ffmpeg opens every input of a graph at the start and keeps each one's decoder and frame queues
    until the end, so one graph's memory grows with the shot count; windows rendered one after the
    other keep it bounded. Each boundary falls inside a shot, at a frame where that shot alone is
    seen and heard (no transition, crossfade or split edit crosses it), so the windows laid end to
    end give exactly the frames and samples of the whole timeline. A window may exceed ``max_shots``
    where transitions leave no such frame in the shot that would end it.
    """
    shot_total = len(timeline.spans)
    windows: list[TimelineWindow] = []
    first, start = 0, 0
    while True:
        boundary = None
        if shot_total - first > max_shots:
            for shot in (*range(first + max_shots - 1, first, -1), *range(first + max_shots, shot_total - 1)):
                boundary = _solo_frame(timeline, shot, after=start)
                if boundary is not None:
                    break
        end = timeline.frame_count if boundary is None else boundary
        last = shot_total - 1 if boundary is None else shot
        windows.append(TimelineWindow(first, _window(timeline, first, last, start, end)))
        if boundary is None:
            return windows
        first, start = shot, boundary


def _solo_frame(timeline: Timeline, shot: int, after: int) -> int | None:
    """A frame inside ``shot`` where only it is seen and heard, near the middle of that stretch."""
    span = timeline.spans[shot]
    incoming = timeline.joins[shot - 1] if shot > 0 else None
    outgoing = timeline.joins[shot] if shot < len(timeline.joins) else None
    picture_from = span.timeline_start_frame + (incoming.overlap_frames if incoming else 0)
    picture_to = span.timeline_start_frame + span.frame_count - (outgoing.overlap_frames if outgoing else 0)
    sound_from = span.audio_timeline_start_sample + (incoming.crossfade_samples if incoming else 0)
    sound_to = span.audio_timeline_start_sample + span.sample_count - (outgoing.crossfade_samples if outgoing else 0)
    candidates = [
        frame
        for frame in range(max(picture_from, span.timeline_start_frame + 1, after + 1),
                           min(picture_to, span.timeline_start_frame + span.frame_count - 1) + 1)
        if sound_from <= frames_to_samples(frame, timeline.frame_rate, timeline.sample_rate) <= sound_to
        and span.audio_timeline_start_sample
        < frames_to_samples(frame, timeline.frame_rate, timeline.sample_rate)
        < span.audio_timeline_start_sample + span.sample_count
    ]
    return candidates[len(candidates) // 2] if candidates else None


def _window(timeline: Timeline, first: int, last: int, start_frame: int, end_frame: int) -> Timeline:
    """Shots ``first`` to ``last`` cut to frames ``start_frame`` to ``end_frame``, counted from there."""
    start_sample = frames_to_samples(start_frame, timeline.frame_rate, timeline.sample_rate)
    end_sample = frames_to_samples(end_frame, timeline.frame_rate, timeline.sample_rate)
    spans = []
    for span in timeline.spans[first : last + 1]:
        picture_from = max(span.timeline_start_frame, start_frame)
        picture_to = min(span.timeline_start_frame + span.frame_count, end_frame)
        sound_from = max(span.audio_timeline_start_sample, start_sample)
        sound_to = min(span.audio_timeline_start_sample + span.sample_count, end_sample)
        spans.append(
            ShotSpan(
                source_start_frame=span.source_start_frame + picture_from - span.timeline_start_frame,
                frame_count=picture_to - picture_from,
                timeline_start_frame=picture_from - start_frame,
                audio_source_start_sample=span.audio_source_start_sample + sound_from - span.audio_timeline_start_sample,
                audio_timeline_start_sample=sound_from - start_sample,
                sample_count=sound_to - sound_from,
                speed=span.speed,
            )
        )
    return Timeline(
        frame_rate=timeline.frame_rate,
        sample_rate=timeline.sample_rate,
        spans=tuple(spans),
        joins=timeline.joins[first:last],
        start_frame=start_frame,
    )


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


def _to_output_frames(sequence_frames: int, sequence_rate: Fraction, frame_rate: Fraction) -> int:
    return round_half_up(Fraction(sequence_frames) * frame_rate / sequence_rate)


def build_timeline(
    shots: list[Shot],
    media: list[MediaInfo],
    frame_rate: Fraction,
    sample_rate: int,
    sequence_rate: Fraction | None = None,
    speeds: list[Fraction] | None = None,
) -> Timeline:
    """Lay shots out at ``frame_rate`` with their transitions and split edits.

    Args:
        shots: The job's shots, in order.
        media: Probe results, one per shot.
        frame_rate: The output's frame rate.
        sample_rate: The output's audio sample rate.
        sequence_rate: Rate at which transition and split-edit frames are counted; default
            ``frame_rate``.
        speeds: How much faster than recorded each shot plays (see :func:`pipeline.plan.enhance.speed_factor`);
            default 1 for every shot. A shot's source time is divided by its speed.

    Raises:
        JobError: a transition is longer than a shot it touches, two transitions on one shot
            overlap, or a split edit needs source material the shot does not have; the message names
            the shots.
    """
    sequence_rate = sequence_rate or frame_rate
    count = len(shots)
    speeds = speeds or [Fraction(1)] * len(shots)
    sources = [_source_frames(shot, info, number, frame_rate, speed)
               for number, (shot, info, speed) in enumerate(zip(shots, media, speeds, strict=True))]
    overlaps = [
        _to_output_frames(shot.transition.frames, sequence_rate, frame_rate) for shot in shots[:-1]
    ]
    _check_overlaps(shots, sources, overlaps)

    picture_starts = [0]
    for number in range(count - 1):
        picture_starts.append(picture_starts[-1] + sources[number][1] - overlaps[number])
    total_frames = picture_starts[-1] + sources[-1][1]

    # Each join's sound region in output frames: the crossfade span, or a single cut point.
    sound_regions = []
    for number in range(count - 1):
        transition = shots[number].transition
        split = _to_output_frames(shots[number].audio_offset_frames, sequence_rate, frame_rate)
        join_frame = picture_starts[number + 1]
        if transition.audio == "crossfade" and overlaps[number]:
            sound_regions.append((join_frame + split, join_frame + overlaps[number] + split))
        else:
            cut = join_frame + overlaps[number] // 2 + split
            sound_regions.append((cut, cut))
    sound_starts = [0] + [start for start, _ in sound_regions]
    sound_ends = [end for _, end in sound_regions] + [total_frames]

    spans = []
    for number, ((first, frames, available), start) in enumerate(zip(sources, picture_starts, strict=True)):
        sound_start, sound_end = sound_starts[number], sound_ends[number]
        source_sound_start = first + sound_start - start
        source_sound_end = first + sound_end - start
        if sound_end <= sound_start or source_sound_start < 0 or source_sound_end > available:
            raise JobError(
                f"shots.{number}: its sound would run from source frame {source_sound_start} to "
                f"{source_sound_end} (at {float(frame_rate):g} fps), outside the source's 0 to "
                f"{available}; shorten the split edits (audio_offset_frames) around it"
            )
        timeline_start_sample = frames_to_samples(sound_start, frame_rate, sample_rate)
        spans.append(
            ShotSpan(
                source_start_frame=first,
                frame_count=frames,
                timeline_start_frame=start,
                audio_source_start_sample=frames_to_samples(source_sound_start, frame_rate, sample_rate),
                audio_timeline_start_sample=timeline_start_sample,
                sample_count=frames_to_samples(sound_end, frame_rate, sample_rate) - timeline_start_sample,
                speed=speeds[number],
            )
        )
    joins = tuple(
        Join(
            overlap_frames=overlaps[number],
            xfade=shots[number].transition.xfade_name if overlaps[number] else None,
            smooth=shots[number].transition.easing == "smooth",
            crossfade_samples=frames_to_samples(end, frame_rate, sample_rate)
            - frames_to_samples(start, frame_rate, sample_rate),
        )
        for number, (start, end) in enumerate(sound_regions)
    )
    return Timeline(frame_rate=frame_rate, sample_rate=sample_rate, spans=tuple(spans), joins=joins)


def _source_frames(
    shot: Shot, info: MediaInfo, number: int, frame_rate: Fraction, speed: Fraction = Fraction(1)
) -> tuple[int, int, int]:
    """First frame, frame count and frames available in the whole source, at the output rate
    (in the shot's sped-up time when ``speed`` is not 1)."""
    in_s, out_s = shot_bounds_s(shot, info, f"shots.{number}")
    first = seconds_to_frames(in_s / speed, frame_rate)
    frames = max(1, seconds_to_frames(out_s / speed, frame_rate) - first)
    available = max(first + frames, seconds_to_frames(info.video.duration_s / speed, frame_rate))
    return first, frames, available


def _check_overlaps(shots: list[Shot], sources: list[tuple[int, int, int]], overlaps: list[int]) -> None:
    for number, overlap in enumerate(overlaps):
        transition = shots[number].transition
        for neighbour in (number, number + 1):
            if overlap > sources[neighbour][1]:
                raise JobError(
                    f"shots.{number}.transition: the {transition.frames}-frame {transition.type} "
                    f"between shots {number} and {number + 1} is longer than shot {neighbour} "
                    f"({sources[neighbour][1]} frames at the output rate)"
                )
    for number in range(1, len(overlaps)):
        if overlaps[number - 1] + overlaps[number] > sources[number][1]:
            raise JobError(
                f"shots.{number}: its incoming and outgoing transitions ({overlaps[number - 1]} + "
                f"{overlaps[number]} frames) overlap; the shot has {sources[number][1]} frames"
            )


SEQUENCE_SAMPLE_RATE = 48000
"""Samples per second of the sequence's own layout (:func:`sequence_layout`): the project's working
rate, so sound positions there are exact and a deliverable's rate moves no frame."""


def sequence_rate(job: Job, media: dict[Path, MediaInfo]) -> Fraction:
    """The rate the edit is counted at: transitions, split edits, the music fade and overlay times
    are frames at this rate. The job's ``sequence.frame_rate``, else the first shot's source rate;
    deliverables at other rates convert from it, never count at their own."""
    return job.sequence.frame_rate or media[job.shots[0].source].video.planning_rate


def sequence_layout(job: Job, media: dict[Path, MediaInfo]) -> Timeline:
    """The whole cut laid out at the sequence rate and :data:`SEQUENCE_SAMPLE_RATE`: its length, where
    each shot and join falls, as editorial exports and cut-downs count them.

    Raises:
        JobError: a transition or split edit does not fit its shots, or an in/out point is outside its source.
    """
    rate = sequence_rate(job, media)
    return build_timeline(job.shots, [media[shot.source] for shot in job.shots], rate, SEQUENCE_SAMPLE_RATE, rate)


def shot_media_ranges(job: Job, media: dict[Path, MediaInfo]) -> list[tuple[int, int]]:
    """Per shot, the source frames (first, count) at the sequence rate that its picture and sound use,
    transition and split-edit handles included: what a conformed copy of the shot must hold."""
    rate = sequence_rate(job, media)
    ranges = []
    for span in sequence_layout(job, media).spans:
        sound_start = round_half_up(Fraction(span.audio_timeline_start_sample) * rate / SEQUENCE_SAMPLE_RATE)
        sound_frames = round_half_up(Fraction(span.sample_count) * rate / SEQUENCE_SAMPLE_RATE)
        sound_first = span.source_start_frame + sound_start - span.timeline_start_frame
        first = min(span.source_start_frame, sound_first)
        end = max(span.source_start_frame + span.frame_count, sound_first + sound_frames)
        ranges.append((first, end - first))
    return ranges
