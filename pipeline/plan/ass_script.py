"""ASS scripts for libass: the text overlays of a deliverable as styles and dialogue events.

- **Layout** comes from :mod:`pipeline.plan.overlay_layout`: the script carries explicit line breaks
  and positions (``WrapStyle: 2``, ``\\pos``), so libass wraps nothing of its own.
- **Time.** Events are in sequence frames of the deliverable, written at the middle of the frame
  interval, so the first and last frame of each layer are exact whatever libass rounds.
- **User text is literal**: braces, backslashes and line-break escapes are neutralised, so ASS
  overrides or filter syntax typed in a title appear as typed. A character that no font of the
  layer covers is a job error rather than an empty box on screen.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from pipeline.errors import JobError
from pipeline.model.overlay_schema import Overlay, Style
from pipeline.plan.caption_timing import caption_frames, overlay_cues
from pipeline.plan.conform import PictureFormat
from pipeline.plan.overlay_layout import DEFAULT_ANCHORS, WIDTH_MARGIN, FontFace, SafeBox, fit_text, wrap
from pipeline.plan.overlay_timing import TimedOverlay
from pipeline.timeline.sequence import Timeline


ANCHOR_ALIGNMENT = {
    "bottom_left": 1, "bottom_center": 2, "bottom_right": 3,
    "middle_left": 4, "center": 5, "middle_right": 6,
    "top_left": 7, "top_center": 8, "top_right": 9,
}
"""ASS ``\\an`` numbers (numpad layout)."""
SUBTEXT_SCALE = Fraction(3, 5)
"""Lower-third role and end-card call to action, relative to the main line."""
CAPTION_MAX_LINES = 3
"""A caption shrinks rather than take more lines than this."""
BOX_PADDING = 0.15
"""Padding of the box behind boxed text, as a share of the style's line height."""
SLIDE_DISTANCE = Fraction(1, 10)
"""How far sliding text travels, as a share of the frame height."""
_NEEDS_WORD_JOINER = re.compile(r"\\(?=[Nnh])")


def escape_ass_text(text: str) -> str:
    """User text as literal ASS dialogue text: ``{`` and ``}`` escaped (libass reads ``\\{`` as a
    brace), a backslash before ``N``, ``n`` or ``h`` kept from making a line break or hard space by
    an invisible word joiner, newlines as ``\\N``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _NEEDS_WORD_JOINER.sub("\\\\\u2060", text)
    text = text.replace("{", "\\{").replace("}", "\\}")
    return text.replace("\n", "\\N")


def ass_colour(hex_colour: str) -> str:
    """``#RRGGBB[AA]`` as ASS ``&HAABBGGRR`` (ASS alpha 00 is opaque)."""
    red, green, blue = hex_colour[1:3], hex_colour[3:5], hex_colour[5:7]
    opacity = int(hex_colour[7:9], 16) if len(hex_colour) == 9 else 255
    return f"&H{255 - opacity:02X}{blue}{green}{red}".upper()


def ass_time(frame: int, rate: Fraction) -> str:
    """ASS time (centiseconds) half-way between frames ``frame - 1`` and ``frame``: libass shows an
    event on frames whose time is at or after its start and before its end, so this boundary gives
    exactly frame ``frame`` whatever the millisecond rounding."""
    centiseconds = max(0, math.floor((Fraction(frame) - Fraction(1, 2)) / rate * 100 + Fraction(1, 2)))
    hours, rest = divmod(centiseconds, 360000)
    minutes, rest = divmod(rest, 6000)
    seconds, hundredths = divmod(rest, 100)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{hundredths:02d}"


def ass_script_text(picture: PictureFormat, styles: list[str], events: list[str]) -> str:
    return "\n".join([
        "[Script Info]",
        "ScriptType: v4.00+",
        f"PlayResX: {picture.width}",
        f"PlayResY: {picture.height}",
        "WrapStyle: 2",
        "ScaledBorderAndShadow: yes",
        "YCbCr Matrix: None",
        "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
        "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
        "Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
        *styles,
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        *events,
        "",
    ])


def ass_style(name: str, style: Style, face: FontFace, picture: PictureFormat) -> str:
    height = picture.height
    size = round(style.size * height, 2)
    if style.box:
        border_style, outline_colour, outline = 3, ass_colour(style.box_colour), round(BOX_PADDING * size, 2)
    else:
        border_style, outline_colour, outline = 1, ass_colour(style.outline_colour), round(style.outline * height, 2)
    family = face.family.replace(",", " ")
    return (f"Style: {name},{family},{size},{ass_colour(style.colour)},{ass_colour(style.colour)},"
            f"{outline_colour},{ass_colour(style.shadow_colour)},{-1 if style.bold else 0},"
            f"{-1 if style.italic else 0},0,0,100,100,0,0,{border_style},{outline},"
            f"{round(style.shadow * height, 2)},7,0,0,0,1")


def _check_coverage(text: str, faces: tuple[FontFace, ...], where: str) -> None:
    missing = sorted({ch for ch in text if not ch.isspace() and ch != "\u2060"
                      and not any(face.covers(ch) for face in faces)})
    if missing:
        shown = " ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in missing[:8])
        raise JobError(f"{where}: font {faces[0].path.name} has no glyph for {shown}; name a font "
                       "that covers them in the overlay's style")


def text_events(timed: TimedOverlay, style: Style, style_name: str, faces: tuple[FontFace, ...],
                 picture: PictureFormat, box: SafeBox, sequence_rate: Fraction, timeline: Timeline) -> list[str]:
    overlay, rate = timed.overlay, picture.frame_rate
    where = f"overlays.{timed.number}"
    anchor = overlay.anchor or DEFAULT_ANCHORS[overlay.kind]
    size = style.size * picture.height
    effects = _effects(overlay, sequence_rate)
    # Outline, shadow and line boxes are drawn outside the text's own box: keep them inside too.
    margin = (BOX_PADDING * size if style.box else style.outline * picture.height) + style.shadow * picture.height
    safe, box = box, SafeBox(box.left + margin, box.top + margin, box.right - margin, box.bottom - margin)
    events = []
    if overlay.kind == "captions":
        for cue in overlay_cues(overlay, where):
            _check_coverage(cue.text, faces, f"{where}: {cue.label}")
            start, end = caption_frames(cue, timed.start_frame, timed.end_frame, timeline, where)
            block = fit_text(cue.text, size, faces, box.width, box.height, max_lines=CAPTION_MAX_LINES)
            x, y = box.anchor_point(anchor)
            text = "\\N".join(escape_ass_text(line) for line in block.lines)
            events.append(_dialogue(start, end, rate, style_name, 1,
                                    f"{{\\an{ANCHOR_ALIGNMENT[anchor]}\\pos({x:.1f},{y:.1f})"
                                    f"\\fs{block.size_px:.2f}}}{text}"))
        return events
    main_text = overlay.text or ""
    _check_coverage(main_text + (overlay.subtext or ""), faces, where)
    padding = 0.25 * size if style.bar_colour and overlay.kind == "lower_third" else 0.0
    inner_width = box.width - 2 * padding
    inner_height = box.height - 2 * padding
    if overlay.kind == "lower_third":
        inner_height = min(inner_height, box.height / 3)
    sub = overlay.subtext
    line_scale = 1.0
    if sub:
        # The sub line takes SUBTEXT_SCALE of a line: fit both by shrinking together.
        lines_main = max(1, len(wrap(main_text, size, faces, inner_width * WIDTH_MARGIN)))
        line_scale = (lines_main + float(SUBTEXT_SCALE)) / lines_main
    block = fit_text(main_text, size, faces, inner_width, inner_height, line_scale=line_scale)
    sub_block = None
    if sub:
        sub_block = fit_text(sub, block.size_px * float(SUBTEXT_SCALE), faces, inner_width,
                             inner_height - len(block.lines) * block.size_px)
    text = "\\N".join(escape_ass_text(line) for line in block.lines)
    block_width, block_height = block.width_px, len(block.lines) * block.size_px
    if sub_block:
        text += f"\\N{{\\fs{sub_block.size_px:.2f}}}" + "\\N".join(escape_ass_text(line) for line in sub_block.lines)
        block_width = max(block_width, sub_block.width_px)
        block_height += len(sub_block.lines) * sub_block.size_px
    x, y = box.anchor_point(anchor)
    horizontal = anchor.rpartition("_")[2] if anchor != "center" else "center"
    vertical = anchor.partition("_")[0] if anchor != "center" else "middle"
    x += {"left": padding, "center": 0, "right": -padding}[horizontal]
    y += {"top": padding, "middle": 0, "bottom": -padding}[vertical]
    if overlay.kind == "end_card" and style.bar_colour:
        events.append(_dialogue(timed.start_frame, timed.end_frame, rate, style_name, 0,
                                _rectangle(picture.width, picture.height, style.bar_colour, "\\pos(0,0)", effects)))
    if overlay.kind == "lower_third" and style.bar_colour:
        bar_width = min(block_width + 2 * padding, box.width)
        bar_height = block_height + 2 * padding
        left = {"left": box.left, "center": (box.left + box.right - bar_width) / 2,
                "right": box.right - bar_width}[horizontal]
        top = {"top": box.top, "middle": (box.top + box.bottom - bar_height) / 2,
               "bottom": box.bottom - bar_height}[vertical]
        events.append(_dialogue(timed.start_frame, timed.end_frame, rate, style_name, 0,
                                _rectangle(bar_width, bar_height, style.bar_colour,
                                           _slide(overlay, left, top, picture, sequence_rate, safe), effects)))
    position = _slide(overlay, x, y, picture, sequence_rate, safe)
    events.append(_dialogue(timed.start_frame, timed.end_frame, rate, style_name, 1,
                            f"{{\\an{ANCHOR_ALIGNMENT[anchor]}{position}\\fs{block.size_px:.2f}{effects}}}{text}"))
    return events


def _effects(overlay: Overlay, sequence_rate: Fraction) -> str:
    if not (overlay.fade_in_frames or overlay.fade_out_frames):
        return ""
    return f"\\fad({_ms(overlay.fade_in_frames, sequence_rate)},{_ms(overlay.fade_out_frames, sequence_rate)})"


def _slide(overlay: Overlay, x: float, y: float, picture: PictureFormat, sequence_rate: Fraction,
           safe: SafeBox) -> str:
    """``\\pos``, or ``\\move`` from a short way off over the fade-in (or half a second).

    A slide starts up to ``SLIDE_DISTANCE`` of the frame height away, which for text at an edge of
    the safe area is outside it: the moving layer is clipped to the safe area (``\\clip``, whole
    pixels inwards), so it enters from the safe area's edge and no frame of the move leaves it.
    """
    if overlay.slide_in is None:
        return f"\\pos({x:.1f},{y:.1f})"
    distance = float(SLIDE_DISTANCE * picture.height)
    dx, dy = {"left": (-distance, 0), "right": (distance, 0), "up": (0, distance), "down": (0, -distance)}[overlay.slide_in]
    duration_ms = _ms(overlay.fade_in_frames, sequence_rate) or 500
    clip = (f"\\clip({math.ceil(safe.left)},{math.ceil(safe.top)},"
            f"{math.floor(safe.right)},{math.floor(safe.bottom)})")
    return f"\\move({x + dx:.1f},{y + dy:.1f},{x:.1f},{y:.1f},0,{duration_ms}){clip}"


def _rectangle(width: float, height: float, colour: str, position: str, effects: str) -> str:
    """An ASS drawing of a filled rectangle, its top-left corner at ``position`` (``\\pos`` or ``\\move``)."""
    fill = ass_colour(colour)
    return (f"{{\\an7{position}{effects}\\p1\\bord0\\shad0\\1c&H{fill[4:]}&\\1a&H{fill[2:4]}&}}"
            f"m 0 0 l {width:.1f} 0 l {width:.1f} {height:.1f} l 0 {height:.1f}{{\\p0}}")


def _dialogue(start: int, end: int, rate: Fraction, style: str, layer: int, text: str) -> str:
    return f"Dialogue: {layer},{ass_time(start, rate)},{ass_time(end, rate)},{style},,0,0,0,,{text}"


def _ms(frames: int, rate: Fraction) -> int:
    return round(Fraction(frames) / rate * 1000)
