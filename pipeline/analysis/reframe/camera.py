"""The camera over a source (:func:`camera_path`, per source and crop size, pure arithmetic).

Per shot, the band of crop positions that keep the chosen subjects inside with a margin. When one
position fits the whole shot the camera is stationary (no drift at all). Otherwise the path is the
solution of a small quadratic programme: close to the subjects' centre, with penalised velocity,
acceleration and jerk, inside the band and under a pan-speed limit (ADMM, dense, per shot).
Subjects that cannot all fit: the most important one is followed, or, with ``smart_fallback:
fit_blur``, the whole source is shown as ``fit_blur`` when that happens for most of its samples.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

from pipeline.analysis.reframe.analysis import ReframeAnalysis

FIXED_WINDOW_SHARE = 0.98
"""A crop covering at least this share of the axis it could move along stays centred: panning over
the last 2 % gains nothing visible and would only wobble (e.g. a 202x360 picture cut to 9:16)."""
SUBJECT_MARGIN = 0.03
"""Space kept between a subject and the crop's edge, as a share of the active picture's width/height."""
MAX_PAN_SPEED = 0.5
"""Fastest camera pan, in active-picture widths (heights) per second."""
TRACK_ATTRACTION = 1.0
"""Weight pulling the camera towards the subjects' centre."""
TRACK_VELOCITY = 0.02
"""Weight of squared pan velocity (per second)."""
TRACK_ACCELERATION = 0.02
"""Weight of squared pan acceleration (per second squared)."""
TRACK_JERK = 0.002
"""Weight of squared pan jerk (per second cubed)."""
TRACK_MAX_POINTS = 600
"""A tracked shot is solved on at most this many points, interpolated between."""
ADMM_ITERATIONS = 400
"""Iterations of the constrained path solver."""
ADMM_STEP = 24.0
"""The solver's penalty parameter, in units of the attraction weight per solved point."""


@dataclass(frozen=True)
class CameraShot:
    """The camera over one shot."""

    start_s: float
    """Shot start, seconds from the source's first frame."""
    end_s: float
    """Shot end (exclusive), seconds."""
    mode: Literal["stationary", "tracking", "fixed"]
    """``stationary``: one position holds every subject; ``tracking``: a smoothed pan; ``fixed``: the
    crop covers the axis (nearly) whole (about the same aspect), centred."""
    centres: tuple[float, ...]
    """Crop centre along the moving axis at each frame of the shot (source rate), shares of the
    active picture."""


@dataclass(frozen=True)
class CropPath:
    """Where a crop of a fixed size sits over a source, frame by frame, shot by shot."""

    frame_rate: Fraction
    """Rate the centres are given at (the source's planning rate), frames per second."""
    window_width: float
    """Crop width as a share of the active picture's width."""
    window_height: float
    """Crop height as a share of the active picture's height."""
    axis: Literal["x", "y"]
    """The axis the crop moves along (the other is covered whole)."""
    shots: tuple[CameraShot, ...]
    """The camera per shot, in order."""
    fit_blur: bool = False
    """The subjects did not fit for most of the source: show it whole over a blurred fill instead."""

    def centre_at(self, times_s: np.ndarray) -> np.ndarray:
        """Crop centre along :attr:`axis` at each of ``times_s`` (seconds from the first frame)."""
        starts = np.array([shot.start_s for shot in self.shots])
        centres = np.empty(len(times_s))
        for index, time in enumerate(times_s):
            shot = self.shots[max(0, int(np.searchsorted(starts, time + 1e-9, side="right")) - 1)]
            position = (time - shot.start_s) * float(self.frame_rate)
            centres[index] = np.interp(position, np.arange(len(shot.centres)), shot.centres)
        return centres


def window_size(analysis: ReframeAnalysis, target_aspect: float) -> tuple[float, float]:
    """Crop size (shares of the active picture's width, height) giving ``target_aspect`` (w/h)."""
    ratio = target_aspect / analysis.active_aspect
    return (ratio, 1.0) if ratio <= 1 else (1.0, 1.0 / ratio)


@functools.lru_cache(maxsize=64)
def camera_path(analysis: ReframeAnalysis, target_aspect: float, fallback: str = "most_important") -> CropPath:
    """The camera path for a crop of ``target_aspect`` (width/height) over ``analysis``'s source."""
    window_w, window_h = window_size(analysis, target_aspect)
    axis: Literal["x", "y"] = "x" if window_w < 1 else "y"
    window = window_w if axis == "x" else window_h
    boxes = _active_boxes(analysis, axis)
    importance = analysis.subject_importance
    rate = float(analysis.frame_rate)
    shots, crowded_samples = [], 0
    for start_s, end_s in analysis.shot_bounds_s:
        frames = max(1, round((end_s - start_s) * rate))
        if window >= FIXED_WINDOW_SHARE:
            shots.append(CameraShot(start_s, end_s, "fixed", (0.5,) * frames))
            continue
        inside = (analysis.sample_times_s >= start_s - 1e-9) & (analysis.sample_times_s < end_s - 1e-9)
        spans, crowded = _subject_spans(boxes[inside], importance[inside], window)
        crowded_samples += int(crowded.sum())
        shots.append(_shot_camera(start_s, end_s, frames, analysis.sample_times_s[inside] - start_s, spans, window, rate))
    too_crowded = fallback == "fit_blur" and crowded_samples > 0.5 * max(1, len(analysis.sample_times_s))
    return CropPath(analysis.frame_rate, window_w, window_h, axis, tuple(shots), fit_blur=too_crowded)


def _active_boxes(analysis: ReframeAnalysis, axis: str) -> np.ndarray:
    """Subject extents along ``axis`` as shares of the active picture, shape (samples, MAX_SUBJECTS, 2)."""
    area = analysis.active
    low, high = (area.left, area.right) if axis == "x" else (area.top, area.bottom)
    columns = [0, 2] if axis == "x" else [1, 3]
    return np.clip((analysis.subject_boxes[:, :, columns] - low) / (high - low), 0.0, 1.0)


def _subject_spans(boxes: np.ndarray, importance: np.ndarray, window: float) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, the extent (start, end) of the subjects followed (NaN: none), and whether
    important subjects had to be left out.

    The most important subject is always followed; others join while all fit with margins.
    """
    spans = np.full((len(boxes), 2), np.nan)
    crowded = np.zeros(len(boxes), bool)
    room = window - 2 * SUBJECT_MARGIN
    for sample, (sample_boxes, weights) in enumerate(zip(boxes, importance, strict=True)):
        if weights[0] <= 0:
            continue
        start, end = sample_boxes[0]
        for extent, weight in zip(sample_boxes[1:], weights[1:], strict=True):
            if weight <= 0:
                break
            joined = (min(start, extent[0]), max(end, extent[1]))
            if joined[1] - joined[0] <= room:
                start, end = joined
            elif weight >= 0.5 * weights[0]:
                crowded[sample] = True
        spans[sample] = (start, end)
    return spans, crowded


def _shot_camera(start_s: float, end_s: float, frames: int, sample_times: np.ndarray,
                 spans: np.ndarray, window: float, rate: float) -> CameraShot:
    half = window / 2
    known = ~np.isnan(spans[:, 0])
    if not known.any():
        return CameraShot(start_s, end_s, "stationary", (0.5,) * frames)
    spans = _median_filtered(spans[known])
    times = sample_times[known]
    # Centres that keep the followed subjects inside with margins: [low, high] per sample.
    low = np.clip(spans[:, 1] + SUBJECT_MARGIN - half, half, 1 - half)
    high = np.clip(spans[:, 0] - SUBJECT_MARGIN + half, half, 1 - half)
    desired = np.clip(spans.mean(axis=1), half, 1 - half)
    # A subject wider than the crop cannot be held whole: aim at its centre without a constraint.
    too_wide = low > high
    low[too_wide], high[too_wide] = half, 1 - half
    if low.max() <= high.min():
        centre = float(np.clip(np.median(desired), low.max(), high.min()))
        return CameraShot(start_s, end_s, "stationary", (centre,) * frames)
    frame_times = np.arange(frames) / rate
    step = max(1, int(np.ceil(frames / TRACK_MAX_POINTS)))
    solve_times = frame_times[::step]
    if solve_times[-1] != frame_times[-1]:
        solve_times = np.append(solve_times, frame_times[-1])
    path = _smooth_path(
        np.interp(solve_times, times, low), np.interp(solve_times, times, high),
        np.interp(solve_times, times, desired), rate / step, half,
    )
    centres = np.interp(frame_times, solve_times, path)
    return CameraShot(start_s, end_s, "tracking", tuple(float(value) for value in centres))


def _median_filtered(spans: np.ndarray) -> np.ndarray:
    """Each column's running median over three samples: one-sample detection flicker is dropped."""
    if len(spans) < 3:
        return spans
    padded = np.concatenate([spans[:1], spans, spans[-1:]])
    windows = np.stack([padded[:-2], padded[1:-1], padded[2:]])
    return np.median(windows, axis=0)


def _smooth_path(low: np.ndarray, high: np.ndarray, desired: np.ndarray, rate: float, half: float) -> np.ndarray:
    """The smoothest path near ``desired`` inside [low, high] with |speed| <= MAX_PAN_SPEED.

    Minimises attraction * |x - desired|^2 + velocity, acceleration and jerk penalties (each a
    squared derivative in shares per second^k, integrated over time) subject to the band and the
    speed limit, by ADMM on ``A x = z`` with ``A = [I; D1]`` and ``z`` in the box constraints.
    """
    count = len(low)
    if count < 4:
        return np.clip(desired, low, high)
    identity = np.eye(count)
    d1 = np.diff(identity, 1, axis=0)
    d2 = np.diff(identity, 2, axis=0)
    d3 = np.diff(identity, 3, axis=0)
    dt = 1.0 / rate
    quadratic = (
        TRACK_ATTRACTION * identity
        + TRACK_VELOCITY * d1.T @ d1 / dt**2
        + TRACK_ACCELERATION * d2.T @ d2 / dt**4
        + TRACK_JERK * d3.T @ d3 / dt**6
    ) * dt
    linear = TRACK_ATTRACTION * desired * dt
    constraint = np.vstack([identity, d1])
    lower = np.concatenate([low, np.full(count - 1, -MAX_PAN_SPEED * dt)])
    upper = np.concatenate([high, np.full(count - 1, MAX_PAN_SPEED * dt)])
    # The step size is set against the attraction term, not the (far larger) smoothness terms:
    # tied to those, 400 iterations left the path tens of output pixels from the optimum, wobbling
    # in speed; at this value they land within a tenth of a pixel of it.
    rho = ADMM_STEP * TRACK_ATTRACTION * dt
    solve = np.linalg.inv(quadratic + rho * constraint.T @ constraint)
    z = np.clip(constraint @ np.clip(desired, low, high), lower, upper)
    u = np.zeros_like(z)
    x = desired
    for _ in range(ADMM_ITERATIONS):
        x = solve @ (linear + rho * constraint.T @ (z - u))
        projected = constraint @ x
        z = np.clip(projected + u, lower, upper)
        u += projected - z
    return np.clip(x, np.minimum(low, high), np.maximum(low, high)).clip(half, 1 - half)

