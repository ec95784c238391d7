"""How a deliverable frames a source, and the ``crop`` filter expressions that carry a camera path.

:func:`crop_expressions` turns the path into the ``crop`` filter's ``x``/``y`` expressions of the
output frame number ``n``, piecewise linear with knots where the path bends, looked up through a
balanced tree of ``if(lt(n,K),...)`` so ffmpeg evaluates one segment a frame; ffmpeg applies it as
it renders and no full-resolution frame passes through Python.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from pipeline.analysis.reframe.analysis import ReframeAnalysis
from pipeline.analysis.reframe.bars import ActiveArea
from pipeline.analysis.reframe.camera import CropPath, camera_path
from pipeline.media.probe import VideoStreamInfo

KNOT_TOLERANCE_PX = 0.25
"""The piecewise-linear crop expression stays within this many output pixels of the path."""
MAX_SEGMENTS = 512
"""Straight segments per crop expression at most (the tolerance is relaxed to stay under): keeps a
long tracked shot's expression to about 20 kB of the filter graph argument."""


@dataclass(frozen=True)
class Framing:
    """How one deliverable frames one source beyond the preset's plain fit."""

    active: ActiveArea = ActiveArea()
    """Crop to this area (inside burned-in bars) before anything else."""
    path: CropPath | None = None
    """``smart``: the crop follows this path (the preset fills the frame)."""
    blur: bool = False
    """Show the whole picture over a blurred copy of itself (``fit_blur``)."""

    def active_source(self, source: VideoStreamInfo) -> tuple[tuple[int, int, int, int], VideoStreamInfo]:
        """The active area in displayed pixels (x, y, w, h) and the source as if it were only that."""
        x, y, width, height = self.active.pixels(source.display_width, source.display_height)
        aspect = Fraction(width, height) * source.sample_aspect_ratio
        return (x, y, width, height), replace(
            source, display_width=width, display_height=height, display_aspect_ratio=aspect
        )


def framing_for(fit: str, fallback: str, analysis: ReframeAnalysis | None, width: int, height: int,
                active_area: ActiveArea | None = None) -> Framing | None:
    """The framing of a source in a deliverable of ``width`` x ``height`` fitted by ``fit``; None when
    the plain fit applies as is (no analysis and no blur, or nothing to change). ``active_area``:
    the source's active area where it was measured without an ``analysis``."""
    active = analysis.active if analysis is not None else active_area or ActiveArea()
    if fit == "fit_blur":
        return Framing(active=active, blur=True)
    if fit == "smart" and analysis is not None:
        path = camera_path(analysis, width / height, fallback)
        if path.fit_blur:
            return Framing(active=active, blur=True)
        return Framing(active=active, path=path)
    return None if active.is_full_frame else Framing(active=active)


def crop_expressions(
    path: CropPath, first_frame: int, frame_count: int, frame_rate: Fraction,
    scaled: tuple[int, int], window: tuple[int, int], speed: Fraction = Fraction(1),
) -> tuple[str, str]:
    """The ``crop`` filter's ``x`` and ``y`` for a shot's output frames ``n = 0 .. frame_count - 1``.

    Args:
        path: The source's camera path.
        first_frame: Source frame (at ``frame_rate``) shown at ``n = 0``.
        frame_count: Output frames of the shot.
        frame_rate: Output frames per second.
        scaled: Size (w, h) of the scaled active picture the crop is taken from, in pixels.
        window: Size (w, h) of the crop, in pixels.
        speed: How much faster the shot plays than its source (``rate_conversion: speed``): output
            time times ``speed`` is source time.
    """
    times = (first_frame + np.arange(frame_count)) / float(frame_rate) * float(speed)
    centres = path.centre_at(times)
    axis = 0 if path.axis == "x" else 1
    travel = scaled[axis] - window[axis]
    positions = np.clip(centres * scaled[axis] - window[axis] / 2, 0, travel)
    moving = _piecewise_linear(positions)
    # The crop covers the other axis whole (its travel is 0 but for rounding): centred on even pixels.
    other_travel = scaled[1 - axis] - window[1 - axis]
    still = str(other_travel // 2 - (other_travel // 2) % 2)
    return (moving, still) if axis == 0 else (still, moving)


def _piecewise_linear(values: np.ndarray) -> str:
    """An expression of the frame number ``n`` following ``values`` (one per frame) within
    :data:`KNOT_TOLERANCE_PX`, or a coarser tolerance when that would take more than
    :data:`MAX_SEGMENTS` segments.

    The segments are chosen by :func:`_line_segments` and looked up by a balanced tree of
    ``if(lt(n,K),...)``: ffmpeg's expression parser rejects (EINVAL, no message, "Failed to
    configure input pad") a chain of more than about 100 operators, so a flat sum of one term per
    segment breaks on any long or busy path; the tree's depth is the logarithm of the segment count
    and ffmpeg evaluates only one segment per frame.
    """
    if np.ptp(values) <= KNOT_TOLERANCE_PX:
        return f"{values[0]:.3f}"  # a stationary camera: no segments to look up
    tolerance = KNOT_TOLERANCE_PX
    knots = _line_segments(values, tolerance)
    while len(knots) - 1 > MAX_SEGMENTS:
        tolerance *= 2
        knots = _line_segments(values, tolerance)
    return _segment_tree(values, knots, 0, len(knots) - 1)


def _line_segments(values: np.ndarray, tolerance: float) -> list[int]:
    """Indices of knots such that straight lines between consecutive knots stay within ``tolerance``
    of ``values`` (greedy: each segment as long as it can be)."""
    knots = [0]
    last = len(values) - 1
    while knots[-1] < last:
        start = knots[-1]
        end = start + 1
        while end < last:
            candidate = end + 1
            line = np.linspace(values[start], values[candidate], candidate - start + 1)
            if np.abs(line - values[start : candidate + 1]).max() > tolerance:
                break
            end = candidate
        knots.append(end)
    return knots


def _segment_tree(values: np.ndarray, knots: list[int], first: int, last: int) -> str:
    """The expression for segments ``first`` .. ``last - 1`` (segment i runs from knots[i] to knots[i + 1])."""
    if last - first <= 1:
        start = knots[first]
        end = knots[min(first + 1, len(knots) - 1)]
        slope = (values[end] - values[start]) / (end - start) if end > start else 0.0
        if abs(slope) < 1e-6:
            return f"{values[start]:.3f}"
        return f"{values[start]:.3f}{slope:+.6f}*(n-{start})"
    middle = (first + last) // 2
    return (f"if(lt(n,{knots[middle]}),{_segment_tree(values, knots, first, middle)},"
            f"{_segment_tree(values, knots, middle, last)})")

