"""Stutter: frames that repeat (or nearly repeat) their predecessor while the picture moves, found by
comparing each frame's change with its neighbours', and rebuilt by interpolating between the true
frames around them.

Generated clips stutter: the model hands out near-copies of a frame while the camera keeps moving,
and the next frame then jumps twice as far (Sora 2 samples often repeat a third of their frames).
A repeat is a frame (nearly) identical to its predecessor where the motion around it says it should
have moved: it is a near copy (:data:`~pipeline.analysis.stutter.COPY_PSNR_DB`) and its difference
from its predecessor is a small share (:data:`~pipeline.analysis.stutter.COPY_RATIO`) of what the
frame pairs either side of it differ by. The test is
mainly relative, so it holds for a talking head whose frames differ by half an 8-bit level as well
as for a fast pan: a still shot with grain differs about as much between every pair of frames and
has no repeats; slow motion that eases into a stop has no moving pair after it. Optical flow is no
help in telling them apart: on footage with a still background and a moving face, or under water,
the flow of most pixels is near zero for the moving pairs as well, and compensating it leaves as
much difference as it takes away. The test itself is :func:`pipeline.analysis.stutter.repeated_frames`,
which QC's stutter check uses too.

Rebuilding keeps every frame in its place (unlike ffmpeg's ``mpdecimate``, which drops them and
breaks constant frame rate): a run of ``k`` repeats between true frames A and B becomes the frames at
``1/(k+1) .. k/(k+1)`` of the way from A to B.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from pipeline.media.frames import Frame, RawFormat, decode_frames
from pipeline.analysis.stutter import psnr_db, repeated_frames
from pipeline.prestage.interpolate import FlowInterpolator
from pipeline.media.probe import MediaInfo, probe

ANALYSIS_WIDTH = 480
"""Stutter is measured on luma at most this many pixels wide."""
MOTION_PERCENTILE = 75
"""Flow length percentile reported as a pair's motion: high enough for an object crossing a quarter
of the picture, low enough to ignore the flat areas where flow wanders on grain."""


@dataclass(frozen=True)
class PairStats:
    """Motion between one frame and its predecessor."""

    motion_px: float
    """Flow length at :data:`MOTION_PERCENTILE`, in full-size pixels."""
    difference: float
    """Mean absolute 8-bit luma difference."""
    psnr_db: float
    """PSNR of the frame against its predecessor, dB
    (:data:`~pipeline.analysis.stutter.IDENTICAL_PSNR_DB` when identical)."""


@dataclass(frozen=True)
class StutterReport:
    """Repeated frames found in one clip."""

    path: Path
    """The clip measured."""
    frame_count: int
    """Frames analysed."""
    frame_rate: Fraction
    """Frames per second analysed at."""
    repeats: tuple[int, ...]
    """Indices (from 0) of the frames that repeat their predecessor while the picture moves."""
    motion_px: tuple[float, ...]
    """Motion from each frame's predecessor (full-size pixels); 0 for frame 0."""

    @property
    def share(self) -> float:
        """Share of the frames that are repeats, 0..1."""
        return len(self.repeats) / self.frame_count if self.frame_count else 0.0

    def to_dict(self) -> dict:
        """A JSON-ready summary."""
        return {
            "path": str(self.path),
            "frame_count": self.frame_count,
            "frame_rate": f"{self.frame_rate.numerator}/{self.frame_rate.denominator}",
            "repeats": list(self.repeats),
            "repeat_share": round(self.share, 4),
            "mean_motion_px": round(float(np.mean(self.motion_px[1:])) if self.frame_count > 1 else 0.0, 3),
        }


def measure_pairs(lumas: Iterable[np.ndarray], scale: float) -> list[PairStats | None]:
    """Motion and difference of every frame against its predecessor; None for the first frame.

    Args:
        lumas: 8-bit luma frames, all one size.
        scale: Full-size pixels per analysis pixel.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    stats: list[PairStats | None] = []
    previous = None
    for luma in lumas:
        if previous is None:
            stats.append(None)
        else:
            length = np.linalg.norm(dis.calc(previous, luma, None), axis=2)
            difference = cv2.absdiff(previous, luma)
            stats.append(PairStats(
                motion_px=float(np.percentile(length, MOTION_PERCENTILE)) * scale,
                difference=float(difference.mean()),
                psnr_db=psnr_db(difference),
            ))
        previous = luma
    return stats


def detect_stutter(source: Path, media: MediaInfo | None = None) -> StutterReport:
    """Find the frames of ``source`` that repeat their predecessor while the picture moves.

    Raises:
        MediaError: the file cannot be probed.
        FFmpegError: it cannot be decoded.
    """
    media = media or probe(source)
    video = media.video
    width = min(ANALYSIS_WIDTH, video.display_width)
    height = max(2, round(video.display_height * width / video.display_width))
    raw = RawFormat("gray", width, height)
    lumas = (frame[0] for frame in decode_frames(source, raw, frame_rate=video.planning_rate))
    stats = measure_pairs(lumas, video.display_width / width)
    return StutterReport(
        path=source,
        frame_count=len(stats),
        frame_rate=video.planning_rate,
        repeats=repeated_frames([0.0 if pair is None else pair.difference for pair in stats],
                                [0.0 if pair is None else pair.psnr_db for pair in stats]),
        motion_px=tuple(0.0 if pair is None else round(pair.motion_px, 3) for pair in stats),
    )


def destuttered(frames: Iterable[Frame], repeats: Iterable[int], interpolator: FlowInterpolator) -> Iterator[Frame]:
    """``frames`` with each run of repeats replaced by frames interpolated between its true neighbours.

    Frame count and order are kept. Only the last true frame is held while a run is skipped over.
    Repeats at the very end (no true frame after them) keep the last true frame.
    """
    repeated = frozenset(repeats)
    last_true: Frame | None = None
    pending = 0
    for index, frame in enumerate(frames):
        if index in repeated and last_true is not None:
            pending += 1
            continue
        if pending:
            motion = interpolator.measure(interpolator.luma(last_true), interpolator.luma(frame))
            for step in range(1, pending + 1):
                yield interpolator.between(last_true, frame, motion, step / (pending + 1))
            pending = 0
        yield frame
        last_true = frame
    for _ in range(pending):
        yield last_true
