"""The optical-flow interpolator: rebuilt in-between frames against ground truth, and no frame that
mixes two shots at a hard cut, through the whole pipeline at 24 -> 60 fps."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from pipeline.jobs.finish import finish
from pipeline.media.frames import RawFormat
from pipeline.prestage.interpolate import FlowInterpolator, convert_rate
from pipeline.model.job import parse_job
from pipeline.media.motion_synth import SceneRenderer, write_clip
from pipeline.media.probe import decoded_audio_samples, probe
from tests.measure import frame_lumas, psnr


def test_flow_rebuilds_dropped_frames_far_better_than_blending():
    renderer = SceneRenderer("pan", 320, 180)
    truth = [renderer.frame(number / 48) for number in range(17)]
    kept = [(frame,) for frame in truth[::2]]
    interpolator = FlowInterpolator(RawFormat("rgb24", 320, 180))
    rebuilt = list(convert_rate(kept, interpolator, Fraction(24), Fraction(48), len(kept)))
    assert len(rebuilt) == 18  # the duration of 9 frames at 24 fps, at 48 fps
    odd = range(1, 16, 2)
    flow = np.mean([psnr(rebuilt[k][0], truth[k]) for k in odd])
    blend = np.mean([psnr((truth[k - 1].astype(np.uint16) + truth[k + 1]) // 2, truth[k]) for k in odd])
    assert flow >= blend + 8
    assert all(np.array_equal(rebuilt[k][0], truth[k]) for k in range(0, 16, 2))  # source frames untouched


def test_flow_never_mixes_two_shots_at_a_cut(tmp_path):
    dark = SceneRenderer("pan", 320, 180, seed=1)
    bright = SceneRenderer("zoom", 320, 180, seed=2)
    frames = [(dark.frame(n / 24) * 0.45).astype(np.uint8) for n in range(24)]
    frames += [(bright.frame(n / 24) * 0.4 + 150).astype(np.uint8) for n in range(24)]
    source = write_clip(frames, tmp_path / "cut.mp4", Fraction(24), tone_hz=440)
    job = parse_job({
        "version": 1, "name": "cut", "shots": [{"source": str(source)}],
        "deliverables": [{"preset": "master-prores-4444",
                          "overrides": {"video": {"frame_rate": 60, "rate_conversion": "flow"}}}],
    }, tmp_path)
    finish(job, tmp_path / "out")
    output = next((tmp_path / "out").glob("*.mov"))
    info = probe(output)
    assert info.video.frame_rate == 60 and info.video.frame_count == 120 and info.video.duration_s == 2
    assert decoded_audio_samples(output) == 2 * 48000
    lumas, _ = frame_lumas(output)
    source_lumas, _ = frame_lumas(source)
    dark_level, bright_level = source_lumas[:24].mean(), source_lumas[24:].mean()
    assert bright_level - dark_level > 80
    # Every output frame, the ones around the cut (output frame 60) included, is one shot or the other.
    near_one_side = np.minimum(np.abs(lumas - dark_level), np.abs(lumas - bright_level))
    assert near_one_side.max() < 10, lumas[55:66]
    # Output frame 58 sits 0.2 of a source frame after the last dark one, 59 0.4 before the first bright one.
    assert lumas[58] < dark_level + 10 and lumas[59] > bright_level - 10
