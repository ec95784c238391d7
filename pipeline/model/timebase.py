"""Exact time: frame rates as fractions, and the edge where user time strings become seconds.

Timeline positions are frames at a known rate or ``Fraction`` seconds; floats are for display only.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

STANDARD_RATES: tuple[Fraction, ...] = tuple(
    Fraction(r)
    for r in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60")
)
"""Frame rates a deliverable may run at, in ascending order."""

_NTSC_RATES = (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001))
_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;])(\d{2,3})$")
_FRAMES = re.compile(r"^(\d+)f$")
_SECONDS = re.compile(r"^\d+(\.\d+)?s?$")


def parse_rate(value: str | int | float | Fraction) -> Fraction:
    """A frame rate as an exact fraction: ``25``, ``"30000/1001"``, ``"29.97"`` (read as 30000/1001).

    Decimal spellings of the NTSC rates (23.976, 29.97, 59.94) mean the 1001 rates, as every editor
    reads them; fractions are taken as written.

    Raises:
        ValueError: not a number, a zero denominator, or not positive.
    """
    written_exactly = isinstance(value, Fraction) or (isinstance(value, str) and "/" in value)
    try:
        rate = Fraction(value.strip() if isinstance(value, str) else str(value))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"not a frame rate: {value!r} (use 25, 29.97 or 30000/1001)") from None
    if rate <= 0:
        raise ValueError(f"frame rate must be positive, got {value!r}")
    if not written_exactly:
        for ntsc in _NTSC_RATES:
            if abs(rate - ntsc) < Fraction(1, 100):
                return ntsc
    return rate


def format_rate(rate: Fraction) -> str:
    """``25`` for whole rates, ``30000/1001`` otherwise."""
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def round_half_up(value: Fraction) -> int:
    """Round a fraction to the nearest integer, halves up (not to even)."""
    return math.floor(value + Fraction(1, 2))


def seconds_to_frames(seconds: Fraction, rate: Fraction) -> int:
    """The frame nearest to ``seconds`` at ``rate``."""
    return round_half_up(seconds * rate)


def frames_to_samples(frames: int, rate: Fraction, sample_rate: int) -> int:
    """Audio sample position of a frame boundary, rounded once so joins never accumulate error."""
    return round_half_up(Fraction(frames) * sample_rate / rate)


def parse_time(value: str | int | float, rate: Fraction) -> Fraction:
    """A user's time as exact seconds.

    Accepts seconds (``1.5``, ``"1.5s"``), frames (``"36f"``, at ``rate``) and SMPTE timecode
    (``"00:00:01:12"``, or ``"00:00:01;12"`` drop-frame for 29.97/59.94) counted at ``rate``.

    Raises:
        ValueError: the value is none of those, or is negative.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        seconds = Fraction(str(value))
    else:
        text = value.strip()
        if match := _FRAMES.match(text):
            seconds = Fraction(int(match.group(1))) / rate
        elif match := _TIMECODE.match(text):
            seconds = _timecode_to_seconds(match, rate)
        elif _SECONDS.match(text):
            seconds = Fraction(text.rstrip("s"))
        else:
            raise ValueError(
                f"not a time: {value!r} (use seconds like 1.5, frames like 36f, or timecode HH:MM:SS:FF)"
            )
    if seconds < 0:
        raise ValueError(f"time must not be negative, got {value!r}")
    return seconds


def _timecode_fields(match: re.Match[str]) -> tuple[int, int, int, bool, int]:
    hours, minutes, seconds, separator, frames = match.groups()
    if int(minutes) >= 60 or int(seconds) >= 60:
        raise ValueError(f"timecode {match.group(0)!r} has minutes or seconds of 60 or more")
    return int(hours), int(minutes), int(seconds), separator == ";", int(frames)


def check_time_syntax(value: str | int | float) -> None:
    """Reject what can never be a time, before the source's frame rate is known.

    Raises:
        ValueError: not seconds, frames or timecode, negative, or a timecode field out of range.
    """
    if isinstance(value, str) and (match := _TIMECODE.match(value.strip())):
        _timecode_fields(match)
    else:
        parse_time(value, rate=Fraction(1))


def _timecode_to_seconds(match: re.Match[str], rate: Fraction) -> Fraction:
    hours, minutes, seconds, drop_frame, frames = _timecode_fields(match)
    nominal_fps = round_half_up(rate)
    if frames >= nominal_fps:
        raise ValueError(f"timecode frame field {frames} is not below {nominal_fps} fps")
    total_minutes = hours * 60 + minutes
    frame_number = (total_minutes * 60 + seconds) * nominal_fps + frames
    if drop_frame:
        if rate.denominator != 1001:
            raise ValueError(f"drop-frame timecode needs a 1001 rate, not {format_rate(rate)} fps")
        # Drop-frame skips the first two frame numbers (four at 59.94) of every minute except each
        # tenth, so the count stays aligned with wall-clock time; those labels do not exist.
        dropped_per_minute = 2 * (nominal_fps // 30)
        if seconds == 0 and frames < dropped_per_minute and minutes % 10 != 0:
            raise ValueError(f"drop-frame timecode {match.group(0)!r} names a skipped frame number")
        frame_number -= dropped_per_minute * (total_minutes - total_minutes // 10)
    return Fraction(frame_number) / rate


def seconds_text(seconds: Fraction) -> str:
    """Seconds written to the nanosecond, rounded down, for a job's in and out points.

    Rounding down never lands past a source's end that the exact time does not pass, and a time on
    a frame boundary still converts back to exactly that frame (at any rate under 500 million fps).
    """
    nanoseconds = seconds.numerator * 10**9 // seconds.denominator
    return f"{nanoseconds // 10**9}.{nanoseconds % 10**9:09d}"


def frames_to_timecode(frame_number: int, rate: Fraction) -> str:
    """SMPTE timecode of a frame count at ``rate``: drop-frame (``;``) at 29.97 and 59.94, else
    non-drop (23.976 counts 24 labels a second and drops none)."""
    nominal_fps = round_half_up(rate)
    drop_frame = rate.denominator == 1001 and nominal_fps % 30 == 0
    if drop_frame:
        # Undo the drop: add back the skipped labels of every minute not divisible by ten.
        dropped_per_minute = 2 * (nominal_fps // 30)
        frames_per_ten_minutes = 10 * 60 * nominal_fps - 9 * dropped_per_minute
        tens, remainder = divmod(frame_number, frames_per_ten_minutes)
        skipped = 9 * dropped_per_minute * tens
        if remainder >= dropped_per_minute:
            skipped += dropped_per_minute * ((remainder - dropped_per_minute) // (60 * nominal_fps - dropped_per_minute))
        frame_number += skipped
    frames = frame_number % nominal_fps
    total_seconds = frame_number // nominal_fps
    separator = ";" if drop_frame else ":"
    return (f"{total_seconds // 3600:02d}:{total_seconds // 60 % 60:02d}:{total_seconds % 60:02d}"
            f"{separator}{frames:02d}")


def snap_to_standard_rate(rate: Fraction) -> Fraction:
    """The standard frame rate nearest to a measured one (for variable-frame-rate sources)."""
    return min(STANDARD_RATES, key=lambda standard: abs(standard - rate))
