"""When each caption of a job shows in one deliverable, in that deliverable's frames.

Caption times are written against the job's sequence (the shots played as recorded). A deliverable
that plays shots faster (``rate_conversion: speed``, 24 -> 25 fps) is shorter, so a caption's
sequence time is carried through each shot's speed to where that moment plays in the deliverable.
Burnt-in captions and caption files both time their cues here, so they agree to the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from pipeline.model.captions import Cue, read_captions
from pipeline.errors import JobError
from pipeline.model.overlay_schema import Overlay
from pipeline.timeline.sequence import Timeline
from pipeline.model.timebase import parse_time


@dataclass(frozen=True)
class TimedCaption:
    """One caption in a deliverable's frames."""

    start_frame: int
    """First frame it shows on."""
    end_frame: int
    """Frame after the last one it shows on."""
    text: str
    """Plain text; ``\\n`` breaks the line."""
    label: str
    """Where it came from, for messages: ``cue 3 (line 12)``."""


def overlay_cues(overlay: Overlay, where: str) -> tuple[Cue, ...]:
    """A captions overlay's cues: read from its file, or written inline in the job.

    Raises:
        JobError: the file is broken, or an inline cue ends at or before it starts.
    """
    if overlay.captions is not None:
        return read_captions(overlay.captions)
    cues = []
    for index, cue in enumerate(overlay.cues or ()):
        label = f"cues.{index}"
        start, end = parse_time(cue.start, Fraction(1)), parse_time(cue.end, Fraction(1))
        if end <= start:
            raise JobError(f"{where}.{label}: ends at or before it starts")
        cues.append(Cue(start, end, cue.text, label))
    return tuple(cues)


def _shots(timeline: Timeline) -> list[tuple[Fraction, Fraction, Fraction]]:
    """(start in the deliverable, start in recorded sequence time, speed) of each shot, in seconds."""
    rate = timeline.frame_rate
    shots, recorded = [], Fraction(0)
    for number, span in enumerate(timeline.spans):
        start = Fraction(span.timeline_start_frame) / rate
        if number:
            previous_start, previous_recorded, previous_speed = shots[-1]
            recorded = previous_recorded + (start - previous_start) * previous_speed
        shots.append((start, recorded, span.speed))
    return shots


def deliverable_seconds(recorded_s: Fraction, timeline: Timeline) -> Fraction:
    """Where a moment of the sequence as recorded (seconds) plays in the deliverable (seconds)."""
    start, recorded, speed = [shot for shot in _shots(timeline) if shot[1] <= recorded_s][-1]
    return start + (recorded_s - recorded) / speed


def recorded_seconds(deliverable_s: Fraction, timeline: Timeline) -> Fraction:
    """The moment of the sequence as recorded (seconds) that plays at ``deliverable_s``."""
    start, recorded, speed = [shot for shot in _shots(timeline) if shot[0] <= deliverable_s][-1]
    return recorded + (deliverable_s - start) * speed


def caption_frames(cue: Cue, overlay_start_frame: int, overlay_end_frame: int, timeline: Timeline,
                   where: str) -> tuple[int, int]:
    """The first frame and the frame after the last of ``cue``, in a captions overlay shown from
    ``overlay_start_frame`` to ``overlay_end_frame`` (deliverable frames); the cue's times count
    from the overlay's start in recorded time.

    Raises:
        JobError: the cue starts after the overlay or the sequence has ended.
    """
    rate = timeline.frame_rate
    origin_s = Fraction(overlay_start_frame) / rate
    origin_recorded = recorded_seconds(origin_s, timeline)

    def frame(offset_s: Fraction) -> int:
        return overlay_start_frame + math.ceil((deliverable_seconds(origin_recorded + offset_s, timeline) - origin_s) * rate)

    start, end = frame(cue.start_s), min(frame(cue.end_s), overlay_end_frame)
    if start >= overlay_end_frame:
        raise JobError(f"{where}: {cue.label} starts at {float(cue.start_s):.3f} s, after the "
                       f"overlay or the sequence has ended")
    return start, end
