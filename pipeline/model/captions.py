"""Caption files read into cues: SubRip (.srt), WebVTT (.vtt) and ASS/SSA (.ass, .ssa).

Only timing and text are kept: markup (``<i>``, WebVTT voice and class spans, ASS override blocks) is
dropped, so captions take the job's style and stay inside the deliverable's safe area. Errors name
the file, the cue and its line.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pipeline.errors import JobError


@dataclass(frozen=True)
class Cue:
    """One caption."""

    start_s: Fraction
    """When it appears, in seconds from the start of its file's timeline."""
    end_s: Fraction
    """When it goes (exclusive), in seconds."""
    text: str
    """Plain text; ``\\n`` breaks the line."""
    label: str
    """Where it came from, for messages: ``cue 3 (line 12)``."""


_SRT_TIME = r"(\d+):(\d{2}):(\d{2})[,.](\d{3})"
_SRT_TIMING = re.compile(rf"^\s*{_SRT_TIME}\s*-->\s*{_SRT_TIME}\s*$")
_VTT_TIME = r"(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})"
_VTT_TIMING = re.compile(rf"^\s*{_VTT_TIME}\s+-->\s+{_VTT_TIME}(?:\s+.*)?$")
_ASS_TIME = re.compile(r"^\s*(\d+):(\d{2}):(\d{2})\.(\d{2})\s*$")
_MARKUP_TAG = re.compile(r"</?(?:[ibu]|font|c|v|lang|ruby|rt)(?:[ .][^>]*)?>", re.IGNORECASE)
_VTT_TIMESTAMP_TAG = re.compile(r"<\d+(?::\d{2}){1,2}\.\d{3}>")
_ASS_OVERRIDE = re.compile(r"(?<!\\)\{[^}]*\}")


def read_captions(path: Path) -> tuple[Cue, ...]:
    """Read a caption file, choosing the format by its extension.

    Raises:
        JobError: the file cannot be read, has an unknown extension, holds no cue, or a cue is
            broken (bad timing, end not after start); the message names the file and the cue.
    """
    readers = {".srt": parse_srt, ".vtt": parse_webvtt, ".ass": parse_ass, ".ssa": parse_ass}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise JobError(f"{path}: unknown caption format {path.suffix!r}; use .srt, .vtt, .ass or .ssa")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise JobError(f"{path}: cannot read captions ({error})") from None
    cues = reader(text, str(path))
    if not cues:
        raise JobError(f"{path}: no captions found")
    return cues


def parse_srt(text: str, origin: str) -> tuple[Cue, ...]:
    """SubRip: numbered blocks of a ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` line and text lines."""
    cues = []
    for number, (line_number, lines) in enumerate(_blocks(text), start=1):
        label = f"cue {number} (line {line_number})"
        timing_at = 1 if lines[0].strip().isdigit() and len(lines) > 1 else 0
        match = _SRT_TIMING.match(lines[timing_at])
        if match is None:
            raise JobError(
                f"{origin}: {label}: expected a timing line like '00:00:01,000 --> 00:00:02,500', "
                f"found {lines[timing_at]!r}"
            )
        where = f"{origin}: {label}"
        start, end = _clock(*match.groups()[:4], 1000, where), _clock(*match.groups()[4:], 1000, where)
        cues.append(_cue(start, end, _plain(lines[timing_at + 1:]), origin, label))
    return tuple(cues)


def parse_webvtt(text: str, origin: str) -> tuple[Cue, ...]:
    """WebVTT: a ``WEBVTT`` header, then cues (optional identifier, timing line with settings, text);
    NOTE, STYLE and REGION blocks are skipped."""
    blocks = _blocks(text)
    if not blocks or not blocks[0][1][0].startswith("WEBVTT"):
        raise JobError(f"{origin}: not a WebVTT file (the first line must be 'WEBVTT')")
    cues = []
    for line_number, lines in blocks[1:]:
        if lines[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        label = f"cue {len(cues) + 1} (line {line_number})"
        timing_at = 0 if "-->" in lines[0] else 1
        match = _VTT_TIMING.match(lines[timing_at]) if timing_at < len(lines) else None
        if match is None:
            found = lines[timing_at] if timing_at < len(lines) else lines[0]
            raise JobError(
                f"{origin}: {label}: expected a timing line like '00:01.000 --> 00:02.500', found {found!r}"
            )
        groups = [value or "0" for value in match.groups()]
        where = f"{origin}: {label}"
        start, end = _clock(*groups[:4], 1000, where), _clock(*groups[4:], 1000, where)
        body = [_VTT_TIMESTAMP_TAG.sub("", line) for line in lines[timing_at + 1:]]
        cues.append(_cue(start, end, html.unescape(_plain(body)), origin, label))
    return tuple(cues)


def parse_ass(text: str, origin: str) -> tuple[Cue, ...]:
    """ASS/SSA: ``Dialogue:`` lines of the ``[Events]`` section, read through its ``Format:`` line."""
    fields: list[str] | None = None
    in_events = False
    cues = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_events = stripped.lower() == "[events]"
            continue
        if not in_events:
            continue
        key, _, value = stripped.partition(":")
        if key == "Format":
            fields = [name.strip().lower() for name in value.split(",")]
        elif key == "Dialogue":
            label = f"cue {len(cues) + 1} (line {line_number})"
            if fields is None or "text" not in fields:
                raise JobError(f"{origin}: {label}: Dialogue before a Format line naming its fields")
            values = value.split(",", len(fields) - 1)
            if len(values) != len(fields):
                raise JobError(f"{origin}: {label}: expected {len(fields)} fields, found {len(values)}")
            record = dict(zip(fields, (item.strip() for item in values), strict=True))
            times = []
            for name in ("start", "end"):
                match = _ASS_TIME.match(record.get(name, ""))
                if match is None:
                    raise JobError(f"{origin}: {label}: {name} {record.get(name)!r} is not H:MM:SS.cc")
                times.append(_clock(*match.groups(), 100, f"{origin}: {label}"))
            body = _ASS_OVERRIDE.sub("", values[fields.index("text")])
            body = re.sub(r"\\[Nn]", "\n", body).replace("\\h", "\u00a0").replace("\\{", "{").replace("\\}", "}")
            if body.strip():
                cues.append(_cue(times[0], times[1], body.strip(), origin, label))
    return tuple(cues)


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """Blank-line-separated blocks, each with the number of its first line."""
    blocks, current, first = [], [], 0
    for line_number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            if not current:
                first = line_number
            current.append(line.rstrip())
        elif current:
            blocks.append((first, current))
            current = []
    if current:
        blocks.append((first, current))
    return blocks


def _clock(hours: str, minutes: str, seconds: str, fraction: str, fraction_per_second: int, where: str) -> Fraction:
    if int(minutes) >= 60 or int(seconds) >= 60:
        raise JobError(f"{where}: a time has minutes or seconds of 60 or more")
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds) + Fraction(int(fraction), fraction_per_second)


def _plain(lines: list[str]) -> str:
    return "\n".join(_MARKUP_TAG.sub("", line) for line in lines).strip()


def _cue(start: Fraction, end: Fraction, text: str, origin: str, label: str) -> Cue:
    if end <= start:
        raise JobError(f"{origin}: {label}: ends at {float(end):.3f} s, not after its start at {float(start):.3f} s")
    if not text:
        raise JobError(f"{origin}: {label}: has no text")
    return Cue(start, end, text, label)
