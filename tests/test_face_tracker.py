"""The sync check's face tracker (:func:`pipeline.analysis.lipsync.follow_mouths`) searches a
picture without a face only every ``FIRST_SEARCH_EVERY_FRAMES`` frames, and a face that appears
later is still followed, every frame, from the first search after it appears, its mouth as the
tracker fed the face from its first frame finds it."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.analysis.lipsync import FIRST_SEARCH_EVERY_FRAMES, follow_mouths, landmark_model_path
from pipeline.analysis.reframe import FaceDetector

DEVCLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "devclips"
TALKING = "speech_face_2.mp4"
"""Real interview footage, 844x844 at 25 fps, one face in every frame."""


@pytest.fixture
def searches(monkeypatch) -> list[tuple[int, ...]]:
    """The size of each picture the face detector is run on, in order (one run per searched frame)."""
    if landmark_model_path() is None:
        pytest.skip("face models not installed")
    runs: list[tuple[int, ...]] = []
    detect = FaceDetector.detect

    def counted(self, rgb):
        runs.append(rgb.shape)
        return detect(self, rgb)

    monkeypatch.setattr(FaceDetector, "detect", counted)
    return runs


def _frames(pictures: list[np.ndarray], rate: int) -> list[av.VideoFrame]:
    """RGB pictures as decoded frames shown one after another at ``rate`` frames a second."""
    frames = []
    for number, picture in enumerate(pictures):
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts, frame.time_base = number, Fraction(1, rate)
        frames.append(frame)
    return frames


def test_a_picture_without_a_face_is_searched_every_first_search_interval(searches):
    noise = np.random.default_rng(7).integers(0, 256, (72, 180, 320, 3), dtype=np.uint8)
    mouths = follow_mouths(_frames(list(noise), 24))
    assert mouths.openings.shape == (0, 72) and len(mouths.frame_times_s) == 72
    # 3 s at 24 fps: frames 0, 24 and 48 searched, where a search every twelfth frame made 6.
    assert FIRST_SEARCH_EVERY_FRAMES == 24 and len(searches) == math.ceil(72 / FIRST_SEARCH_EVERY_FRAMES) == 3


def test_a_face_appearing_after_a_second_is_followed_from_the_next_search(searches):
    path = DEVCLIPS / TALKING
    if not path.exists():
        pytest.skip(f"development clips not present ({DEVCLIPS})")
    with av.open(str(path)) as container:
        talking = [frame.to_ndarray(format="rgb24") for frame, _ in zip(container.decode(video=0), range(60))]
    appears, rate = 25, 25
    grey = np.full_like(talking[0], 128)
    mouths = follow_mouths(_frames([grey] * appears + talking, rate))
    alone = follow_mouths(_frames(talking, rate))

    # Searched at frames 0 and 24 (no face yet) and 48: the latest a face is picked up, 23 frames
    # after it appears (where a search every twelfth frame found it at 36).
    found = 48
    assert found - appears == FIRST_SEARCH_EVERY_FRAMES - 1
    assert mouths.openings.shape == (1, appears + len(talking))
    seen = np.isfinite(mouths.openings[0])
    assert not seen[:found].any() and seen[found:].all()
    # Taken up from a detection rather than followed from the clip's start, the mouth measures the
    # same within 3 % of its opening once four frames have settled the crop.
    settled = found + 4
    np.testing.assert_allclose(mouths.openings[0, settled:], alone.openings[0, settled - appears:], rtol=0.03)
