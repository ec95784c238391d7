"""A soft subtitle track (``mov_text``) inside an MP4 deliverable, from the captions its files carry.

ffmpeg's ``mov_text`` encoder takes ASS events and reads ASS markup in them: ``{\\...}`` is an
override block (dropped, or turned into a style box) and ``\\n`` / ``\\N`` a line break. Its SubRip
and WebVTT readers do not keep text literal either (measured: through SubRip, ``{\\b1}`` vanishes
from the text and ``\\N`` and ``\\n`` become line breaks; WebVTT escapes ``{`` as ``\\{``, which the
encoder writes with its backslash, and puts a word joiner after every backslash of the text).
So the cues reach the encoder as an ASS script written here, each caption's text made
literal for that one parser: an empty-effect override block ``{\\r}`` (reset to the default style,
which the cue already has) after every ``{`` and every ``\\``, so neither can start a tag or a line
break; real line breaks are written ``\\N``. The encoder drops the ``{\\r}`` blocks and writes no
style for them; the track is read back packet by packet and compared cue by cue before the
deliverable is kept.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import ffmpeg

from pipeline.plan.caption_timing import TimedCaption
from pipeline.plan.workfiles import TextFile
from pipeline.model.timebase import round_half_up

SUBTITLE_CODEC = "mov_text"
"""The encoder and codec of the track: 3GPP timed text (``tx3g``), which MP4 players show."""
TRACK_CONTAINERS = ("mp4",)
"""Containers a soft subtitle track is written into."""
INERT_OVERRIDE = "{\\r}"
"""An ASS override block the ``mov_text`` encoder consumes without effect on plain cues."""

_SCRIPT_HEADER = """[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, \
MarginR, MarginV, Encoding
Style: Default,Sans,20,&H00FFFFFF,&H00FFFFFF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def literal_ass_text(text: str) -> str:
    """``text`` as an ASS event's text that ffmpeg's ``mov_text`` encoder writes back unchanged:
    ``{`` and ``\\`` each followed by :data:`INERT_OVERRIDE`, line breaks as ``\\N``, blank lines
    dropped as in the caption files."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    return "\\N".join(
        "".join(f"{char}{INERT_OVERRIDE}" if char in "{\\" else char for char in line) for line in lines
    )


def _centiseconds(frame: int, rate: Fraction) -> str:
    """An ASS time (centiseconds): off the frame by at most 5 ms, under half a frame up to 100 fps."""
    hours, rest = divmod(round_half_up(Fraction(frame) / rate * 100), 360_000)
    minutes, rest = divmod(rest, 6000)
    seconds, centiseconds = divmod(rest, 100)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{centiseconds:02d}"


def subtitle_script(captions: tuple[TimedCaption, ...], rate: Fraction) -> str:
    """The ASS script the track is encoded from: one Dialogue event per caption."""
    events = "".join(
        f"Dialogue: 0,{_centiseconds(c.start_frame, rate)},{_centiseconds(c.end_frame, rate)},Default,,0,0,0,,"
        f"{literal_ass_text(c.text)}\n"
        for c in captions
    )
    return _SCRIPT_HEADER + events


def script_path(deliverable: Path) -> Path:
    """Where the script is written beside the deliverable while it renders."""
    return deliverable.with_name(f".{deliverable.name}.subtitles.ass")


def subtitle_track(container: str, captions: tuple[TimedCaption, ...], rate: Fraction,
                   deliverable: Path) -> tuple[list, dict[str, str], tuple[TextFile, ...]]:
    """The subtitle stream to add to a deliverable's ffmpeg output, its encoder arguments, and the
    script to prepare; nothing when there are no captions or ``container`` carries no such track (a
    window of a long sequence: its join writes the track)."""
    if not captions or container not in TRACK_CONTAINERS:
        return [], {}, ()
    script = TextFile(script_path(deliverable), subtitle_script(captions, rate))
    stream = ffmpeg.input(str(script.path), f="ass")["s"]
    return [stream], {"c:s": SUBTITLE_CODEC}, (script,)
