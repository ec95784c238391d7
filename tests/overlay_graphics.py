"""Motion graphics for the graphics-overlay tests: white squares whose mask is half transparent."""

from __future__ import annotations

import numpy as np
from moviepy import ColorClip, VideoClip


def half_white_square(width: int, height: int, duration_s: float, frame_rate: float):
    """A square a fifth of the frame height, white, at 50 % opacity, for ``duration_s``."""
    side = max(2, height // 5)
    square = ColorClip((side, side), color=(255, 255, 255), duration=duration_s)
    mask = VideoClip(lambda t: np.full((side, side), 0.5), is_mask=True, duration=duration_s)
    return square.with_mask(mask)


DRAWN_TIMES: list[float] = []
"""Times (seconds into the graphic) at which :class:`CountedSquare` was asked for a picture."""


class CountedSquare:
    """The same half-transparent white square as a plain object (a clip needs only ``size``,
    ``get_frame`` and a ``mask``), noting every time it is drawn, so a test can see that each
    frame of the graphic is rendered once."""

    def __init__(self, side: int) -> None:
        self.size = (side, side)
        self.mask = _HalfMask(side)

    def get_frame(self, time_s: float) -> np.ndarray:
        DRAWN_TIMES.append(time_s)
        return np.full((self.size[1], self.size[0], 3), 255, dtype=np.uint8)


class _HalfMask:
    def __init__(self, side: int) -> None:
        self.side = side

    def get_frame(self, time_s: float) -> np.ndarray:
        return np.full((self.side, self.side), 0.5)


def counted_square(width: int, height: int, duration_s: float, frame_rate: float) -> CountedSquare:
    """A :class:`CountedSquare` a fifth of the frame height."""
    return CountedSquare(max(2, height // 5))
