"""Caption files beside a deliverable: SubRip, WebVTT and EBU-TT-D (TTML), timed to that deliverable.

The cues are the job's captions overlays as the deliverable shows them (see
:func:`pipeline.plan.overlay_timing.timed_captions`: shot speeds applied, the leader's length added), each
boundary on the deliverable's frame grid written to the millisecond. After writing, each file is
read back and compared cue by cue with what was planned.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from pipeline.plan.caption_timing import TimedCaption
from pipeline.model.captions import parse_srt, parse_webvtt
from pipeline.errors import JobError
from pipeline.files import partial_path
from pipeline.model.timebase import round_half_up

CaptionFormat = Literal["srt", "vtt", "ttml"]
EXTENSIONS: dict[str, str] = {"srt": ".srt", "vtt": ".vtt", "ttml": ".ttml"}
TTML = "http://www.w3.org/ns/ttml"
TTML_STYLING = "http://www.w3.org/ns/ttml#styling"
TTML_PARAMETER = "http://www.w3.org/ns/ttml#parameter"
EBU_METADATA = "urn:ebu:tt:metadata"
XML = "http://www.w3.org/XML/1998/namespace"
EBU_TT_D = "urn:ebu:tt:distribution:2018-04"
"""The EBU-TT-D version (Tech 3380 v1.0.1) the files declare conformance to."""


@dataclass(frozen=True)
class CaptionFile:
    """One caption file to write beside a deliverable."""

    path: Path
    """Final path, beside the deliverable, with the format's extension."""
    format: CaptionFormat
    """``srt``, ``vtt`` or ``ttml`` (EBU-TT-D)."""
    text: str
    """The file's content (UTF-8)."""

    @property
    def partial_path(self) -> Path:
        """Where it is written until it has been read back."""
        return partial_path(self.path)


def shifted(captions: tuple[TimedCaption, ...], frames: int) -> tuple[TimedCaption, ...]:
    """``captions`` moved ``frames`` later (behind a leader)."""
    return tuple(TimedCaption(c.start_frame + frames, c.end_frame + frames, c.text, c.label) for c in captions)


def plan_caption_files(captions: tuple[TimedCaption, ...], rate: Fraction, formats: list[CaptionFormat],
                       language: str, deliverable: Path) -> tuple[CaptionFile, ...]:
    """The caption files of a deliverable at ``deliverable`` (its path), none when it has no captions."""
    if not captions:
        return ()
    writers = {"srt": write_srt, "vtt": write_webvtt, "ttml": lambda c, r: write_ebu_tt_d(c, r, language)}
    return tuple(CaptionFile(deliverable.with_suffix(EXTENSIONS[kind]), kind, writers[kind](captions, rate))
                 for kind in formats)


def _milliseconds(frame: int, rate: Fraction) -> int:
    return round_half_up(Fraction(frame) / rate * 1000)


def _clock(frame: int, rate: Fraction, separator: str) -> str:
    hours, rest = divmod(_milliseconds(frame, rate), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, milliseconds = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{milliseconds:03d}"


def write_srt(captions: tuple[TimedCaption, ...], rate: Fraction) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm`` times."""
    return "".join(
        f"{number}\n{_clock(c.start_frame, rate, ',')} --> {_clock(c.end_frame, rate, ',')}\n{_lines(c.text)}\n\n"
        for number, c in enumerate(captions, start=1)
    )


def write_webvtt(captions: tuple[TimedCaption, ...], rate: Fraction) -> str:
    """WebVTT: ``HH:MM:SS.mmm`` times, ``&``, ``<`` and ``>`` escaped so text never reads as markup."""
    cues = "".join(
        f"{_clock(c.start_frame, rate, '.')} --> {_clock(c.end_frame, rate, '.')}\n"
        f"{html.escape(_lines(c.text), quote=False)}\n\n"
        for c in captions
    )
    return "WEBVTT\n\n" + cues


def _lines(text: str) -> str:
    """Caption text with its line breaks, and never a blank line (a blank line ends an SRT/VTT cue)."""
    return "\n".join(line for line in text.replace("\r\n", "\n").split("\n") if line.strip())


def write_ebu_tt_d(captions: tuple[TimedCaption, ...], rate: Fraction, language: str) -> str:
    """EBU-TT-D (EBU Tech 3380): media time base, one bottom region, white on a dark box, each line
    of a caption a ``span`` separated by ``br``."""
    for prefix, uri in (("", TTML), ("tts", TTML_STYLING), ("ttp", TTML_PARAMETER), ("ebuttm", EBU_METADATA)):
        ElementTree.register_namespace(prefix, uri)
    root = ElementTree.Element(f"{{{TTML}}}tt", {f"{{{XML}}}lang": language, f"{{{TTML_PARAMETER}}}timeBase": "media",
                                                   f"{{{TTML_PARAMETER}}}cellResolution": "50 30"})
    head = ElementTree.SubElement(root, f"{{{TTML}}}head")
    metadata = ElementTree.SubElement(ElementTree.SubElement(head, f"{{{TTML}}}metadata"),
                                      f"{{{EBU_METADATA}}}documentMetadata")
    ElementTree.SubElement(metadata, f"{{{EBU_METADATA}}}conformsToStandard").text = EBU_TT_D
    styling = ElementTree.SubElement(head, f"{{{TTML}}}styling")
    ElementTree.SubElement(styling, f"{{{TTML}}}style", {
        f"{{{XML}}}id": "caption", f"{{{TTML_STYLING}}}color": "#FFFFFF",
        f"{{{TTML_STYLING}}}backgroundColor": "#000000C2", f"{{{TTML_STYLING}}}fontSize": "100%",
        f"{{{TTML_STYLING}}}textAlign": "center", f"{{{TTML_STYLING}}}fontFamily": "proportionalSansSerif"})
    layout = ElementTree.SubElement(head, f"{{{TTML}}}layout")
    ElementTree.SubElement(layout, f"{{{TTML}}}region", {
        f"{{{XML}}}id": "bottom", f"{{{TTML_STYLING}}}origin": "10% 10%", f"{{{TTML_STYLING}}}extent": "80% 80%",
        f"{{{TTML_STYLING}}}displayAlign": "after"})
    division = ElementTree.SubElement(ElementTree.SubElement(root, f"{{{TTML}}}body"), f"{{{TTML}}}div")
    for number, caption in enumerate(captions, start=1):
        paragraph = ElementTree.SubElement(division, f"{{{TTML}}}p", {
            f"{{{XML}}}id": f"caption{number}", "begin": _clock(caption.start_frame, rate, "."),
            "end": _clock(caption.end_frame, rate, "."), "region": "bottom", "style": "caption"})
        for index, line in enumerate(_lines(caption.text).split("\n")):
            if index:
                ElementTree.SubElement(paragraph, f"{{{TTML}}}br")
            ElementTree.SubElement(paragraph, f"{{{TTML}}}span").text = line
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


_TTML_CLOCK = re.compile(r"^(\d+):(\d{2}):(\d{2})(?:\.(\d+))?$")


def read_ebu_tt_d(text: str, origin: str) -> list[tuple[Fraction, Fraction, str]]:
    """(begin s, end s, text) of each ``p`` of an EBU-TT-D document, lines joined with ``\\n``."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise JobError(f"{origin}: not XML ({error})") from None
    cues = []
    for paragraph in root.iter(f"{{{TTML}}}p"):
        lines, current = [], ""
        for child in paragraph:
            if child.tag == f"{{{TTML}}}br":
                lines.append(current)
                current = ""
            else:
                current += child.text or ""
        lines.append(current)
        cues.append((_ttml_seconds(paragraph.get("begin", ""), origin), _ttml_seconds(paragraph.get("end", ""), origin),
                     "\n".join(lines)))
    return cues


def _ttml_seconds(value: str, origin: str) -> Fraction:
    match = _TTML_CLOCK.match(value)
    if match is None:
        raise JobError(f"{origin}: time {value!r} is not a media time HH:MM:SS.fff")
    hours, minutes, seconds, fraction = match.groups()
    return Fraction(int(hours) * 3600 + int(minutes) * 60 + int(seconds)) + Fraction(f"0.{fraction or 0}")


def read_back(file: CaptionFile, path: Path) -> list[tuple[Fraction, Fraction, str]]:
    """(start s, end s, text) of each cue of the file written at ``path``, by the format's reader."""
    text = path.read_text(encoding="utf-8")
    if file.format == "ttml":
        return read_ebu_tt_d(text, str(path))
    cues = (parse_srt if file.format == "srt" else parse_webvtt)(text, str(path))
    return [(cue.start_s, cue.end_s, cue.text) for cue in cues]


def caption_file_problems(file: CaptionFile, path: Path, captions: tuple[TimedCaption, ...],
                          rate: Fraction) -> list[str]:
    """Every way the file at ``path`` differs from ``captions``, cue by cue (see :func:`cue_problems`)."""
    return cue_problems(file.format, read_back(file, path), captions, rate)


def cue_problems(name: str, cues: list[tuple[Fraction, Fraction, str]], captions: tuple[TimedCaption, ...],
                 rate: Fraction) -> list[str]:
    """Every way ``cues`` read back (start s, end s, text) differ from ``captions``: count, first
    and end frame (each time read back to the nearest frame), and text; each problem starts with
    ``name``."""
    problems = []
    if len(cues) != len(captions):
        problems.append(f"{name}: {len(cues)} cues read back, {len(captions)} planned")
    for number, ((start_s, end_s, text), caption) in enumerate(zip(cues, captions), start=1):
        frames = (round_half_up(start_s * rate), round_half_up(end_s * rate))
        if frames != (caption.start_frame, caption.end_frame):
            problems.append(f"{name} cue {number}: frames {frames}, planned "
                            f"{(caption.start_frame, caption.end_frame)}")
        if text != _lines(caption.text):
            problems.append(f"{name} cue {number}: text {text!r}, planned {_lines(caption.text)!r}")
    return problems
