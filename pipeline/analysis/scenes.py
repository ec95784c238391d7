"""Shot boundaries inside a clip: where one shot cuts to the next.

Every frame is reduced to a thumbnail of block means (48 px wide) straight from its luma plane. A
cut is a frame whose thumbnail differs from the previous one far more than its neighbours differ
from theirs, and more than :data:`CUT_FLOOR` levels in absolute terms; a flash (one or two changed
frames, then the old picture again) is not a cut. Steady motion, even fast, changes a thumbnail
about equally from frame to frame and so never stands out.

:class:`CutDetector` takes frames one at a time, so the reframing analysis finds cuts in the same
decode pass (:mod:`pipeline.media.source_decode`) that feeds everything else; :func:`detect_cuts` is
the stand-alone path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.media.source_decode import Image, PictureNeed, decode_source

THUMBNAIL_WIDTH_PX = 48
"""Width of the block-mean thumbnail frames are compared by."""
CUT_FLOOR = 12.0
"""Smallest mean absolute thumbnail change, in 8-bit levels, that can be a cut."""
CUT_FACTOR = 3.0
"""A cut changes the thumbnail this many times more than the median change around it."""
NEIGHBOURHOOD_FRAMES = 12
"""Frames either side whose changes form the local baseline ..."""
HELD_CHANGE = 0.5
"""... leaving out frames that change by no more than this (8-bit levels): repeats of the frame
before, as in an 8 fps generator clip conformed to 25 fps, where every new frame would otherwise
stand out from a baseline of zeros."""
FLASH_RETURN_FRAMES = 3
"""A change that returns to the earlier picture this many frames later is a flash ..."""
FLASH_RETURN_SHARE = 0.35
"""... to within this share of the change itself (motion meanwhile moves it on a little)."""
MIN_SHOT_FRAMES = 6
"""Cuts closer together than this are merged (a stutter of changes is one edit)."""

def thumbnail(luma: np.ndarray) -> np.ndarray:
    """Block means of ``luma``, float32, :data:`THUMBNAIL_WIDTH_PX` wide."""
    height = max(4, round(THUMBNAIL_WIDTH_PX * luma.shape[0] / luma.shape[1]))
    # Skipping rows and columns first keeps the area average cheap; each block still averages
    # many source pixels, so noise and compression do not register.
    step = max(1, luma.shape[1] // (4 * THUMBNAIL_WIDTH_PX))
    return cv2.resize(luma[::step, ::step], (THUMBNAIL_WIDTH_PX, height), interpolation=cv2.INTER_AREA).astype(
        np.float32
    )


@dataclass(frozen=True)
class ShotCuts:
    """Where a clip cuts, in frame numbers of the clip as decoded."""

    frame_count: int
    """Frames in the clip."""
    cut_frames: tuple[int, ...]
    """First frame of each shot after the first, ascending."""

    @property
    def shots(self) -> tuple[tuple[int, int], ...]:
        """Each shot as (first frame, end frame exclusive)."""
        edges = (0, *self.cut_frames, self.frame_count)
        return tuple(zip(edges[:-1], edges[1:]))


class CutDetector:
    """Finds cuts in frames fed one at a time (by a source pass: every frame's luma); keeps only a
    few thumbnails and one number per frame."""

    picture_need = PictureNeed((Image("luma"),))
    """Every frame's luma plane."""

    def __init__(self) -> None:
        self._changes: list[float] = []
        self._returns: list[list[float]] = []
        self._recent: list[np.ndarray] = []

    def add_picture(self, index: int, time_s: float | None, images: tuple[np.ndarray, ...]) -> None:
        """Feed the next frame's luma plane."""
        self.add(thumbnail(images[0]))

    def add(self, small: np.ndarray) -> None:
        """Feed the next frame's :func:`thumbnail`."""
        if self._recent:
            self._changes.append(float(np.abs(small - self._recent[-1]).mean()))
        else:
            self._changes.append(0.0)
        # This frame against the frames 2, 3 ... FLASH_RETURN_FRAMES + 1 back: whether a change a
        # few frames ago came back to the picture before it.
        self._returns.append([float(np.abs(small - earlier).mean()) for earlier in reversed(self._recent[:-1])])
        self._recent = [*self._recent[-FLASH_RETURN_FRAMES:], small]

    def result(self) -> ShotCuts:
        """The cuts found in every frame fed so far."""
        changes = np.array(self._changes)
        count = len(changes)
        cuts: list[int] = []
        for frame in range(1, count):
            if changes[frame] < CUT_FLOOR:
                continue
            around = np.concatenate([
                changes[max(1, frame - NEIGHBOURHOOD_FRAMES): frame],
                changes[frame + 1: frame + 1 + NEIGHBOURHOOD_FRAMES],
            ])
            # Held frames (a low-rate clip conformed by repeating frames) say nothing of the motion.
            moving = around[around > HELD_CHANGE]
            baseline = float(np.median(moving)) if len(moving) else 0.0
            if changes[frame] < CUT_FACTOR * baseline:
                continue
            came_back = max(CUT_FLOOR / 2, FLASH_RETURN_SHARE * changes[frame])
            if any(value < came_back for value in self._returns[frame]):
                continue  # back to the picture of a few frames ago: the end of a flash
            # Frame ``frame + k`` against ``frame - 1``, k + 1 frames back.
            back_to_before = [
                self._returns[frame + k][k - 1]
                for k in range(1, FLASH_RETURN_FRAMES + 1)
                if frame + k < count and len(self._returns[frame + k]) >= k
            ]
            if any(value < came_back for value in back_to_before):
                continue  # the picture came back: a flash
            if cuts and frame - cuts[-1] < MIN_SHOT_FRAMES:
                if changes[frame] > changes[cuts[-1]]:
                    cuts[-1] = frame
                continue
            cuts.append(frame)
        return ShotCuts(frame_count=count, cut_frames=tuple(cuts))


def detect_cuts(path: Path) -> ShotCuts:
    """Decode the first video stream of ``path`` and find its cuts.

    Raises:
        MediaError: the video cannot be decoded.
    """
    detector = CutDetector()
    decode_source(path, [detector])
    return detector.result()
