"""Reference text for the overlay tests that needs no system library: HarfBuzz (the uharfbuzz
wheel bundles it) shapes a line, and the shaped glyphs' outlines, read with fontTools and flattened
into polygons, are filled with Pillow. Pillow's own shaping needs libraqm and the system's
libfribidi, which a clean machine may lack.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import uharfbuzz as hb
from fontTools.pens.basePen import BasePen
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw

CURVE_STEPS = 8
"""Straight segments per Bézier segment when flattening outlines."""
SUPERSAMPLE = 4
"""Outlines are filled this many times larger, then averaged down: anti-aliased coverage."""


class _PolygonPen(BasePen):
    """Collects a glyph's contours as polygons in font units, curves flattened into short lines."""

    def __init__(self, glyph_set) -> None:
        super().__init__(glyph_set)
        self.contours: list[list[tuple[float, float]]] = []

    def _moveTo(self, point) -> None:
        self.contours.append([point])

    def _lineTo(self, point) -> None:
        self.contours[-1].append(point)

    def _qCurveToOne(self, control, end) -> None:
        start = np.array(self._getCurrentPoint(), dtype=float)
        control, end = np.array(control, dtype=float), np.array(end, dtype=float)
        for t in np.linspace(0, 1, CURVE_STEPS + 1)[1:]:
            self.contours[-1].append(tuple((1 - t) ** 2 * start + 2 * (1 - t) * t * control + t ** 2 * end))

    def _curveToOne(self, first, second, end) -> None:
        start = np.array(self._getCurrentPoint(), dtype=float)
        first, second, end = (np.array(point, dtype=float) for point in (first, second, end))
        for t in np.linspace(0, 1, CURVE_STEPS + 1)[1:]:
            self.contours[-1].append(tuple((1 - t) ** 3 * start + 3 * (1 - t) ** 2 * t * first
                                           + 3 * (1 - t) * t ** 2 * second + t ** 3 * end))

    def _closePath(self) -> None:
        pass

    def _endPath(self) -> None:
        pass


def shaped_glyphs(text: str, font_path: Path) -> list[tuple[int, float, float]]:
    """HarfBuzz's shaping of ``text``: (glyph id, x, y) in font units, left to right on the page
    (HarfBuzz gives right-to-left runs in visual order), pen positions plus offsets."""
    face = hb.Face(hb.Blob.from_file_path(str(font_path)))
    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    hb.shape(hb.Font(face), buffer, {})
    placed, pen_x, pen_y = [], 0.0, 0.0
    for info, position in zip(buffer.glyph_infos, buffer.glyph_positions, strict=True):
        placed.append((info.codepoint, pen_x + position.x_offset, pen_y + position.y_offset))
        pen_x += position.x_advance
        pen_y += position.y_advance
    return placed


def nominal_glyphs(text: str, font_path: Path, right_to_left: bool) -> list[tuple[int, float, float]]:
    """No shaping: each character's own glyph from the cmap, side by side by its advance, in
    logical order or reversed (right to left) -- what a renderer without shaping would draw."""
    font = TTFont(font_path, lazy=True)
    cmap, order, metrics = font.getBestCmap(), font.getGlyphOrder(), font["hmtx"].metrics
    placed, pen_x = [], 0.0
    for character in (reversed(text) if right_to_left else text):
        name = cmap.get(ord(character), ".notdef")
        placed.append((order.index(name), pen_x, 0.0))
        pen_x += metrics[name][0]
    return placed


def draw_glyphs(glyphs: list[tuple[int, float, float]], font_path: Path, pixels_per_unit: float) -> np.ndarray:
    """Ink mask (True where covered more than half) of ``glyphs`` filled with the nonzero rule.

    Each contour is filled on its own and added with the sign of its direction, so holes (counters)
    and overlapping contours of variable fonts come out as FreeType would fill them.
    """
    font = TTFont(font_path, lazy=True)
    glyph_set, order = font.getGlyphSet(), font.getGlyphOrder()
    ascent, descent = font["hhea"].ascent, -font["hhea"].descent
    scale = pixels_per_unit * SUPERSAMPLE
    margin = 4 * SUPERSAMPLE
    right = max(x + glyph_set[order[glyph]].width for glyph, x, _ in glyphs)
    width = int(right * scale) + 2 * margin
    height = int((ascent + descent) * 1.5 * scale) + 2 * margin
    baseline = margin + ascent * 1.25 * scale
    ink = np.zeros((height, width), dtype=bool)
    for glyph, x, y in glyphs:
        pen = _PolygonPen(glyph_set)
        glyph_set[order[glyph]].draw(pen)
        winding = np.zeros((height, width), dtype=np.int16)
        for contour in pen.contours:
            if len(contour) < 3:
                continue
            points = [(margin + (x + px) * scale, baseline - (y + py) * scale) for px, py in contour]
            canvas = Image.new("L", (width, height), 0)
            ImageDraw.Draw(canvas).polygon(points, fill=1)
            winding += np.asarray(canvas, dtype=np.int16) * _direction(points)
        ink |= winding != 0
    coverage = cv2.resize(ink.astype(np.float32), (width // SUPERSAMPLE, height // SUPERSAMPLE),
                          interpolation=cv2.INTER_AREA)
    return coverage > 0.5


def _direction(points: list[tuple[float, float]]) -> int:
    """+1 or -1 by the sign of the polygon's area (the shoelace formula)."""
    xs, ys = np.array(points).T
    area = float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1)))
    return 1 if area > 0 else -1
