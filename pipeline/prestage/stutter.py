"""Stutter: frames that repeat (or nearly repeat) their predecessor while the picture moves, found by
motion analysis, and rebuilt by interpolating between the true frames around them.

Generated clips stutter: the model hands out near-copies of a frame while the camera keeps moving,
and the next frame then jumps twice as far. Telling such a copy from a still shot needs motion, not a
pixel threshold: a still shot with grain differs little from frame to frame and has no motion either
side; a stutter frame sits *between* frames that move. A pair of frames moves when motion
compensation (DIS optical flow) takes most of their difference away. A frame repeats its predecessor
when that pair does not move, the pairs before and after it do, and its difference from the
predecessor is no larger than what motion compensation leaves of theirs (nothing changed but grain).

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
from pipeline.prestage.interpolate import FlowInterpolator
from pipeline.media.probe import MediaInfo, probe

ANALYSIS_WIDTH = 480
"""Stutter is measured on luma at most this many pixels wide."""
MIN_MOTION_PX = 1.0
"""Motion (flow length at :data:`MOTION_PERCENTILE`, full-size pixels per frame) a pair must reach
to count as moving: below it a repeat is invisible."""
MOTION_PERCENTILE = 75
"""Flow length percentile taken as a pair's motion: high enough for an object crossing a quarter of
the picture, low enough to ignore the flat areas where flow wanders on grain."""
MOVING_DIFFERENCE_RATIO = 2.0
"""A pair moves when its plain difference is over this many times its motion-compensated one."""
RESIDUAL_FACTOR = 1.5
"""A repeat differs from its predecessor by at most this many times the motion-compensated
difference of the moving pairs around it (plus one 8-bit level): nothing changed but grain."""
MAX_RUN = 6
"""Longest run of repeats rebuilt; a longer hold is a freeze, left as it is."""


@dataclass(frozen=True)
class PairStats:
    """Motion between one frame and its predecessor."""

    motion_px: float
    """Flow length at :data:`MOTION_PERCENTILE`, in full-size pixels."""
    difference: float
    """Mean absolute 8-bit luma difference, without motion compensation."""
    residual: float
    """Mean absolute 8-bit luma difference after motion compensation."""


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
    """Motion statistics of every frame against its predecessor; None for the first frame.

    Args:
        lumas: 8-bit luma frames, all one size.
        scale: Full-size pixels per analysis pixel.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    stats: list[PairStats | None] = []
    previous = None
    grid = None
    for luma in lumas:
        if previous is None:
            stats.append(None)
            height, width = luma.shape
            grid = np.mgrid[0:height, 0:width].astype(np.float32)
        else:
            flow = dis.calc(previous, luma, None)
            length = np.linalg.norm(flow, axis=2)
            warped = cv2.remap(luma, grid[1] + flow[..., 0], grid[0] + flow[..., 1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
            stats.append(PairStats(
                motion_px=float(np.percentile(length, MOTION_PERCENTILE)) * scale,
                difference=float(cv2.absdiff(previous, luma).mean()),
                residual=float(cv2.absdiff(previous, warped).mean()),
            ))
        previous = luma
    return stats


def find_repeats(stats: list[PairStats | None]) -> tuple[int, ...]:
    """Indices of frames that repeat their predecessor in a moving picture (see the module docs)."""
    repeats: list[int] = []
    index = 2
    while index < len(stats):
        before = stats[index - 1]
        if not _moves(before) or _moves(stats[index]):
            index += 1
            continue
        end = index
        while end + 1 < len(stats) and end + 1 - index < MAX_RUN and not _moves(stats[end + 1]):
            end += 1
        if end + 1 < len(stats) and _is_repeat_run(before, stats[index:end + 1], stats[end + 1]):
            repeats.extend(range(index, end + 1))
            index = end + 2
        else:
            index += 1
    return tuple(repeats)


def _moves(pair: PairStats) -> bool:
    """Motion explains the pair's difference: compensating it takes most of the difference away."""
    return pair.motion_px >= MIN_MOTION_PX and pair.difference > MOVING_DIFFERENCE_RATIO * pair.residual + 1.0


def _is_repeat_run(before: PairStats, run: list[PairStats], after: PairStats) -> bool:
    if not _moves(after):
        return False  # the picture stops moving: a hold, not a stutter
    difference_limit = RESIDUAL_FACTOR * max(before.residual, after.residual) + 1.0
    return all(pair.difference <= difference_limit for pair in run)


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
        repeats=find_repeats(stats),
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
