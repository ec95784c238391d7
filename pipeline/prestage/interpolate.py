"""Optical-flow frame interpolation: new frames between two source frames, with no morphing across cuts.

For each pair of neighbouring source frames, DIS optical flow (OpenCV) is measured both ways on
8-bit luma at up to :data:`ANALYSIS_MAX_WIDTH` pixels wide. A frame at fraction ``t`` between them
is built by warping both frames to ``t`` and mixing them with weights that fall where a pixel is
occluded: where the forward and backward flow disagree (the pixel has no match in the other frame)
or where the warp samples from outside the frame (content entering at an edge). A pair whose
motion-compensated difference stays large is a scene cut: the output takes the nearer frame
instead of blending two shots.

The approximation of the flow from the new frame back to each source frame is the quadratic one
of Jiang et al. (Super SloMo, 2018), computed from the two measured flows without a network.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from pipeline.media.frames import Frame, RawFormat, luma8
from pipeline.model.timebase import round_half_up

ANALYSIS_MAX_WIDTH = 960
"""Flow is measured at half size or at most this wide (in pixels), whichever is smaller..."""
ANALYSIS_MIN_WIDTH = 640
"""...but never narrower than this (or the frame itself): small pictures keep their detail."""
OCCLUSION_TOLERANCE_PX = 1.0
"""Forward-backward flow disagreement (analysis pixels) at which a pixel's weight halves."""
MIN_WEIGHT = 1e-3
"""Floor on either side's weight, so every output pixel has a defined value."""
CUT_RESIDUAL = 24.0
"""Mean absolute 8-bit luma difference left after motion compensation above which a pair is a cut."""
CUT_INCONSISTENT_SHARE = 0.5
"""Share of pixels whose forward and backward flows disagree by over 2 px, above which a pair with a
large residual is a cut (fast motion leaves residual but consistent flow)."""


@dataclass(frozen=True)
class PairMotion:
    """Motion between two neighbouring frames A and B, at analysis size."""

    forward: np.ndarray
    """Flow A -> B, float32 (height, width, 2), in analysis pixels."""
    backward: np.ndarray
    """Flow B -> A, float32 (height, width, 2), in analysis pixels."""
    forward_error: np.ndarray
    """For each pixel of A, how far the round trip A -> B -> A misses, float32 (height, width)."""
    backward_error: np.ndarray
    """For each pixel of B, how far B -> A -> B misses, float32 (height, width)."""
    residual: float
    """Mean absolute 8-bit luma difference between A and B warped onto A."""
    inconsistent_share: float
    """Share of A's pixels whose round trip misses by more than 2 analysis pixels."""

    @property
    def is_cut(self) -> bool:
        """True when the two frames belong to different shots."""
        return self.residual > CUT_RESIDUAL and self.inconsistent_share > CUT_INCONSISTENT_SHARE


def analysis_size(width: int, height: int) -> tuple[int, int]:
    """Size (width, height) at which flow is measured for a ``width`` x ``height`` picture."""
    analysis_width = min(width, max(ANALYSIS_MIN_WIDTH, width // 2), ANALYSIS_MAX_WIDTH)
    return analysis_width, max(2, round(height * analysis_width / width))


class FlowInterpolator:
    """Builds in-between frames of one stream (one raster, one pixel layout).

    Args:
        raw: Layout of the frames it is given.
        preset: OpenCV DIS preset (``cv2.DISOPTICAL_FLOW_PRESET_*``).
    """

    def __init__(self, raw: RawFormat, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM):
        self.raw = raw
        self.analysis_width, self.analysis_height = analysis_size(raw.width, raw.height)
        self._dis = cv2.DISOpticalFlow_create(preset)
        self._grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def luma(self, frame: Frame) -> np.ndarray:
        """The frame's 8-bit luma at analysis size."""
        grey = luma8(frame, self.raw)
        if grey.shape != (self.analysis_height, self.analysis_width):
            grey = cv2.resize(grey, (self.analysis_width, self.analysis_height), interpolation=cv2.INTER_AREA)
        return grey

    def measure(self, luma_a: np.ndarray, luma_b: np.ndarray) -> PairMotion:
        """Flow both ways between two analysis-size lumas, their consistency, and the cut test."""
        forward = self._dis.calc(luma_a, luma_b, None)
        backward = self._dis.calc(luma_b, luma_a, None)
        forward_error = np.linalg.norm(forward + self._sample(backward, forward), axis=2)
        backward_error = np.linalg.norm(backward + self._sample(forward, backward), axis=2)
        warped_b = self._sample(luma_b, forward)
        residual = float(cv2.absdiff(luma_a, warped_b).mean())
        inconsistent = float((forward_error > 2.0).mean())
        return PairMotion(forward, backward, forward_error, backward_error, residual, inconsistent)

    def between(self, frame_a: Frame, frame_b: Frame, motion: PairMotion, t: float) -> Frame:
        """The frame at fraction ``t`` (0 < t < 1) of the way from A to B.

        At a cut, the nearer of the two frames, unchanged.
        """
        if motion.is_cut:
            return frame_a if t < 0.5 else frame_b
        f01, f10 = motion.forward, motion.backward
        # Flow from the new frame back to A and on to B (quadratic motion approximation).
        flow_t0 = -(1 - t) * t * f01 + t * t * f10
        flow_t1 = (1 - t) * (1 - t) * f01 - t * (1 - t) * f10
        visible_a = self._visibility(motion.forward_error, flow_t0)
        visible_b = self._visibility(motion.backward_error, flow_t1)
        weight_a = (1 - t) * (visible_a + MIN_WEIGHT)
        weight_b = t * (visible_b + MIN_WEIGHT)
        share_a = weight_a / (weight_a + weight_b)
        return tuple(
            self._mix_plane(plane_a, plane_b, flow_t0, flow_t1, share_a)
            for plane_a, plane_b in zip(frame_a, frame_b, strict=True)
        )

    def _visibility(self, round_trip_error: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """How surely each new pixel's source sample is visible: consistent flow, inside the frame."""
        error = self._sample(round_trip_error, flow)
        visible = 1.0 / (1.0 + np.square(error / OCCLUSION_TOLERANCE_PX))
        grid_x, grid_y = self._grid(self.analysis_height, self.analysis_width)
        x, y = grid_x + flow[..., 0], grid_y + flow[..., 1]
        inside = (x >= 0) & (x <= self.analysis_width - 1) & (y >= 0) & (y <= self.analysis_height - 1)
        return visible * inside

    def _mix_plane(self, plane_a, plane_b, flow_t0, flow_t1, share_a) -> np.ndarray:
        height, width = plane_a.shape[:2]
        warped_a = self._warp(plane_a, flow_t0)
        warped_b = self._warp(plane_b, flow_t1)
        share = share_a
        if share.shape != (height, width):
            share = cv2.resize(share, (width, height), interpolation=cv2.INTER_LINEAR)
        if plane_a.dtype == np.uint8:
            share = share.astype(np.float32)
            return cv2.blendLinear(warped_a, warped_b, share, 1.0 - share)
        if plane_a.ndim == 3:
            share = share[..., None]
        mixed = warped_b + share * (warped_a.astype(np.float32) - warped_b)
        return np.clip(np.rint(mixed), 0, np.iinfo(plane_a.dtype).max).astype(plane_a.dtype)

    def _warp(self, plane: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """``plane`` sampled at each pixel plus ``flow`` (analysis-size flow, rescaled to the plane)."""
        height, width = plane.shape[:2]
        if flow.shape[:2] != (height, width):
            flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
            flow = flow * np.array([width / self.analysis_width, height / self.analysis_height], np.float32)
        grid_x, grid_y = self._grid(height, width)
        source = plane if plane.dtype != np.uint16 else plane.astype(np.float32)
        return cv2.remap(source, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def _sample(self, field: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """An analysis-size field sampled at each pixel plus ``flow``."""
        grid_x, grid_y = self._grid(*flow.shape[:2])
        return cv2.remap(field, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def _grid(self, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        if (height, width) not in self._grids:
            grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
            self._grids[(height, width)] = (grid_x, grid_y)
        return self._grids[(height, width)]


def output_frame_count(source_frames: int, source_rate: Fraction, target_rate: Fraction) -> int:
    """Frames at ``target_rate`` that cover the same duration as ``source_frames`` at ``source_rate``."""
    return max(1, round_half_up(Fraction(source_frames) * target_rate / source_rate))


def convert_rate(
    frames: Iterable[Frame],
    interpolator: FlowInterpolator,
    source_rate: Fraction,
    target_rate: Fraction,
    source_frames: int,
) -> Iterator[Frame]:
    """``frames`` (at ``source_rate``) re-timed to ``target_rate``, keeping the duration.

    Output frame ``k`` shows the instant ``k / target_rate``: a source frame where one falls exactly
    on it, else a frame interpolated between the two source frames around it (the nearer one at a
    cut). Only two source frames and one pair's flow are held at a time. Past the last source frame
    (a rate that does not divide the duration) the last frame is held.
    """
    source_iter = iter(frames)
    frame_a = next(source_iter, None)
    if frame_a is None:
        return
    frame_b = next(source_iter, None)
    index_a = 0
    luma_a = luma_b = None
    motion: PairMotion | None = None
    for k in range(output_frame_count(source_frames, source_rate, target_rate)):
        position = Fraction(k) * source_rate / target_rate
        whole = math.floor(position)
        while whole > index_a and frame_b is not None:
            frame_a, frame_b, index_a = frame_b, next(source_iter, None), index_a + 1
            luma_a, luma_b, motion = luma_b, None, None
        t = position - whole
        if t == 0 or frame_b is None or whole > index_a:
            yield frame_a
            continue
        if motion is None:
            luma_a = luma_a if luma_a is not None else interpolator.luma(frame_a)
            luma_b = interpolator.luma(frame_b)
            motion = interpolator.measure(luma_a, luma_b)
        yield interpolator.between(frame_a, frame_b, motion, float(t))
