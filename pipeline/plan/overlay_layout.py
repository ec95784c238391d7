"""Overlay layout: where text and pictures sit in a deliverable's frame, and how big text is.

Each layer sits at an anchor (top/middle/bottom x left/centre/right) of the deliverable's text-safe
area (``Preset.safe_area.text``: graphics-safe insets and the platform's interface zones), a
:class:`SafeBox` in pixels. Text is wrapped and measured here, from the font's own advance widths,
and shrunk until it fits its box, so nothing is cut off.

Reading font metrics (a file read, cached) is the only I/O.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTFont, TTLibError

from pipeline.errors import JobError
from pipeline.model.presets import Insets


DEFAULT_ANCHORS = {
    "title": "center", "lower_third": "bottom_left", "end_card": "center", "captions": "bottom_center",
    "logo": "top_right", "timecode": "top_center", "watermark": "center", "graphics": "center",
    "ai_label": "top_left",
}
"""Where each kind of overlay sits when the job names no anchor."""
WIDTH_MARGIN = 0.94
"""Share of a box's width that measured text may fill: measurement ignores kerning and shaping."""
SHRINK_STEP = 0.92
"""Factor text shrinks by per try until it fits its box."""
MIN_TEXT_PX = 4.0
"""Text does not shrink below this ASS font size, in pixels."""


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
