"""The start timecode a deliverable's timecode track carries.

A preset gives the timecode of the programme's first frame (``10:00:00:00`` for broadcast); a leader
before the programme moves the file's first frame earlier by its length, so the programme still
starts at that timecode. Drop-frame counting is only defined at 29.97 and 59.94 fps.
"""

from __future__ import annotations

from fractions import Fraction

from pipeline.model.presets import TimecodeSpec
from pipeline.model.timebase import format_rate, frames_to_timecode, parse_time, round_half_up


def counts_drop_frame(rate: Fraction) -> bool:
    """True at the rates drop-frame timecode exists for: 30000/1001 and 60000/1001."""
    return rate.denominator == 1001 and round_half_up(rate) % 30 == 0


def programme_start_frame(spec: TimecodeSpec, rate: Fraction) -> int:
    """Frames from 00:00:00:00 to the programme's first frame, counted as the timecode counts.

    Raises:
        ValueError: drop-frame at a rate without it, or a frame field not below the nominal rate.
    """
    if spec.drop_frame and not counts_drop_frame(rate):
        raise ValueError(f"drop-frame timecode needs 29.97 or 59.94 fps, not {format_rate(rate)} fps")
    text = spec.start[:8] + (";" if spec.drop_frame else ":") + spec.start[9:]
    # parse_time counts drop-frame labels itself; a non-drop count runs at the nominal rate.
    counting_rate = rate if spec.drop_frame else Fraction(round_half_up(rate))
    return int(parse_time(text, counting_rate) * counting_rate)


def timecode_at(frame: int, rate: Fraction, drop_frame: bool) -> str:
    """The timecode label of ``frame`` frames after 00:00:00:00, drop-frame or not."""
    if drop_frame:
        return frames_to_timecode(frame, rate)
    nominal = round_half_up(rate)
    seconds, frames = divmod(frame, nominal)
    return f"{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{frames:02d}"


def file_start_timecode(spec: TimecodeSpec, rate: Fraction, leader_frames: int = 0) -> str:
    """The timecode of the file's first frame: the programme's start less the leader's length.

    Raises:
        ValueError: as :func:`programme_start_frame`, or a leader longer than the start timecode.
    """
    start = programme_start_frame(spec, rate)
    if leader_frames > start:
        raise ValueError(f"a {leader_frames}-frame leader does not fit before {spec.start}")
    return timecode_at(start - leader_frames, rate, spec.drop_frame)
