"""Crop first, then scale: where a fill crop's window lies in the source, so only it is scaled.

A picture that fills the frame (``fit: crop``, smart framing) is the source scaled by one factor and
a frame-sized window cut out of it. Scaling the whole source and then cutting the window scales
pixels nobody sees (a 1280x720 source into 1080x1920 scales 3414x1920 for a 1080 px wide window).
Here the window is cut from the source first, with a margin of :data:`WINDOW_MARGIN` source pixels
on each side, that cut is scaled by nearly the same factor (to an even size, :data:`CUT_SEARCH`),
and the exact frame is cut out of it at output-pixel precision. The margin keeps the frame where the
scale-then-crop order put it, to the output pixel, although the source crop moves in steps of two
source pixels (chroma siting); the scaler's borders fall in the margin, outside the frame.

A window position is an ``int`` (a fixed crop) or a ``crop`` filter expression of the frame number
``n`` (a smart crop path, :func:`pipeline.analysis.reframe.crop_expressions`), in pixels of the
whole scaled picture; the result is of the same kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

WINDOW_MARGIN = 4
"""Source pixels scaled beyond each side of the frame's window: two for the source crop's even
offset, two for rounding (the frame never leaves the scaled window)."""
CUT_SEARCH = 32
"""The source cut is chosen among this many pixels' worth of even sizes above the smallest: the one
whose scaled size is nearest a whole even number, so the cut scales by the whole picture's factor
to within 0.1 % (the frame's far edge within a fraction of a pixel)."""


@dataclass(frozen=True)
class AxisWindow:
    """One axis (width or height) of a fill crop taken from the source before scaling."""

    source_size: int
    """Pixels of the source cut out and scaled."""
    source_offset: int | str
    """Where they start in the source (even)."""
    scaled_size: int
    """What they are scaled to."""
    offset: int | str
    """Where the frame starts in the scaled cut-out: the even pixel nearest the scale-then-crop
    position (even keeps the chroma of 4:2:x deliverables sited as the whole-picture crop did)."""


def _even_round(value: Fraction) -> int:
    return 2 * math.floor(value / 2 + Fraction(1, 2))


def _even_ceil(value: Fraction) -> int:
    return 2 * math.ceil(value / 2)


def axis_window(source_size: int, scaled_size: int, frame_size: int, position: int | str) -> AxisWindow:
    """The source crop and the frame crop along one axis.

    Args:
        source_size: The (active) source picture's pixels along the axis.
        scaled_size: The whole picture's pixels after scaling (``Placement.scaled_width`` / ``_height``).
        frame_size: The deliverable's pixels along the axis.
        position: The frame's offset in the whole scaled picture: pixels, or an expression of ``n``.
    """
    factor = Fraction(scaled_size, source_size)
    smallest = _even_ceil(frame_size / factor) + 2 * WINDOW_MARGIN
    if smallest + CUT_SEARCH >= source_size:
        # The frame needs (nearly) the whole source along this axis: nothing to save.
        return AxisWindow(source_size, 0, scaled_size, position)
    # The cut whose scaled size is nearest an even number of pixels scales by the whole picture's factor.
    cut = min(range(smallest, smallest + CUT_SEARCH, 2),
              key=lambda size: abs(size * factor - _even_round(size * factor)))
    cut_scaled = _even_round(cut * factor)
    cut_factor = Fraction(cut_scaled, cut)
    last_cut = source_size - cut
    last_frame = cut_scaled - frame_size
    if isinstance(position, int):
        in_source = position / factor
        start = min(max(2 * math.floor(in_source / 2) - WINDOW_MARGIN, 0), last_cut)
        offset = _even_round((in_source - start) * cut_factor)
        return AxisWindow(cut, start, cut_scaled, min(max(offset, 0), last_frame))
    # Where the whole-picture crop was taken: ``crop`` rounds its x/y to the nearest pixel, then to
    # an even one at or before it (4:2:x chroma).
    in_source = f"2*floor(floor(({position})+0.5)/2)*{float(1 / factor):.9f}"
    start = f"clip(2*floor({in_source}/2)-{WINDOW_MARGIN},0,{last_cut})"
    offset = f"clip(2*floor(({in_source}-{start})*{float(cut_factor / 2):.9f}+0.5),0,{last_frame})"
    return AxisWindow(cut, start, cut_scaled, offset)
