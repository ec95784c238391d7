"""Crop first, then scale (pipeline.plan.crop_window): a 9:16 crop scales only the source around the
frame, and the picture lands where scaling the whole source and then cropping put it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np
import pytest

from pipeline.analysis.reframe import CameraShot, CropPath, Framing
from pipeline.media.probe import probe
from pipeline.media.runner import run_ffmpeg
from pipeline.plan.conform import PictureFormat, conform_video, place
from pipeline.plan.crop_window import axis_window
from pipeline.timeline.sequence import ShotSpan

RATE = 24
FRAMES = 48
SQUARE = 40
SQUARE_Y = 160


def _square_x(frame: int) -> int:
    """Left edge of the square in source pixels (overlay truncates its expression to even pixels)."""
    return int(60 + 200 * frame / RATE) & ~1


@pytest.fixture(scope="module")
def square_clip(clip_dir) -> Path:
    """640x360, 2 s: a white square sliding right over grey."""
    path = clip_dir / "crop-window-square.mp4"
    if not path.exists():
        run_ffmpeg(["-f", "lavfi", "-i", f"color=c=gray:s=640x360:r={RATE}:d={FRAMES / RATE}",
                    "-f", "lavfi", "-i", f"color=c=white:s={SQUARE}x{SQUARE}:r={RATE}",
                    "-filter_complex", f"[0][1]overlay=x='60+200*t':y={SQUARE_Y}:shortest=1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", str(path)])
    return path


def _render(clip: Path, target: PictureFormat, framing: Framing | None, out: Path) -> np.ndarray:
    """The conformed frames as a (frames, height, width) luma array."""
    span = ShotSpan(source_start_frame=0, frame_count=FRAMES, timeline_start_frame=0, audio_source_start_sample=0,
                    audio_timeline_start_sample=0, sample_count=0)
    picture = conform_video(ffmpeg.input(str(clip)).video, probe(clip).video, span, target, framing=framing)
    run_ffmpeg(ffmpeg.output(picture, str(out), f="rawvideo", pix_fmt="gray").get_args())
    return np.fromfile(out, np.uint8).reshape(-1, target.height, target.width)


def _left_edge(frame: np.ndarray) -> float:
    """Column where the square's left edge crosses half height (sub-pixel, from the luma ramp)."""
    row = frame[frame.shape[0] // 2 - 20 : frame.shape[0] // 2 + 20].mean(axis=0)
    level = (row.min() + row.max()) / 2
    first = int(np.flatnonzero(row > level)[0])
    return first - 1 + (level - row[first - 1]) / (row[first] - row[first - 1])


def test_a_9x16_crop_scales_only_a_window_of_the_source():
    across = axis_window(1280, 3414, 1080, 1166)
    assert across.source_size < 1280 / 3 and across.source_size % 2 == 0 and across.source_offset % 2 == 0
    assert across.source_offset + across.source_size <= 1280
    assert 0 <= across.offset <= across.scaled_size - 1080
    down = axis_window(720, 1920, 1920, 0)
    assert (down.source_size, down.source_offset, down.scaled_size, down.offset) == (720, 0, 1920, 0)


@pytest.mark.parametrize("smart", [False, True], ids=["centre", "smart-pan"])
def test_a_moving_square_lands_where_scale_then_crop_put_it(square_clip, tmp_path, smart):
    """Sampled frames of a 270x480 crop of the sliding square: its left edge within 1.5 px of the
    whole-picture geometry (source x times the scale factor, less the frame's offset)."""
    target = PictureFormat(270, 480, Fraction(RATE), "yuv420p", "crop")
    source = probe(square_clip).video
    placement = place(source, target)
    factor = placement.scaled_width / 640
    framing = None
    if smart:
        centres = tuple(np.linspace(0.35, 0.65, FRAMES))
        path = CropPath(Fraction(RATE), target.width / placement.scaled_width, 1.0, "x",
                        (CameraShot(0.0, FRAMES / RATE, "tracking", centres),))
        framing = Framing(path=path)
    frames = _render(square_clip, target, framing, tmp_path / "frames.gray")
    assert frames.shape[0] == FRAMES
    for number in (22, 30, 36):
        if smart:
            frame_x = float(np.clip(centres[number] * placement.scaled_width - target.width / 2,
                                    0, placement.scaled_width - target.width))
            frame_x = round(frame_x) & ~1  # crop rounds its offset, then to even pixels
        else:
            frame_x = placement.x
        expected = _square_x(number) * factor - frame_x - 0.5  # pixel centres: half a pixel in
        assert 4 < expected < target.width - SQUARE * factor - 4, "the square is in the frame"
        assert abs(_left_edge(frames[number]) - expected) <= 1.5, number
