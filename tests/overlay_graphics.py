"""A motion graphic for the graphics-overlay test: a white square whose mask is half transparent."""

from __future__ import annotations

import numpy as np
from moviepy import ColorClip, VideoClip


def half_white_square(width: int, height: int, duration_s: float, frame_rate: float):
    """A square a fifth of the frame height, white, at 50 % opacity, for ``duration_s``."""
    side = max(2, height // 5)
    square = ColorClip((side, side), color=(255, 255, 255), duration=duration_s)
    mask = VideoClip(lambda t: np.full((side, side), 0.5), is_mask=True, duration=duration_s)
    return square.with_mask(mask)
