"""Overlay timing: when each overlay of a job shows, in a deliverable's sequence frames.

Job times (seconds, timecode or frames at the sequence rate, from the sequence's or a shot's start)
become the first frame at or after them at the deliverable's rate; an overlay that starts outside
the sequence or ends before it starts is a job error naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from pipeline.errors import JobError
from pipeline.model.job import Job
from pipeline.model.overlay_schema import Overlay
from pipeline.model.timebase import parse_time
from pipeline.plan.caption_timing import TimedCaption, caption_frames, overlay_cues
from pipeline.timeline.sequence import Timeline


@dataclass(frozen=True)
class TimedOverlay:
    """An overlay with the frames it shows on."""

    overlay: Overlay
    """The overlay as the job gives it."""
    number: int
    """Its index in ``job.overlays`` (error messages name it ``overlays.N``)."""
    start_frame: int
    """Its first frame, in the deliverable's sequence frames."""
    end_frame: int
    """The frame after its last."""


def timed_captions(job: Job, timeline: Timeline, sequence_rate: Fraction) -> tuple[TimedCaption, ...]:
    """Every cue of the job's captions overlays in a deliverable's frames, timed exactly as they are
    burnt in, for caption files beside it. Every captions overlay counts, whether or not it is burnt
    into this deliverable (an overlay's ``deliverables`` lists where it is burnt in; ``[]`` makes
    captions for the files only).

    Raises:
        JobError: as :func:`plan_overlays` for a captions overlay.
    """
    captions = []
    for number, overlay in enumerate(job.overlays):
        if overlay.kind != "captions":
            continue
        timed, where = time_overlay(overlay, number, job, timeline, sequence_rate), f"overlays.{number}"
        for cue in overlay_cues(overlay, where):
            start, end = caption_frames(cue, timed.start_frame, timed.end_frame, timeline, where)
            captions.append(TimedCaption(start, end, cue.text, f"{where}: {cue.label}"))
    return tuple(sorted(captions, key=lambda caption: (caption.start_frame, caption.end_frame)))


def time_overlay(overlay: Overlay, number: int, job: Job, timeline: Timeline, sequence_rate: Fraction) -> TimedOverlay:
    """The overlay's first frame and the frame after its last, in the deliverable's sequence frames."""
    rate = timeline.frame_rate
    base, limit = 0, timeline.frame_count
    if overlay.shot is not None:
        shot = overlay.shot if isinstance(overlay.shot, int) else [s.id for s in job.shots].index(overlay.shot)
        span = timeline.spans[shot]
        base, limit = span.timeline_start_frame, span.timeline_start_frame + span.frame_count
    where = f"overlays.{number}"
    start = base + _frames(overlay.start, sequence_rate, rate)
    sequence_s = Fraction(timeline.frame_count) / rate
    if start >= timeline.frame_count:
        raise JobError(f"{where}.start: {overlay.start!r} falls at {float(Fraction(start) / rate):.3f} s, "
                       f"at or after the end of the sequence ({float(sequence_s):.3f} s)")
    if overlay.end is not None:
        end = base + _frames(overlay.end, sequence_rate, rate)
    elif overlay.duration is not None:
        end = start + _frames(overlay.duration, sequence_rate, rate)
    else:
        end = limit
    if end <= start:
        raise JobError(f"{where}: ends at or before it starts (frames {start} to {end})")
    if end > timeline.frame_count + 1:
        raise JobError(f"{where}: ends at {float(Fraction(end) / rate):.3f} s, after the sequence "
                       f"({float(sequence_s):.3f} s)")
    return TimedOverlay(overlay, number, start, min(end, timeline.frame_count))


def _frames(value, sequence_rate: Fraction, rate: Fraction) -> int:
    """A job time as the first frame at or after it, at the deliverable's ``rate``."""
    return math.ceil(parse_time(value, sequence_rate) * rate)
