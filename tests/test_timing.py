"""Timing survives finishing: audio offsets, in/out points, joins and frame-rate changes.

Ground truth: each synthetic clip has a one-frame white flash and a 1 kHz beep at the same instant.
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from pipeline.jobs.finish import finish
from pipeline.model.job import job_for_clips, parse_job
from pipeline.media.probe import decoded_audio_samples, probe
from pipeline.model.timebase import frames_to_samples
from tests.measure import beep_onsets_s, flash_times_s


def test_late_audio_keeps_its_offset(make_clip, tmp_path):
    """A source whose sound starts 200 ms after its picture still has it 200 ms late after conform."""
    source = make_clip("late-audio-1280x720-24", seconds=Fraction(2))
    source_offset = beep_onsets_s(source)[0] - flash_times_s(source)[0]
    assert source_offset == pytest.approx(0.200, abs=0.002)

    job = job_for_clips([source], ["broadcast-prores-hq-1080p25"], name="late")
    output = json.loads(finish(job, tmp_path).read_text())["outputs"][0]["path"]

    flash, beep = flash_times_s(output)[0], beep_onsets_s(output)[0]
    # The flash lands on an output frame at 1.0 s (24 and 25 fps share it), so this is sample-exact.
    assert flash == pytest.approx(1.0, abs=1e-6)
    assert beep - flash == pytest.approx(source_offset, abs=0.001)


def test_multi_shot_sequence_is_frame_and_sample_exact(make_clip, tmp_path):
    """Three shots of different shapes joined at 29.97: lengths add up exactly and stay in sync."""
    clips = [
        make_clip("sora2-1280x720-24", seconds=Fraction(2)),
        make_clip("kling-1920x1080-30", seconds=Fraction(2)),
        make_clip("veo3-1920x1080-24", seconds=Fraction(2)),
    ]
    job = parse_job(
        {
            "version": 1,
            "name": "sequence",
            "shots": [
                {"source": str(clips[0]), "in": "6f", "out": 1.75},  # flash at 1.0 s (frame 24)
                {"source": str(clips[1])},  # silent shot, flash at 1.0 s (frame 30)
                {"source": str(clips[2]), "in": "00:00:00:12", "out": "40f"},  # flash at 1.0 s
            ],
            "deliverables": [{"preset": "broadcast-prores-hq-1080p2997"}],
        },
        tmp_path,
    )
    rate = Fraction(30000, 1001)
    # Shot lengths in output frames, each rounded once from exact seconds.
    shot_frames = [round(Fraction(175, 100) * rate) - round(Fraction(6, 24) * rate),
                   round(2 * rate),
                   round(Fraction(40, 24) * rate) - round(Fraction(12, 24) * rate)]
    output = json.loads(finish(job, tmp_path / "out").read_text())["outputs"][0]["path"]

    info = probe(output)
    assert info.video.frame_rate == rate
    assert info.video.frame_count == sum(shot_frames)
    assert decoded_audio_samples(output) == frames_to_samples(sum(shot_frames), rate, 48000)

    flashes = flash_times_s(output)
    shot_starts = [0, shot_frames[0], shot_frames[0] + shot_frames[1]]
    # In points snap to the output frame grid: 0.25 s is output frame 7, 0.5 s frame 15.
    snapped_in = [Fraction(round(Fraction(1, 4) * rate)) / rate, 0, Fraction(round(Fraction(1, 2) * rate)) / rate]
    # Every source flashes at 1.0 s.
    expected = [start / rate + 1 - in_s for start, in_s in zip(shot_starts, snapped_in, strict=True)]
    assert flashes == pytest.approx([float(t) for t in expected], abs=0.5 / float(rate))
    beeps = beep_onsets_s(output)
    assert len(beeps) == 2, "the silent middle shot must stay silent"
    # Each shot's beep stays with its flash: no drift across the joins.
    for flash, beep in zip([flashes[0], flashes[2]], beeps, strict=True):
        assert beep - flash == pytest.approx(0.0, abs=0.5 / float(rate))


def test_silent_source_at_a_preset_sample_rate_other_than_48k(make_clip, tmp_path):
    """The silence made for a silent shot follows the deliverable's sample rate, to the sample."""
    silent = make_clip("ray-1280x720-24", seconds=Fraction(1))
    job = parse_job(
        {
            "version": 1,
            "name": "rate",
            "shots": [{"source": str(silent)}],
            "deliverables": [{"preset": "prores-proxy-1080p",
                              "overrides": {"audio": {"sample_rate": 44100}, "video": {"width": 320, "height": 180}}}],
        },
        tmp_path,
    )
    output = json.loads(finish(job, tmp_path / "out").read_text())["outputs"][0]["path"]
    assert probe(output).audio.sample_rate == 44100
    assert decoded_audio_samples(output) == 44100
