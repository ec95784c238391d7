"""Overlay planning: the job's text, captions, logos, timecode and motion graphics laid out inside a
deliverable's safe area, as ASS scripts for libass and ffmpeg layers.

- **Layout.** Each layer sits at an anchor (top/middle/bottom x left/centre/right) of the
  deliverable's text-safe area (``Preset.safe_area.text``: graphics-safe insets and the platform's
  interface zones). Sizes are shares of the frame height. Text is wrapped and measured here, from
  the font's own advance widths, and shrunk until it fits its box, so nothing is cut off; the
  ASS script carries explicit line breaks and positions (``WrapStyle: 2``, ``\\pos``).
- **Time.** Events are in sequence frames of the deliverable, written at the middle of the frame
  interval, so the first and last frame of each layer are exact whatever libass rounds.
- **Fonts** are files: each deliverable's fonts are linked into one folder that libass reads as its
  only fonts (``fontsdir``); there is no fontconfig lookup and no system font. A character that no
  font of the layer covers is a job error rather than an empty box on screen.
- **User text is literal**: braces, backslashes and line-break escapes are neutralised, so ASS
  overrides or filter syntax typed in a title appear as typed.

Reading font metrics (a file read, cached) is the only I/O; the planner stays repeatable.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import ffmpeg
from fontTools.ttLib import TTFont, TTLibError

from pipeline.plan.conform import PictureFormat
from pipeline.plan.caption_timing import TimedCaption, caption_frames, overlay_cues
from pipeline.errors import JobError
from pipeline.plan.fonts import default_font_path
from pipeline.model.job import Job
from pipeline.model.overlay_schema import DEFAULT_STYLES, Overlay, Style
from pipeline.model.presets import Insets, AiLabel
from pipeline.timeline.sequence import Timeline
from pipeline.model.timebase import format_rate, frames_to_timecode, parse_time
from pipeline.plan.workfiles import FontLink, GraphicsRender, PreparedFile, TextFile

DEFAULT_ANCHORS = {
    "title": "center", "lower_third": "bottom_left", "end_card": "center", "captions": "bottom_center",
    "logo": "top_right", "timecode": "top_center", "watermark": "center", "graphics": "center",
    "ai_label": "top_left",
}
ANCHOR_ALIGNMENT = {
    "bottom_left": 1, "bottom_center": 2, "bottom_right": 3,
    "middle_left": 4, "center": 5, "middle_right": 6,
    "top_left": 7, "top_center": 8, "top_right": 9,
}
"""ASS ``\\an`` numbers (numpad layout)."""
SUBTEXT_SCALE = Fraction(3, 5)
"""Lower-third role and end-card call to action, relative to the main line."""
WIDTH_MARGIN = 0.94
"""Share of a box's width that measured text may fill: measurement ignores kerning and shaping."""
SHRINK_STEP = 0.92
MIN_TEXT_PX = 4.0
CAPTION_MAX_LINES = 3
"""A caption shrinks rather than take more lines than this."""
BOX_PADDING = 0.15
"""Padding of the box behind boxed text, as a share of the style's line height."""
SLIDE_DISTANCE = Fraction(1, 10)
"""How far sliding text travels, as a share of the frame height."""
OVERLAY_FILTERS = ("subtitles", "drawtext", "overlay", "colorchannelmixer", "fade", "scale", "format",
                   "setpts")
_NEEDS_WORD_JOINER = re.compile(r"\\(?=[Nnh])")


@dataclass(frozen=True)
class FontFace:
    """What layout needs from a font file."""

    path: Path
    """The font file."""
    family: str
    """Family name libass selects it by."""
    line_units: int
    """Ascent plus descent in font units: libass scales this to the ASS font size."""
    ascent_units: int
    """Ascent in font units."""
    advances: dict[int, int]
    """Advance width in font units by code point."""

    def covers(self, character: str) -> bool:
        """True when the font has a glyph for ``character``."""
        return ord(character) in self.advances


@functools.lru_cache(maxsize=32)
def font_face(path: Path) -> FontFace:
    """Read a font's family name, vertical metrics and advance widths.

    Raises:
        JobError: the file is not a font fontTools can read.
    """
    try:
        font = TTFont(path, lazy=True, fontNumber=0)
        names = font["name"]
        family = str(names.getDebugName(1) or names.getDebugName(16) or path.stem)
        os2 = font["OS/2"] if "OS/2" in font else None
        hhea = font["hhea"]
        ascent = os2.usWinAscent if os2 and os2.usWinAscent else hhea.ascent
        descent = os2.usWinDescent if os2 and os2.usWinDescent else -hhea.descent
        metrics = font["hmtx"].metrics
        advances = {code: metrics[glyph][0] for code, glyph in font.getBestCmap().items() if glyph in metrics}
    except (OSError, TTLibError, KeyError, AttributeError) as error:
        raise JobError(f"{path}: not a usable font file ({error})") from None
    return FontFace(path, family, ascent + descent, ascent, advances)


def text_width(text: str, size_px: float, faces: tuple[FontFace, ...]) -> float:
    """Width of one line in pixels at ASS font size ``size_px``, each character from the first face
    that has it (libass falls back to the other fonts of the folder the same way)."""
    width = 0.0
    for character in text:
        face = next((face for face in faces if face.covers(character)), faces[0])
        width += face.advances.get(ord(character), 0) / face.line_units * size_px
    return width


def _tokens(paragraph: str) -> list[str]:
    """Break opportunities: words with their trailing space; each CJK character on its own."""
    tokens = []
    for word in re.findall(r"\S+\s*|\s+", paragraph):
        pieces = re.findall(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef][\s]*|[^\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+", word)
        tokens += pieces
    return tokens


def wrap(text: str, size_px: float, faces: tuple[FontFace, ...], max_width: float) -> list[str]:
    """Greedy line breaking at spaces (and between CJK characters); a word wider than the line is
    broken between characters. Newlines in ``text`` always break.

    Linear in the length of ``text``: widths add up character by character, so each token is
    measured once and a line's width is carried along, not measured again as it grows.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line, line_width = "", 0.0  # line_width: the width of line.rstrip()
        for token in _tokens(paragraph):
            word = token.rstrip()
            trailing = line[len(line.rstrip()):]
            candidate_width = line_width + text_width(trailing + word, size_px, faces) if word else line_width
            if not line or candidate_width <= max_width:
                line, line_width = line + token, candidate_width if line else text_width(word, size_px, faces)
            else:
                lines.append(line.rstrip())
                line = token.lstrip()
                line_width = text_width(line.rstrip(), size_px, faces)
            if line_width > max_width and len(line.rstrip()) > 1:
                pieces = _break_word(line.rstrip(), size_px, faces, max_width)
                lines += pieces[:-1]
                line = pieces[-1] + line[len(line.rstrip()):]
                line_width = text_width(pieces[-1], size_px, faces)
        lines.append(line.rstrip())
    return lines


def _break_word(word: str, size_px: float, faces: tuple[FontFace, ...], max_width: float) -> list[str]:
    """``word`` cut between characters into pieces no wider than ``max_width`` (a single character
    wider than that stands alone), in one pass."""
    pieces, start, width = [], 0, 0.0
    for index, character in enumerate(word):
        character_width = text_width(character, size_px, faces)
        if index > start and width + character_width > max_width:
            pieces.append(word[start:index])
            start, width = index, 0.0
        width += character_width
    pieces.append(word[start:])
    return pieces


@dataclass(frozen=True)
class TextBlock:
    """Text wrapped and sized to fit a box."""

    lines: tuple[str, ...]
    """Lines, top to bottom."""
    size_px: float
    """ASS font size (line height) in pixels."""
    width_px: float
    """Widest line, in pixels (measured)."""


def fit_text(text: str, size_px: float, faces: tuple[FontFace, ...], box_width: float,
             box_height: float, max_lines: int | None = None, line_scale: float = 1.0) -> TextBlock:
    """Wrap ``text`` to ``box_width`` and shrink it until its lines fit ``box_height`` (and
    ``max_lines``); ``line_scale`` is the height of the block in lines per line (1 for plain text)."""
    while True:
        lines = wrap(text, size_px, faces, box_width * WIDTH_MARGIN)
        height = len(lines) * size_px * line_scale
        fits = height <= box_height and (max_lines is None or len(lines) <= max_lines)
        if fits or size_px * SHRINK_STEP < MIN_TEXT_PX:
            width = max(text_width(line, size_px, faces) for line in lines)
            return TextBlock(tuple(lines), size_px, width)
        size_px *= SHRINK_STEP


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


@dataclass(frozen=True)
class SafeBox:
    """The text-safe area of a frame, in pixels."""

    left: float
    """Left edge, pixels from the frame's left."""
    top: float
    """Top edge, pixels from the frame's top."""
    right: float
    """Right edge, pixels from the frame's left."""
    bottom: float
    """Bottom edge, pixels from the frame's top."""

    @classmethod
    def of(cls, insets: Insets, width: int, height: int) -> SafeBox:
        """The box inside ``insets`` of a ``width`` x ``height`` frame."""
        return cls(insets.left * width, insets.top * height, width - insets.right * width,
                   height - insets.bottom * height)

    @property
    def width(self) -> float:
        """Width in pixels."""
        return self.right - self.left

    @property
    def height(self) -> float:
        """Height in pixels."""
        return self.bottom - self.top

    def anchor_point(self, anchor: str) -> tuple[float, float]:
        """The point of the box an anchor names (a corner, an edge's middle or the centre)."""
        vertical, _, horizontal = anchor.partition("_") if anchor != "center" else ("middle", "", "center")
        x = {"left": self.left, "center": (self.left + self.right) / 2, "right": self.right}[horizontal]
        y = {"top": self.top, "middle": (self.top + self.bottom) / 2, "bottom": self.bottom}[vertical]
        return x, y


@dataclass(frozen=True)
class _Timed:
    overlay: Overlay
    number: int
    start_frame: int
    end_frame: int


@dataclass(frozen=True)
class OverlayPlan:
    """A deliverable's layers, resolved to frames and pixels; applied to each render of it."""

    layers: tuple[tuple[str, object], ...]
    """(kind of layer, its data) bottom first: ``ass`` (path of the script), ``logo``, ``graphics``
    or ``timecode`` (a :class:`_PixelLayer`)."""
    files: tuple[PreparedFile, ...]
    """Scripts, font links and motion graphics to make before ffmpeg starts."""
    work_dir: Path
    """The folder of this plan's files."""
    frame_rate: Fraction
    """The deliverable's frame rate."""

    @property
    def fonts_dir(self) -> Path:
        """The folder libass reads its fonts from."""
        return self.work_dir / "fonts"

    def for_window(self, number: int, first_frame: int, frame_count: int) -> OverlayPlan:
        """The plan for window ``number`` of a long sequence, sequence frames ``first_frame`` to
        ``first_frame + frame_count - 1``.

        Its files live in a folder of the window's own, so windows rendered side by side never
        overwrite or remove one another's, and each motion graphic is rendered only for the frames
        the window shows: across the windows every frame of it is rendered once, as in one render.
        """
        work_dir = self.work_dir.with_name(f"{self.work_dir.name}.w{number:03d}")
        end_frame = first_frame + frame_count

        def moved(path: Path) -> Path:
            return work_dir / path.relative_to(self.work_dir)

        shown: dict[Path, tuple[int, int]] = {}
        layers: list[tuple[str, object]] = []
        for kind, data in self.layers:
            if kind == "ass":
                layers.append((kind, moved(data)))
            elif kind == "graphics":
                start, end = max(data.timed.start_frame, first_frame), min(data.timed.end_frame, end_frame)
                if start < end:
                    shown[data.source] = (start - data.timed.start_frame, end - data.timed.start_frame)
                    layers.append((kind, replace(data, source=moved(data.source), source_start_frame=start)))
            else:
                layers.append((kind, data))
        files: list[PreparedFile] = []
        for item in self.files:
            if isinstance(item, GraphicsRender):
                if item.path in shown:
                    first, end = shown[item.path]
                    files.append(replace(item, path=moved(item.path), first_frame=first, end_frame=end))
            else:
                files.append(replace(item, path=moved(item.path)))
        return replace(self, layers=tuple(layers), files=tuple(files), work_dir=work_dir)


@dataclass(frozen=True)
class _PixelLayer:
    timed: _Timed
    picture: PictureFormat
    box: SafeBox
    source: Path | None
    style: Style | None
    sequence_rate: Fraction
    source_start_frame: int
    """Sequence frame showing the source's first frame (a motion graphic's file may start late)."""


def plan_overlays(job: Job, label: str, safe_insets: Insets, picture: PictureFormat, timeline: Timeline,
                  sequence_rate: Fraction, work_dir: Path, ai_label: AiLabel = AiLabel()) -> OverlayPlan | None:
    """Lay out every overlay of ``job`` that applies to deliverable ``label``.

    Args:
        job: The job; ``job.overlays`` in layer order.
        label: The deliverable's name.
        safe_insets: Insets text must respect (``preset.safe_area.text``).
        picture: The deliverable's raster and rate.
        timeline: The deliverable's whole timeline (not a window of it).
        sequence_rate: The rate fade lengths and frame counts in the job are given at.
        work_dir: A folder of the deliverable's own for scripts, font links and graphics.
        ai_label: The deliverable's wording and place for ``ai_label`` overlays (its preset's); with
            ``provenance.disclose`` and no ``ai_label`` in the job, one is added on top.

    Returns:
        The layers, or None when no overlay applies.

    Raises:
        JobError: an overlay starts outside the sequence, a caption file is broken, a font cannot
            be read or lacks characters of its text, or a graphics callable cannot be found.
    """
    chosen = [(number, _with_label_defaults(overlay, ai_label)) for number, overlay in overlays_for(job, label)]
    if not chosen:
        return None
    box = SafeBox.of(safe_insets, picture.width, picture.height)
    fonts_dir = work_dir / "fonts"
    default_font = default_font_path()
    font_paths: dict[Path, None] = {default_font: None}
    layers: list[tuple[str, object]] = []
    files: list[PreparedFile] = []
    events: list[str] = []
    styles: list[str] = []

    def flush_script() -> None:
        if events:
            script = work_dir / f"layer{len(layers):02d}.ass"
            files.append(TextFile(script, _ass_script(picture, styles, events)))
            layers.append(("ass", script))
            events.clear()
            styles.clear()

    for number, overlay in chosen:
        timed = _timed(overlay, number, job, timeline, sequence_rate)
        style = job.styles[overlay.style] if overlay.style else DEFAULT_STYLES.get(overlay.kind, Style())
        if overlay.kind in ("logo", "graphics", "timecode"):
            flush_script()
            source = overlay.image
            if overlay.kind == "graphics":
                source = work_dir / f"graphics{number:02d}.mov"
                files.append(_graphics_render(timed, picture, source))
            layers.append((overlay.kind, _PixelLayer(timed, picture, box, source, style, sequence_rate,
                                                     timed.start_frame)))
            continue
        font = style.font or default_font
        font_paths[font] = None
        faces = (font_face(font), *(font_face(path) for path in font_paths if path != font))
        style_name = f"o{number}"
        styles.append(_ass_style(style_name, style, faces[0], picture))
        events += _text_events(timed, style, style_name, faces, picture, box, sequence_rate, timeline)
    flush_script()
    files += [FontLink(fonts_dir / f"{index:02d}{path.suffix.lower()}", path) for index, path in enumerate(font_paths)]
    return OverlayPlan(tuple(layers), tuple(files), work_dir, picture.frame_rate)


def overlays_for(job: Job, label: str) -> list[tuple[int, Overlay]]:
    """The overlays deliverable ``label`` gets, numbered as in the job, bottom layer first; with
    ``provenance.disclose`` and no ``ai_label`` in the job, an ``ai_label`` on top."""
    overlays = list(job.overlays)
    if job.provenance.disclose and not any(overlay.kind == "ai_label" for overlay in overlays):
        overlays.append(Overlay(kind="ai_label"))
    return [(number, overlay) for number, overlay in enumerate(overlays)
            if overlay.deliverables is None or label in overlay.deliverables]


def _with_label_defaults(overlay: Overlay, ai_label: AiLabel) -> Overlay:
    """An ``ai_label`` overlay with the deliverable's wording and place where the job gives none."""
    if overlay.kind != "ai_label":
        return overlay
    return overlay.model_copy(update={"text": overlay.text or ai_label.text, "anchor": overlay.anchor or ai_label.anchor})


class LogoInputs:
    """The logo stills of one ffmpeg run, each opened once and split into one branch per use.

    ffmpeg-python merges inputs (and filters) with equal arguments into one node, so one logo on two
    deliverables of a run, or twice on one, would otherwise be one scaled stream feeding two
    overlays, which ffmpeg refuses without a split.
    """

    def __init__(self, plans: list[OverlayPlan | None]):
        """Count the logo layers of every plan of the run (None: a deliverable without overlays)."""
        uses = Counter(
            _logo_input(data) for plan in plans if plan is not None for kind, data in plan.layers if kind == "logo"
        )
        self._branches = {}
        for (path, options), count in uses.items():
            still = ffmpeg.input(path, **dict(options)).video
            if count == 1:
                self._branches[(path, options)] = iter([still])
            else:
                node = still.filter_multi_output("split", count)
                self._branches[(path, options)] = iter([node[index] for index in range(count)])

    def take(self, layer: _PixelLayer):
        """The next unused branch of ``layer``'s still."""
        return next(self._branches[_logo_input(layer)])


def _logo_input(layer: _PixelLayer) -> tuple[str, tuple[tuple[str, object], ...]]:
    """The file and input options of a logo layer: its still looped at the deliverable's rate until
    the layer's last frame."""
    rate = layer.picture.frame_rate
    end_s = Fraction(layer.timed.end_frame) / rate
    return str(layer.source), (("loop", 1), ("framerate", format_rate(rate)), ("t", f"{float(end_s):.6f}"))


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
        timed, where = _timed(overlay, number, job, timeline, sequence_rate), f"overlays.{number}"
        for cue in overlay_cues(overlay, where):
            start, end = caption_frames(cue, timed.start_frame, timed.end_frame, timeline, where)
            captions.append(TimedCaption(start, end, cue.text, f"{where}: {cue.label}"))
    return tuple(sorted(captions, key=lambda caption: (caption.start_frame, caption.end_frame)))


def apply_overlays(video, plan: OverlayPlan | None, logos: LogoInputs, start_frame: int = 0):
    """``video`` (a render of the deliverable from sequence frame ``start_frame``) with the layers on;
    ``logos`` holds the logo inputs of every deliverable rendered by the same ffmpeg run."""
    if plan is None:
        return video
    shift = Fraction(start_frame) / plan.frame_rate
    if shift:
        # Layers are timed in sequence time; a window of a long sequence starts later.
        video = video.filter("setpts", f"PTS+({shift.numerator}/{shift.denominator})/TB")
    for kind, data in plan.layers:
        if kind == "ass":
            video = video.filter("subtitles", filename=str(data), fontsdir=str(plan.fonts_dir))
        elif kind == "timecode":
            video = _timecode_layer(video, data, start_frame)
        else:
            video = _image_layer(video, kind, data, logos)
    if shift:
        video = video.filter("setpts", f"PTS-({shift.numerator}/{shift.denominator})/TB")
    return video


def _timed(overlay: Overlay, number: int, job: Job, timeline: Timeline, sequence_rate: Fraction) -> _Timed:
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
    return _Timed(overlay, number, start, min(end, timeline.frame_count))


def _frames(value, sequence_rate: Fraction, rate: Fraction) -> int:
    """A job time as the first frame at or after it, at the deliverable's ``rate``."""
    return math.ceil(parse_time(value, sequence_rate) * rate)


def _ms(frames: int, rate: Fraction) -> int:
    return round(Fraction(frames) / rate * 1000)


def _ass_script(picture: PictureFormat, styles: list[str], events: list[str]) -> str:
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


def _ass_style(name: str, style: Style, face: FontFace, picture: PictureFormat) -> str:
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


def _text_events(timed: _Timed, style: Style, style_name: str, faces: tuple[FontFace, ...],
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


def _graphics_render(timed: _Timed, picture: PictureFormat, path: Path) -> GraphicsRender:
    field = f"overlays.{timed.number}.callable"
    module = timed.overlay.callable.partition(":")[0]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise JobError(f"{field}: no module {module!r} on the Python path")
    frame_count = timed.end_frame - timed.start_frame
    return GraphicsRender(path, timed.overlay.callable, picture.width, picture.height, picture.frame_rate,
                          frame_count, 0, frame_count, field)


def _enable(timed: _Timed, rate: Fraction) -> str:
    """Frames ``start`` to ``end - 1`` by their time, with half a frame to spare on each side."""
    start = float((Fraction(timed.start_frame) - Fraction(1, 2)) / rate)
    end = float((Fraction(timed.end_frame) - Fraction(1, 2)) / rate)
    return f"gte(t,{start:.6f})*lt(t,{end:.6f})"


def _xy(anchor: str, box: SafeBox, width_expr: str, height_expr: str) -> tuple[str, str]:
    """Position expressions of a layer ``width_expr`` x ``height_expr`` at ``anchor``. ffmpeg moves a
    layer on subsampled chroma to even positions, down and left, so the box's left and top edges
    are rounded up to even numbers, and positions from the right and bottom round inwards anyway."""
    x, y = box.anchor_point(anchor)
    x = 2 * math.ceil(x / 2) if anchor.endswith("left") else x
    y = 2 * math.ceil(y / 2) if anchor.startswith("top") else y
    horizontal = anchor.rpartition("_")[2] if anchor != "center" else "center"
    vertical = anchor.partition("_")[0] if anchor != "center" else "middle"
    x_expr = {"left": f"{x:.1f}", "center": f"{x:.1f}-{width_expr}/2", "right": f"{x:.1f}-{width_expr}"}[horizontal]
    y_expr = {"top": f"{y:.1f}", "middle": f"{y:.1f}-{height_expr}/2", "bottom": f"{y:.1f}-{height_expr}"}[vertical]
    return x_expr, y_expr


def _image_layer(video, kind: str, layer: _PixelLayer, logos: LogoInputs):
    """A logo (a still image, looped; its branch taken from ``logos``) or a rendered motion graphic,
    composited at its anchor."""
    timed, picture = layer.timed, layer.picture
    rate = picture.frame_rate
    overlay = timed.overlay
    anchor = overlay.anchor or DEFAULT_ANCHORS[kind]
    end_s = Fraction(timed.end_frame) / rate
    if kind == "logo":
        height = max(2, round(overlay.size * picture.height))
        stream = logos.take(layer).filter("format", "rgba").filter("scale", -1, height)
    else:
        # The file's first frame goes on at its sequence frame; before it the picture passes untouched.
        offset = Fraction(layer.source_start_frame) / rate
        stream = ffmpeg.input(str(layer.source)).video.filter("format", "yuva444p").filter(
            "setpts", f"PTS-STARTPTS+({offset.numerator}/{offset.denominator})/TB"
        )
    if overlay.opacity < 1:
        stream = stream.filter("format", "rgba").filter("colorchannelmixer", aa=f"{overlay.opacity:.4f}")
    if overlay.fade_in_frames:
        stream = stream.filter("fade", type="in", alpha=1, start_time=f"{float(Fraction(timed.start_frame) / rate):.6f}",
                               duration=f"{float(Fraction(overlay.fade_in_frames) / layer.sequence_rate):.6f}")
    if overlay.fade_out_frames:
        fade_s = Fraction(overlay.fade_out_frames) / layer.sequence_rate
        stream = stream.filter("fade", type="out", alpha=1, start_time=f"{float(end_s - fade_s):.6f}",
                               duration=f"{float(fade_s):.6f}")
    x, y = _xy(anchor, layer.box, "overlay_w", "overlay_h")
    return ffmpeg.filter([video, stream], "overlay", x=x, y=y, eof_action="pass",
                         enable=_enable(timed, rate))


def _timecode_layer(video, layer: _PixelLayer, start_frame: int):
    """Record timecode of each frame from sequence frame ``start_frame`` (where this render starts),
    drawn inside the safe area."""
    timed, picture, style = layer.timed, layer.picture, layer.style
    anchor = timed.overlay.anchor or DEFAULT_ANCHORS["timecode"]
    x, y = _xy(anchor, layer.box, "text_w", "text_h")
    size = max(8, round(style.size * picture.height))
    colour = style.colour[1:7]
    opacity = int(style.colour[7:9], 16) / 255 if len(style.colour) == 9 else 1.0
    options = {}
    if style.box:
        box_opacity = int(style.box_colour[7:9], 16) / 255 if len(style.box_colour) == 9 else 1.0
        options = {"box": 1, "boxcolor": f"0x{style.box_colour[1:7]}@{box_opacity:.3f}",
                   "boxborderw": max(2, size // 6)}
        pad = max(2, size // 6)
        x, y = f"{x}+{pad}" if "left" in anchor else f"{x}-{pad}" if "right" in anchor else x, \
            f"{y}+{pad}" if anchor.startswith("top") else f"{y}-{pad}" if anchor.startswith("bottom") else y
    return video.filter(
        "drawtext",
        fontfile=str(style.font or default_font_path()),
        timecode=frames_to_timecode(start_frame, picture.frame_rate),
        rate=format_rate(picture.frame_rate),
        fontsize=size,
        fontcolor=f"0x{colour}@{opacity:.3f}",
        x=x,
        y=y,
        enable=_enable(timed, picture.frame_rate),
        **options,
    )
