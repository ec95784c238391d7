"""Every generator shape finishes into every built-in preset, and each output probes as its preset says.

Expectations here are worked out from the preset and the source's shape, not taken from the plan,
so this checks the planner and the verifier rather than trusting them.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from pipeline.jobs.finish import finish
from pipeline.model.job import job_for_clips
from pipeline.analysis.loudness import measure_file
from pipeline.model.presets import load_presets
from pipeline.media.probe import decoded_audio_samples, probe
from pipeline.media.synth import SHAPES, TONE_DBFS
from pipeline.model.timebase import frames_to_samples, round_half_up
from tests.measure import decode_audio, frame_lumas, rms_dbfs

PRESETS = load_presets()
BUILTIN_NAMES = [
    "broadcast-prores-hq-1080p25", "broadcast-prores-hq-1080p2997", "master-prores-4444",
    "prores-lt-1080p", "prores-proxy-1080p", "dnxhr-hq-1080p", "web-h264-1080p", "web-hevc-1080p",
    "web-av1-1080p", "social-9x16", "social-1x1", "social-16x9",
]


def expected_raster(preset, shape) -> tuple[int, int]:
    if preset.video.width:
        return preset.video.width, preset.video.height
    width, height = (shape.height, shape.width) if shape.rotation in (90, 270) else (shape.width, shape.height)
    if "444" in preset.video.pix_fmt:
        return width, height
    return width + width % 2, height + height % 2


def expected_rate(preset, shape) -> Fraction:
    if preset.video.frame_rate:
        return preset.video.frame_rate
    # A variable-rate source is finished at the nearest standard rate.
    return Fraction(30) if shape.variable_frame_rate else shape.frame_rate


SAME_PATH_AS_ANOTHER_SHAPE = {
    "sora2-720x1280-30": "portrait, as sora2pro-1024x1792-30",
    "sora2pro-1920x1080-30": "1080p at 30, as kling-1920x1080-30",
    "veo3-1920x1080-24": "1080p at 24, as hevc10-1920x1080-24",
    "ltx-3840x2160-24": "downscaling, as every 1080p shape into the 720p and 1x1 presets",
    "ray-1280x720-24": "720p at 24, as sora2-1280x720-24",
}
"""Shapes whose path through planning and verification another shape in the default suite takes:
they run with the slow tests, so the default suite stays within its time."""


@pytest.mark.parametrize("shape_name", [
    pytest.param(name, marks=pytest.mark.slow) if name in SAME_PATH_AS_ANOTHER_SHAPE else name for name in SHAPES
])
def test_shape_finishes_into_every_preset(shape_name, make_clip, tmp_path):
    shape = SHAPES[shape_name]
    source = make_clip(shape_name)
    source_info = probe(source)
    job = job_for_clips([source], BUILTIN_NAMES, name="matrix")

    manifest = json.loads(finish(job, tmp_path).read_text())

    assert [output["preset"] for output in manifest["outputs"]] == BUILTIN_NAMES
    problems = []
    for output in manifest["outputs"]:
        preset = PRESETS[output["preset"]]
        info = probe(output["path"])
        video, audio = info.video, info.audio
        rate = expected_rate(preset, shape)
        frames = round_half_up(source_info.video.duration_s * rate)
        actual = {
            "container": info.brand,
            "codec": video.codec,
            "profile": video.profile,
            "pix_fmt": video.pix_fmt,
            "size": (video.display_width, video.display_height),
            "sar": video.sample_aspect_ratio,
            "rate": video.frame_rate,
            "vfr": video.variable_frame_rate,
            "frames": video.frame_count,
            "colour": (video.color_primaries, video.color_transfer, video.color_matrix),
            "audio": (audio.codec, audio.sample_rate, audio.channels, audio.layout),
        }
        wanted = {
            "container": "qt  " if preset.container == "mov" else "isom",
            "codec": preset.video.codec,
            "profile": preset.video.profile,
            "pix_fmt": preset.video.probed_pix_fmt or preset.video.pix_fmt,
            "size": expected_raster(preset, shape),
            "sar": 1,
            "rate": rate,
            "vfr": False,
            "frames": frames,
            "colour": ("bt709", "bt709", "bt709"),
            "audio": (preset.audio.codec, 48000, 2, "stereo"),
        }
        for key in wanted:
            if actual[key] != wanted[key]:
                problems.append(f"{preset.name} {key}: wanted {wanted[key]}, got {actual[key]}")
        samples = decoded_audio_samples(output["path"])
        tolerance = 1024 if preset.audio.codec == "aac" else 0
        if abs(samples - frames_to_samples(frames, rate, 48000)) > tolerance:
            problems.append(f"{preset.name} audio samples: {samples} for {frames} frames at {rate}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "shape_name", ["sora2-1280x720-24", "kling-1920x1080-30", "phone-rotated-1920x1080-30"]
)
def test_picture_and_sound_survive(shape_name, make_clip, tmp_path):
    """Look at the output: the picture is the source's (not black), the tone level is kept."""
    shape = SHAPES[shape_name]
    source = make_clip(shape_name)
    job = job_for_clips([source], ["web-h264-1080p"], name="look")
    manifest = json.loads(finish(job, tmp_path).read_text())
    output = manifest["outputs"][0]["path"]

    source_lumas, _ = frame_lumas(source)
    output_lumas, _ = frame_lumas(output)
    # testsrc2 is a bright colour pattern; letter/pillarbox bars darken the mean only in proportion.
    assert np.median(output_lumas) > 0.25 * np.median(source_lumas)

    samples, rate, _ = decode_audio(output)
    if shape.audio_rate is None:
        assert np.max(np.abs(samples)) == 0, "a silent source must finish with digital silence"
    else:
        # Before the beep (mid-clip, after 0.23 s) only the -20 dBFS sine bed plays; a sine's RMS
        # is 3 dB under its peak. The preset normalises loudness: the bed moves by the stated gain.
        gain_db = manifest["outputs"][0]["loudness"]["gain_db"]
        bed = samples[:, rate // 50 : rate // 5]
        for channel in bed:
            assert rms_dbfs(channel) == pytest.approx(TONE_DBFS - 3.01 + gain_db, abs=0.3)
        # ...and that gain was the right one: the file itself meets the preset's target.
        target = PRESETS["web-h264-1080p"].loudness
        measured = measure_file(output)
        assert measured.integrated_lufs == pytest.approx(target.target_lufs, abs=target.tolerance)
        assert measured.true_peak_dbtp <= target.max_true_peak_dbtp
