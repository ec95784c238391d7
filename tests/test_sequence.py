"""Multi-shot sequences: transitions, exact lengths, sync across many joins, split edits, fills, music."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import JobError
from pipeline.jobs.finish import finish, preflight
from pipeline.model.job import TRANSITION_ALIASES, XFADE_TRANSITIONS, parse_job
from pipeline.media.probe import decoded_audio_samples, probe
from pipeline.media.synth import SHAPES, synthesize
from pipeline.model.timebase import frames_to_samples
from tests.measure import beep_onsets_s, decode_audio, flash_times_s, frames_rgb, rms_dbfs

RED, GREEN, BLUE = np.array([255, 0, 0]), np.array([0, 128, 0]), np.array([0, 0, 255])
SMALL_MASTER = {"preset": "master-prores-4444"}  # native size, 4:4:4, PCM: pixels and samples survive


def job(tmp_path, shots, deliverables=(SMALL_MASTER,), **extra):
    return parse_job({"version": 1, "name": "seq", "shots": shots, "deliverables": list(deliverables), **extra}, tmp_path)


def render(tmp_path, job_) -> str:
    manifest = json.loads(finish(job_, tmp_path / "out").read_text())
    return manifest["outputs"][0]["path"]


def mix_towards(frames: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Per frame, how far the mean colour has moved from ``start`` to ``end`` (0..1)."""
    means = frames.reshape(len(frames), -1, 3).mean(axis=1)
    direction = end - start
    return (means - start) @ direction / (direction @ direction)


def test_dissolves_are_exact_and_monotonic(make_colour_clip, tmp_path):
    clips = [make_colour_clip(colour) for colour in ("red", "green", "blue")]  # 48 frames each
    dissolve = {"type": "dissolve", "frames": 12}
    output = render(tmp_path, job(tmp_path, [
        {"source": str(clips[0]), "transition": dissolve},
        {"source": str(clips[1]), "transition": dissolve},
        {"source": str(clips[2])},
    ]))

    frames = frames_rgb(output)
    assert len(frames) == 3 * 48 - 2 * 12 == probe(output).video.frame_count
    for start, (before, after) in ((36, (RED, GREEN)), (72, (GREEN, BLUE))):
        mix = mix_towards(frames[start : start + 12], before, after)
        assert np.all(np.diff(mix) > 0), f"dissolve at frame {start} is not monotonic: {mix}"
        assert np.min(np.abs(mix - 0.5)) <= 0.05
    outside = {range(0, 36): RED, range(48, 72): GREEN, range(84, 120): BLUE}
    for frame_range, colour in outside.items():
        for index in frame_range:
            assert np.abs(frames[index].reshape(-1, 3).mean(axis=0) - colour).max() < 3, index


def test_smooth_dissolve_eases_in_and_out(make_colour_clip, tmp_path):
    clips = [make_colour_clip("red"), make_colour_clip("blue")]
    output = render(tmp_path, job(tmp_path, [
        {"source": str(clips[0]), "transition": {"type": "dissolve", "frames": 12, "easing": "smooth"}},
        {"source": str(clips[1])},
    ]))
    mix = mix_towards(frames_rgb(output)[36:48], RED, BLUE)
    steps = np.diff(mix)
    assert np.all(steps > 0)
    assert steps[0] < steps[5] > steps[-1], "smoothstep moves slowly at both ends"


@pytest.mark.parametrize("transition", sorted(set(TRANSITION_ALIASES) | XFADE_TRANSITIONS))
def test_every_transition_changes_pixels_only_in_its_overlap(transition, make_colour_clip, tmp_path):
    clips = [make_colour_clip("red", Fraction(1)), make_colour_clip("blue", Fraction(1))]
    output = render(tmp_path, job(tmp_path, [
        {"source": str(clips[0]), "transition": {"type": transition, "frames": 8}},
        {"source": str(clips[1])},
    ]))
    frames = frames_rgb(output).reshape(-1, 90 * 160, 3).astype(int)
    assert len(frames) == 24 + 24 - 8
    for index in list(range(0, 16)):
        assert np.abs(frames[index] - RED).max() < 3, f"frame {index} before the overlap changed"
    for index in range(24, 40):
        assert np.abs(frames[index] - BLUE).max() < 3, f"frame {index} after the overlap changed"
    overlap = frames[16:24]
    assert any(np.abs(frame - RED).max() >= 3 for frame in overlap[1:]), "the transition never starts"


def test_forty_shots_stay_in_sync(tmp_path):
    """Each shot flashes and clicks at 0.5 s; cuts and dissolves alternate; no drift accumulates."""
    shape = SHAPES["ray-1280x720-24"].__class__(**{**SHAPES["ray-1280x720-24"].__dict__, "width": 160,
                                                    "height": 90, "audio_rate": 48000, "name": "tiny"})
    shots = []
    for number in range(40):
        clip = synthesize(shape, tmp_path / f"shot{number:02}.mp4", Fraction(1), flash_at_s=Fraction(1, 2))
        transition = {"type": "dissolve", "frames": 6} if number % 2 else {"type": "cut"}
        shots.append({"source": str(clip), "transition": transition})
    output = render(tmp_path, job(tmp_path, shots))

    frames = 40 * 24 - 19 * 6  # 19 dissolves: the last shot's transition has nothing to lead into
    assert probe(output).video.frame_count == frames
    assert decoded_audio_samples(output) == frames_to_samples(frames, Fraction(24), 48000)
    flashes, beeps = flash_times_s(output), beep_onsets_s(output, min_gap_s=0.3)
    assert len(flashes) == len(beeps) == 40
    assert abs(beeps[-1] - flashes[-1]) <= 0.005
    assert max(abs(b - f) for b, f in zip(beeps, flashes, strict=True)) <= 0.005


def test_mixed_generators_into_one_sequence(make_clip, tmp_path):
    """Sora 2 720p24 with sound, silent Kling 1080p30, a portrait clip: one 1080p24 sequence."""
    clips = [make_clip("sora2-1280x720-24", seconds=Fraction(1)),
             make_clip("kling-1920x1080-30", seconds=Fraction(1)),
             make_clip("sora2-720x1280-30", seconds=Fraction(1))]
    shots = [{"source": str(clip)} for clip in clips]
    shots[2]["fill"] = "#3050a0"
    output = render(tmp_path, job(tmp_path, shots, deliverables=[{"preset": "prores-proxy-1080p"}]))

    info = probe(output)
    assert (info.video.display_width, info.video.display_height, info.video.frame_rate) == (1920, 1080, 24)
    assert info.video.frame_count == 72
    frames = frames_rgb(output)
    # The portrait shot is pillarboxed: 1080 / 1280 * 720 = 607.5 -> 608 wide, bars of the fill colour.
    bar = frames[60][:, :600].reshape(-1, 3).mean(axis=0)
    assert np.abs(bar - [0x30, 0x50, 0xA0]).max() < 6
    samples, rate, _ = decode_audio(output)
    second = samples[:, rate + rate // 10 : 2 * rate - rate // 10]
    assert np.max(np.abs(second)) == 0, "the silent Kling shot must be silent"
    assert rms_dbfs(samples[0, rate // 10 : rate // 5]) > -30, "the Sora shot keeps its sound"


def test_blur_fill_surrounds_the_picture_with_itself(make_clip, tmp_path):
    portrait = make_clip("sora2-720x1280-30", seconds=Fraction(1))
    output = render(tmp_path, job(tmp_path, [{"source": str(portrait)}],
                                  deliverables=[{"preset": "prores-proxy-1080p"}], sequence={"fill": "blur"}))
    frame = frames_rgb(output)[5].astype(float)
    side = frame[:, :600]
    assert side.mean() > 40, "a blurred copy, not black bars"
    assert np.abs(np.diff(side, axis=1)).mean() < 2, "the fill is blurred (smooth)"


def test_l_cut_carries_sound_under_the_next_picture(make_clip, tmp_path):
    with_sound = make_clip("sora2-1280x720-24", seconds=Fraction(2))
    silent = make_clip("ray-1280x720-24", seconds=Fraction(2))
    output = render(tmp_path, job(tmp_path, [
        {"source": str(with_sound), "out": 1.0, "audio_offset_frames": 12},
        {"source": str(silent)},
    ], deliverables=[{"preset": "prores-proxy-1080p"}]))
    samples, rate, _ = decode_audio(output)
    audible = np.flatnonzero(np.abs(samples[0]) > 1e-4)
    # The picture cuts at 1.0 s; the sound runs on 12 frames (0.5 s) under the silent shot.
    assert audible[-1] / rate == pytest.approx(1.5, abs=0.002)


def test_music_bed_is_mixed_at_its_gain_and_faded(make_clip, tmp_path):
    silent = make_clip("ray-1280x720-24", seconds=Fraction(2))
    music = tmp_path / "bed.wav"
    from pipeline.media.runner import run_ffmpeg

    run_ffmpeg(["-f", "lavfi", "-i", "aevalsrc=0.1*sin(2*PI*220*t):s=44100:d=5", str(music)])  # -20 dBFS peak
    output = render(tmp_path, job(tmp_path, [{"source": str(silent)}], deliverables=[{"preset": "prores-proxy-1080p"}],
                                  music={"source": str(music), "gain_db": -6, "fade_out_frames": 12}))
    samples, rate, _ = decode_audio(output)
    assert samples.shape[1] == 2 * rate
    assert rms_dbfs(samples[0, : rate]) == pytest.approx(-20 - 3.01 - 6, abs=0.3)
    assert np.max(np.abs(samples[:, -rate // 100 :])) < 0.01, "faded out by the end"


def test_transition_longer_than_a_shot_is_a_job_error(make_colour_clip, tmp_path):
    clips = [make_colour_clip("red", Fraction(1)), make_colour_clip("blue", Fraction(1))]
    bad = job(tmp_path, [{"source": str(clips[0]), "transition": {"type": "dissolve", "frames": 30}},
                         {"source": str(clips[1])}])
    with pytest.raises(JobError, match=r"shots\.0\.transition: the 30-frame dissolve between shots 0 and 1 is longer than shot 0"):
        preflight(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_split_edit_without_handles_is_a_job_error(make_colour_clip, tmp_path):
    clips = [make_colour_clip("red", Fraction(1)), make_colour_clip("blue", Fraction(1))]
    bad = job(tmp_path, [{"source": str(clips[0]), "audio_offset_frames": 6}, {"source": str(clips[1])}])
    with pytest.raises(JobError, match=r"shots\.0: its sound would run from source frame 0 to 30"):
        preflight(bad, tmp_path / "out")


def test_dissolve_into_a_420_web_deliverable(make_colour_clip, tmp_path):
    """xfade blends in 4:4:4; the H.264 deliverable must still come out 4:2:0 High profile."""
    clips = [make_colour_clip("red", Fraction(1)), make_colour_clip("blue", Fraction(1))]
    output = render(tmp_path, job(
        tmp_path,
        [{"source": str(clips[0]), "transition": {"type": "dissolve", "frames": 12}}, {"source": str(clips[1])}],
        deliverables=[{"preset": "social-16x9", "overrides": {"video": {"width": 320, "height": 180}}}],
    ))
    info = probe(output)
    assert (info.video.pix_fmt, info.video.profile, info.video.frame_count) == ("yuv420p", "High", 36)
    mix = mix_towards(frames_rgb(output)[12:24], RED, BLUE)
    assert np.all(np.diff(mix) > 0)


def _laid_out(timeline):
    """Per output frame, the (shot, source frame) pairs seen there."""
    pictures = {}
    for shot, span in enumerate(timeline.spans):
        for offset in range(span.frame_count):
            pictures.setdefault(span.timeline_start_frame + offset, []).append((shot, span.source_start_frame + offset))
    return pictures


@pytest.mark.parametrize("rate", [Fraction(24), Fraction(30000, 1001)])
def test_windows_of_a_long_timeline_add_up_to_it_exactly(rate):
    """Windows laid end to end give the whole cut's frames and samples, each from the same source frame."""
    from pipeline.timeline.sequence import build_timeline, split_timeline
    from tests.test_plan import _media, _video_stream

    info = _media(Path("/nonexistent/shot.mp4"), _video_stream(320, 180, frame_rate=rate, seconds=Fraction(3)))
    shots = [
        parse_job({"version": 1, "name": "w", "shots": [{"source": "/nonexistent/shot.mp4", "in": "12f", "out": "60f", **extra}],
                   "deliverables": [SMALL_MASTER]}, Path("/")).shots[0]
        for extra in [
            {"transition": {"type": "dissolve", "frames": 12}},
            {"transition": {"type": "cut"}, "audio_offset_frames": 6},
            {"transition": {"type": "wipeleft", "frames": 20, "audio": "cut"}},
            {"transition": {"type": "dissolve", "frames": 28}},  # shot 3 is all transition: no boundary in it
        ] * 5
    ]
    whole = build_timeline(shots, [info] * len(shots), rate, 48000)
    windows = split_timeline(whole, max_shots=3)

    assert len(windows) > 5
    assert all(window.shot_count <= 3 for window in windows)
    assert sum(window.timeline.frame_count for window in windows) == whole.frame_count
    assert sum(window.timeline.sample_count for window in windows) == whole.sample_count
    expected = _laid_out(whole)
    seen = {}
    for window in windows:
        for frame, uses in _laid_out(window.timeline).items():
            seen[window.timeline.start_frame + frame] = [(window.first_shot + shot, source) for shot, source in uses]
    assert seen == expected
    for window in windows:  # sound: every window's shots cover its samples with only the joins' crossfades
        spans, joins = window.timeline.spans, window.timeline.joins
        assert spans[0].audio_timeline_start_sample == 0
        assert sum(span.sample_count for span in spans) - sum(j.crossfade_samples for j in joins) == window.timeline.sample_count


def test_windowed_render_matches_one_graph(make_colour_clip, tmp_path):
    """A sequence rendered in windows has the one-graph render's length, sound and pictures."""
    colours = ["red", "green", "blue", "white", "yellow", "cyan"]
    clips = [make_colour_clip(colour, seconds=1) for colour in colours]
    shots = [{"source": str(clip), "transition": {"type": "dissolve", "frames": 6} if number % 2 else {"type": "cut"}}
             for number, clip in enumerate(clips)]
    deliverables = [SMALL_MASTER, {"preset": "review-540p", "overrides": {"video": {"width": 320, "height": 180}}}]
    # A title across the first window boundaries: overlays are timed in sequence frames.
    overlays = [{"kind": "title", "text": "Across windows", "start": "20f", "end": "70f"}]
    whole = json.loads(finish(job(tmp_path, shots, deliverables, overlays=overlays), tmp_path / "whole").read_text())
    windowed_job = job(tmp_path, shots, deliverables, sequence={"shots_per_render": 2}, overlays=overlays)
    assert len(preflight(windowed_job, tmp_path / "windowed").renders) > 2
    windowed = json.loads(finish(windowed_job, tmp_path / "windowed").read_text())

    assert [path.name for path in (tmp_path / "windowed").iterdir() if path.name.startswith(".")] == []
    for one, other in zip(whole["outputs"], windowed["outputs"], strict=True):
        assert probe(other["path"]).video.frame_count == probe(one["path"]).video.frame_count == 6 * 24 - 2 * 6  # dissolves after shots 1 and 3
        assert decoded_audio_samples(other["path"]) == decoded_audio_samples(one["path"])
    master_one, master_other = whole["outputs"][0]["path"], windowed["outputs"][0]["path"]
    sound_difference = np.abs(decode_audio(master_one)[0] - decode_audio(master_other)[0]).max()
    assert sound_difference <= 2**-23, "the same samples, to the last bit of 24-bit PCM"
    pictures_one, pictures_other = frames_rgb(master_one).astype(int), frames_rgb(master_other).astype(int)
    assert np.abs(pictures_one - pictures_other).max() <= 2, "ProRes 4444 of the same frames differs by rounding at most"
    titled = [frame for frame in range(len(pictures_one))
              if np.abs(pictures_one[frame] - pictures_one[frame].reshape(-1, 3).mean(axis=0)).max() > 40]
    assert titled[0] == 20 and titled[-1] == 69
