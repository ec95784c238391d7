"""Exact time: frame rates, user time strings (seconds, frames, SMPTE timecode) and sample positions."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.model.job import Shot
from pipeline.timeline.sequence import build_timeline
from pipeline.model.timebase import frames_to_samples, frames_to_timecode, parse_rate, parse_time

NTSC_30 = Fraction(30000, 1001)
FILM_24 = Fraction(24)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (25, Fraction(25)),
        ("25", Fraction(25)),
        ("30000/1001", NTSC_30),
        (" 24000/1001 ", Fraction(24000, 1001)),
        (29.97, NTSC_30),
        ("29.97", NTSC_30),
        (23.976, Fraction(24000, 1001)),
        ("59.94", Fraction(60000, 1001)),
        (Fraction(50), Fraction(50)),
        (12.5, Fraction(25, 2)),
    ],
)
def test_parse_rate_is_exact(value, expected):
    rate = parse_rate(value)
    assert isinstance(rate, Fraction)
    assert rate == expected


def test_parse_rate_keeps_a_rate_near_but_not_at_ntsc():
    """Only spellings of the 1001 rates snap; 29.9 fps is a real (odd) rate, kept as given."""
    assert parse_rate(29.9) == Fraction(299, 10)


@pytest.mark.parametrize("value", [0, "0", -25, "-30000/1001", "abc", "", "25/x", "nan", float("inf")])
def test_parse_rate_rejects_bad_values(value):
    with pytest.raises(ValueError):
        parse_rate(value)


def test_parse_rate_rejects_zero_denominator_as_value_error():
    with pytest.raises(ValueError):
        parse_rate("30000/0")


@pytest.mark.parametrize(
    ("value", "rate", "expected_s"),
    [
        (1.5, FILM_24, Fraction(3, 2)),
        (0, FILM_24, Fraction(0)),
        (2, FILM_24, Fraction(2)),
        ("1.5", FILM_24, Fraction(3, 2)),
        ("1.5s", FILM_24, Fraction(3, 2)),
        (" 0.1s ", FILM_24, Fraction(1, 10)),
        ("36f", FILM_24, Fraction(3, 2)),
        ("1f", NTSC_30, Fraction(1001, 30000)),
        ("00:00:01:12", FILM_24, Fraction(3, 2)),
        ("01:00:00:00", FILM_24, Fraction(3600)),
        # Non-drop timecode at 29.97 counts 30 labels a second, so one "second" lasts 1.001 s.
        ("00:00:01:00", NTSC_30, Fraction(1001, 1000)),
    ],
)
def test_parse_time_is_exact_seconds(value, rate, expected_s):
    seconds = parse_time(value, rate)
    assert isinstance(seconds, Fraction)
    assert seconds == expected_s


@pytest.mark.parametrize(
    ("timecode", "frame"),
    [
        ("00:00:59;29", 1799),
        # ;00 and ;01 of minute 1 are dropped labels, so ;02 is the frame after 00:00:59;29.
        ("00:01:00;02", 1800),
        ("00:02:00;02", 3598),
        # Every tenth minute keeps all its labels: 9 minutes x 2 dropped labels.
        ("00:10:00;00", 17982),
        ("01:00:00;00", 107892),
    ],
)
def test_drop_frame_timecode_counts_frames_at_2997(timecode, frame):
    assert parse_time(timecode, NTSC_30) * NTSC_30 == frame


@pytest.mark.parametrize("timecode", ["00:01:00;00", "00:01:00;01"])
def test_drop_frame_rejects_dropped_labels(timecode):
    with pytest.raises(ValueError):
        parse_time(timecode, NTSC_30)


@pytest.mark.parametrize("timecode", ["00:00:60:00", "00:60:00:00"])
def test_timecode_rejects_seconds_or_minutes_past_59(timecode):
    with pytest.raises(ValueError):
        parse_time(timecode, FILM_24)


@pytest.mark.parametrize(
    ("value", "rate", "problem"),
    [
        ("00:00:01:24", FILM_24, "frame field 24 is not below 24 fps"),
        ("00:00:01:30", NTSC_30, "frame field 30 is not below 30 fps"),
        ("00:00:01;12", FILM_24, "drop-frame timecode needs a 1001 rate"),
        (-1, FILM_24, "must not be negative"),
        (-0.5, FILM_24, "must not be negative"),
        ("-1", FILM_24, "not a time"),
        ("abc", FILM_24, "not a time"),
        ("1,5", FILM_24, "not a time"),
        ("1.5.2", FILM_24, "not a time"),
        ("12 frames", FILM_24, "not a time"),
        ("00:01:12", FILM_24, "not a time"),
        (True, FILM_24, "not a time"),
    ],
)
def test_parse_time_rejects_bad_values(value, rate, problem):
    with pytest.raises(ValueError, match=problem):
        parse_time(value, rate)


def _fake_media(rate: Fraction, frames: int) -> SimpleNamespace:
    """The three facts build_timeline reads from a probe: path, planning rate and duration."""
    video = SimpleNamespace(planning_rate=rate, duration_s=Fraction(frames) / rate)
    return SimpleNamespace(path=Path("/nonexistent/source.mp4"), video=video)


def test_timeline_audio_does_not_drift_across_many_shots_at_2997():
    """Per-shot sample counts vary (1601 or 1602 samples per 29.97 frame) but sum to the exact total.

    Rounding each shot on its own would drift: the naive per-shot sum differs from the exact one.
    """
    shot_frames = [1 + (number * 7) % 23 for number in range(200)]
    shots = [Shot(source=Path("/nonexistent/source.mp4"), out_point=f"{frames}f") for frames in shot_frames]
    media = [_fake_media(NTSC_30, frames=100) for _ in shots]

    timeline = build_timeline(shots, media, NTSC_30, 48000)

    total_frames = sum(shot_frames)
    assert [span.frame_count for span in timeline.spans] == shot_frames
    assert timeline.frame_count == total_frames
    assert timeline.sample_count == sum(span.sample_count for span in timeline.spans)
    assert timeline.sample_count == frames_to_samples(total_frames, NTSC_30, 48000)
    for span in timeline.spans:
        assert span.audio_timeline_start_sample == frames_to_samples(span.timeline_start_frame, NTSC_30, 48000)
    one_frame_counts = {span.sample_count for span in timeline.spans if span.frame_count == 1}
    assert one_frame_counts == {1601, 1602}
    naive_total = sum(frames_to_samples(frames, NTSC_30, 48000) for frames in shot_frames)
    assert naive_total != timeline.sample_count


@pytest.mark.parametrize(
    ("rate", "frame", "timecode"),
    [
        (Fraction(25), 90_000, "01:00:00:00"),
        (Fraction(30000, 1001), 1800, "00:01:00;02"),  # the first two labels of minute 1 are dropped
        (Fraction(30000, 1001), 17982, "00:10:00;00"),  # but not those of minute 10
        (Fraction(60000, 1001), 3600, "00:01:00;04"),
        (Fraction(24000, 1001), 1440, "00:01:00:00"),  # 23.976 drops nothing: non-drop, written with ':'
    ],
)
def test_frames_to_timecode_labels_frames_as_an_editor_counts_them(rate, frame, timecode):
    assert frames_to_timecode(frame, rate) == timecode
    assert parse_time(timecode, rate) * rate == frame


def test_timecode_burn_in_renders_at_23_976(make_clip, tmp_path):
    """drawtext refuses drop-frame timecode at 23.976; the review copy's burn-in must not ask for it."""
    from pipeline.jobs.finish import finish
    from pipeline.model.job import job_for_clips
    from pipeline.media.probe import probe

    clip = make_clip("sora2-1280x720-24", seconds=Fraction(1))
    job = job_for_clips([clip], ["review-540p"], name="ntsc-film")
    job = job.model_copy(update={"deliverables": [job.deliverables[0].model_copy(
        update={"overrides": {"video": {"frame_rate": "24000/1001", "width": 320, "height": 180}}})]})
    manifest = json.loads(finish(job, tmp_path).read_text())
    assert probe(manifest["outputs"][0]["path"]).video.frame_rate == Fraction(24000, 1001)
