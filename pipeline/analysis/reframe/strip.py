"""A debug strip: sampled frames of a source with its framing drawn on them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.analysis.reframe.analysis import ReframeAnalysis, displayed
from pipeline.analysis.reframe.camera import window_size
from pipeline.analysis.reframe.framing import Framing
from pipeline.errors import MediaError
from pipeline.media.probe import MediaInfo
from pipeline.media.source_decode import Image, PictureNeed, decode_source

STRIP_FRAMES = 6
"""Frames shown in a debug strip."""
STRIP_HEIGHT_PX = 240
"""Height of each frame in a debug strip."""


def write_debug_strip(analysis: ReframeAnalysis, media: MediaInfo, framing: Framing | None, target_aspect: float,
                      out: Path, frames: int = STRIP_FRAMES, whole_picture: bool = False) -> Path:
    """A PNG of ``frames`` evenly spaced frames side by side, each with the framing drawn on it: the
    active area in blue, subjects found in yellow, the crop in green, or, where nothing is cropped
    (``fit_blur``, a ``smart`` fallback to it, or ``whole_picture`` for ``pad``), the whole active
    picture in red.

    Raises:
        MediaError: the video does not decode.
    """
    wanted = np.linspace(0, analysis.frame_count - 1, frames).round().astype(int)
    times = wanted / float(analysis.frame_rate)
    rotation = media.video.rotation % 360
    width = round(STRIP_HEIGHT_PX * analysis.width / analysis.height)
    tiles: list[np.ndarray] = []

    class _Tiles:
        picture_need = PictureNeed((Image("rgb24"),), only=frozenset(wanted.tolist()))

        def add_picture(self, index: int, time_s: float | None, images: tuple[np.ndarray, ...]) -> None:
            rgb = displayed(images[0], rotation)
            tile = cv2.resize(np.ascontiguousarray(rgb), (width, STRIP_HEIGHT_PX), interpolation=cv2.INTER_AREA)
            tiles.append(_draw_framing(tile[:, :, ::-1].copy(), analysis, framing, target_aspect, whole_picture,
                                       float(times[len(tiles)])))

    decode_source(analysis.path, [_Tiles()])
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), np.hstack(tiles)):
        raise MediaError(out, "cannot write the PNG")
    return out


def _draw_framing(tile: np.ndarray, analysis: ReframeAnalysis, framing: Framing | None, target_aspect: float,
                  whole_picture: bool, time_s: float) -> np.ndarray:
    height, width = tile.shape[:2]
    area = analysis.active
    left, top = area.left * width, area.top * height
    active_w, active_h = (area.right - area.left) * width, (area.bottom - area.top) * height
    cv2.rectangle(tile, (round(left), round(top)), (round(left + active_w) - 1, round(top + active_h) - 1),
                  (255, 128, 0), 1)
    sample = int(np.argmin(np.abs(analysis.sample_times_s - time_s))) if len(analysis.sample_times_s) else None
    if sample is not None:
        for box, weight in zip(analysis.subject_boxes[sample], analysis.subject_importance[sample], strict=True):
            if weight > 0:
                cv2.rectangle(tile, (round(box[0] * width), round(box[1] * height)),
                              (round(box[2] * width), round(box[3] * height)), (0, 220, 255), 1)
    window_w, window_h = window_size(analysis, target_aspect)
    if whole_picture or (framing is not None and framing.blur):
        window_w, window_h, cx, cy, colour = 1.0, 1.0, 0.5, 0.5, (0, 0, 255)
    elif framing is not None and framing.path is not None:
        centre = float(framing.path.centre_at(np.array([time_s]))[0])
        cx, cy = (centre, 0.5) if framing.path.axis == "x" else (0.5, centre)
        colour = (0, 255, 0)
    else:
        cx, cy, colour = 0.5, 0.5, (0, 255, 0)
    x0 = left + (cx - window_w / 2) * active_w
    y0 = top + (cy - window_h / 2) * active_h
    cv2.rectangle(tile, (round(x0), round(y0)), (round(x0 + window_w * active_w) - 1,
                                                  round(y0 + window_h * active_h) - 1), colour, 2)
    return tile
