"""Stutter on real footage: repeats inserted at known frames into the development clips (encoded at
CRF 18, as a generator delivers) are found, real motion is not flagged, QC counts the same frames,
and de-stutter leaves no inserted repeat behind.

Truth: frame ``i`` of the stuttered clip is a copy of the last true frame before it. An inserted
repeat is *visible* (must be found) when the true frame it replaced differed from that frame by less
than 40 dB PSNR; pairs of the original footage under 40 dB are real motion (must not be flagged).
The clips are split in two: the thresholds in :mod:`pipeline.prestage.stutter` were tuned on ``TUNING`` and
are validated on ``VALIDATION`` (the slow test measures both; the default suite runs one of each).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.media.frames import RawFormat, decode_frames
from pipeline.prestage.interpolate import FlowInterpolator
from pipeline.media.motion_synth import write_clip
from pipeline.model.presets import get_preset
from pipeline.media.probe import probe
from pipeline.qc.checks import run_qc
from pipeline.analysis.stutter import repeated_frames
from pipeline.prestage.stutter import destuttered, detect_stutter, measure_pairs
from tests.measure import psnr

DEVCLIPS = Path("../shared/devclips")
pytestmark = pytest.mark.skipif(not DEVCLIPS.is_dir(), reason="../shared/devclips is absent")

TUNING = ("ai_cogvideox_horse.mp4", "speech_face_2.mp4", "real_vggsound_whale_shark.mp4", "ai_infinitetalk_i2v_8.mp4",
          "face_driving_d6.mp4", "ai_infinitetalk_speech_a.mp4", "ai_infinitetalk_dubbing_a.mp4",
          "ai_latentsync_compare_1.mp4")
VALIDATION = ("ai_cogvideox_1.mp4", "mp3_in_mp4_outdoor.mp4", "speech_face_5.mp4", "face_driving_d10.mp4",
              "ai_infinitetalk_speech_b.mp4", "ai_infinitetalk_dubbing_b.mp4", "ai_infinitetalk_compare_0.mp4",
              "speech_latentsync_demo2_portrait_hevc.mp4")
WIDTH = 320
VISIBLE_DB = 40.0
MIN_FOUND = 0.95
MAX_FALSE = 0.02


@dataclass(frozen=True)
class StutterTruth:
    original: Path
    """The first frames of a development clip, re-encoded."""
    stuttered: Path
    """The same with repeats inserted."""
    rate: Fraction
    inserted: tuple[int, ...]
    visible: frozenset[int]
    """Inserted repeats that hide real motion."""
    moving: frozenset[int]
    """Frames of the original that differ from their predecessor by under 40 dB."""


def inserted_repeats(frame_count: int, seed: int) -> list[int]:
    """Runs of one (three in four) or two repeats, 5 to 12 frames apart."""
    rng = np.random.default_rng(seed)
    repeats, index = [], 3 + int(rng.integers(0, 4))
    while index < frame_count - 3:
        run = 1 if rng.random() < 0.75 else 2
        repeats.extend(range(index, index + run))
        index += run + 4 + int(rng.integers(0, 8))
    return repeats


def make_truth(name: str, frame_count: int, folder: Path) -> StutterTruth:
    source = DEVCLIPS / name
    video = probe(source).video
    height = round(video.display_height * WIDTH / video.display_width) // 2 * 2
    frames = [frame[0] for _, frame in zip(range(frame_count), decode_frames(
        source, RawFormat("rgb24", WIDTH, height), frame_rate=video.planning_rate))]
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    inserted = inserted_repeats(len(frames), seed=sum(name.encode()))
    stuttered, visible, last_true = list(frames), set(), 0
    for index in range(1, len(frames)):
        if index in inserted:
            stuttered[index] = frames[last_true]
            if psnr(grey[index], grey[last_true]) < VISIBLE_DB:
                visible.add(index)
        else:
            last_true = index
    moving = {index for index in range(1, len(frames)) if psnr(grey[index], grey[index - 1]) < VISIBLE_DB}
    stem = Path(name).stem
    return StutterTruth(
        original=write_clip(frames, folder / f"{stem}-original.mp4", video.planning_rate, lossless=False),
        stuttered=write_clip(stuttered, folder / f"{stem}-stuttered.mp4", video.planning_rate, lossless=False),
        rate=video.planning_rate, inserted=tuple(inserted), visible=frozenset(visible), moving=frozenset(moving),
    )


@dataclass(frozen=True)
class StutterScore:
    visible: int
    found: int
    moving: int
    false_hits: int

    def row(self, name: str) -> str:
        return f"| {name} | {self.visible} | {self.found} | {self.moving} | {self.false_hits} |"


def score(truth: StutterTruth, found_in_original: set[int], found_in_stuttered: set[int]) -> StutterScore:
    inserted = set(truth.inserted)
    # Real motion in the stuttered clip: moving frames neither replaced nor right after a replaced one.
    moving_stuttered = {i for i in truth.moving if i not in inserted and i - 1 not in inserted}
    false_hits = len(found_in_original & truth.moving) + len(found_in_stuttered & moving_stuttered)
    return StutterScore(len(truth.visible), len(truth.visible & found_in_stuttered),
                        len(truth.moving) + len(moving_stuttered), false_hits)


def measure(names, frame_count, folder) -> dict[str, StutterScore]:
    scores = {}
    for name in names:
        truth = make_truth(name, frame_count, folder)
        scores[name] = score(truth, set(detect_stutter(truth.original).repeats),
                             set(detect_stutter(truth.stuttered).repeats))
    return scores


def assert_meets_targets(scores: dict[str, StutterScore]) -> None:
    table = "\n".join(score.row(name) for name, score in scores.items())
    visible = sum(score.visible for score in scores.values())
    found = sum(score.found for score in scores.values())
    moving = sum(score.moving for score in scores.values())
    false_hits = sum(score.false_hits for score in scores.values())
    assert found >= MIN_FOUND * visible, table
    assert false_hits <= MAX_FALSE * moving, table


def test_repeats_inserted_into_real_footage_are_found_and_motion_is_not(tmp_path):
    scores = measure(("real_vggsound_whale_shark.mp4", "ai_infinitetalk_compare_0.mp4"), 60, tmp_path)
    assert all(score.visible >= 5 for score in scores.values())  # the truth has something to find
    assert_meets_targets(scores)


def test_qc_and_destutter_use_the_same_repeats(tmp_path):
    truth = make_truth("ai_infinitetalk_compare_0.mp4", 60, tmp_path)
    repeats = detect_stutter(truth.stuttered).repeats
    assert truth.visible <= set(repeats)
    qc = run_qc(truth.stuttered, get_preset("web-h264-1080p"))
    stutter = next(check for check in qc.checks if check.name == "stutter")
    assert stutter.status == "warn" and stutter.value == len(repeats)
    # De-stutter: every inserted repeat is rebuilt into a frame that takes its share of the motion.
    video = probe(truth.stuttered).video
    raw = RawFormat("gray", video.display_width, video.display_height)
    frames = list(decode_frames(truth.stuttered, raw))
    rebuilt = [frame[0] for frame in destuttered(frames, repeats, FlowInterpolator(raw))]
    assert len(rebuilt) == len(frames)
    pairs = measure_pairs(rebuilt, 1.0)
    differences = [0.0] + [pair.difference for pair in pairs[1:]]
    psnrs = [0.0] + [pair.psnr_db for pair in pairs[1:]]
    assert not set(repeated_frames(differences, psnrs)) & set(truth.inserted)
    for index in truth.visible:  # the motion is shared out evenly: no pair next to it moves 2.5x as much
        here, following = differences[index], differences[index + 1]
        assert min(here, following) >= 0.4 * max(here, following), (index, here, following)
    # No near copy (>= 40 dB) is left between pairs that visibly move (under 35 dB).
    left = [index for index in range(1, len(psnrs) - 1)
            if psnrs[index] >= VISIBLE_DB and psnrs[index - 1] < 35 and psnrs[index + 1] < 35]
    assert not left, left


@pytest.mark.slow
@pytest.mark.parametrize("names", [TUNING, VALIDATION], ids=["tuning", "validation"])
def test_every_development_clip(names, tmp_path, capsys):
    scores = measure(names, 150, tmp_path)
    with capsys.disabled():
        print("\n| clip | visible repeats inserted | found | real-motion frames | flagged |")
        print("\n".join(score.row(name) for name, score in scores.items()))
    assert_meets_targets(scores)
