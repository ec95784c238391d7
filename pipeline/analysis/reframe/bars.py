"""Burned-in bars: columns and rows at the edges that stay flat (one level, within a tolerance)
over the whole clip are part of the delivery, not the picture; the rest is the *active area*, which
every fit mode then works from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BAR_FLAT_TOLERANCE = 10
"""A border column or row whose luma spans at most this many levels over the clip is flat."""
BAR_MIN_SHARE = 0.02
"""Flat borders narrower than this share of the frame are ignored."""
BAR_MIN_SAMPLES = 6
"""Bars are only trusted after this many samples: a short still could have flat edges by chance."""
BAR_INSET_SHARE = 0.004
"""The active area is taken this much (of its size) inside the detected edge, past codec ringing."""
BAR_ROW_STEP = 8
"""Every this many rows (columns) are read to profile columns (rows) for bars."""


@dataclass(frozen=True)
class ActiveArea:
    """The picture inside any burned-in bars, as shares of the displayed frame."""

    left: float = 0.0
    """Left edge, share of the frame width."""
    top: float = 0.0
    """Top edge, share of the frame height."""
    right: float = 1.0
    """Right edge, share of the frame width."""
    bottom: float = 1.0
    """Bottom edge, share of the frame height."""

    @property
    def is_full_frame(self) -> bool:
        """True when there are no bars."""
        return (self.left, self.top, self.right, self.bottom) == (0.0, 0.0, 1.0, 1.0)

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x, y, width, height) in a ``width`` x ``height`` frame, on even pixels (4:2:0 chroma)."""
        x0, y0 = _even_up(self.left * width), _even_up(self.top * height)
        x1, y1 = _even_down(self.right * width), _even_down(self.bottom * height)
        return x0, y0, max(2, x1 - x0), max(2, y1 - y0)


def _even_up(value: float) -> int:
    return int(np.ceil(value / 2 - 1e-9)) * 2


def _even_down(value: float) -> int:
    return int(np.floor(value / 2 + 1e-9)) * 2


class BarProfile:
    """Running luma range of every column and row of the displayed frame."""

    def __init__(self) -> None:
        self.samples = 0
        self._column_low = self._column_high = self._row_low = self._row_high = None

    def add(self, luma: np.ndarray) -> None:
        """Take a sampled frame's displayed luma plane."""
        columns = luma[::BAR_ROW_STEP, :]
        rows = luma[:, ::BAR_ROW_STEP]
        lows = (columns.min(axis=0), rows.min(axis=1))
        highs = (columns.max(axis=0), rows.max(axis=1))
        if self.samples == 0:
            self._column_low, self._row_low = lows
            self._column_high, self._row_high = highs
        else:
            self._column_low = np.minimum(self._column_low, lows[0])
            self._row_low = np.minimum(self._row_low, lows[1])
            self._column_high = np.maximum(self._column_high, highs[0])
            self._row_high = np.maximum(self._row_high, highs[1])
        self.samples += 1

    def active_area(self) -> ActiveArea:
        """The picture inside the borders that stayed flat in every sample so far."""
        if self.samples < BAR_MIN_SAMPLES:
            return ActiveArea()
        left, right = _flat_borders(self._column_low.astype(int), self._column_high.astype(int))
        top, bottom = _flat_borders(self._row_low.astype(int), self._row_high.astype(int))
        return ActiveArea(left=left, top=top, right=right, bottom=bottom)


def _flat_borders(low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """Start and end of the middle of a profile between borders of one flat level, as shares of
    its length (0, 1 when there are none).

    A bar is flat and of the edge's own level all the way in: a flat stripe of another colour
    just inside it is picture.
    """
    size = len(low)
    middle = (low + high) / 2
    flat = (high - low) <= BAR_FLAT_TOLERANCE
    from_left = flat & (np.abs(middle - middle[0]) <= BAR_FLAT_TOLERANCE)
    from_right = flat & (np.abs(middle - middle[-1]) <= BAR_FLAT_TOLERANCE)
    first = int(np.argmin(from_left)) if not from_left.all() else size
    last = size - int(np.argmin(from_right[::-1])) if not from_right.all() else 0
    if first >= last:
        return 0.0, 1.0  # flat throughout: a plain picture, not bars
    if (last - first) < 0.1 * size:
        return 0.0, 1.0
    start = first / size if first >= BAR_MIN_SHARE * size else 0.0
    end = last / size if size - last >= BAR_MIN_SHARE * size else 1.0
    inset = BAR_INSET_SHARE * (end - start)
    return (start + inset if start else 0.0), (end - inset if end < 1.0 else 1.0)

