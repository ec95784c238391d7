"""Cut-downs of a 40 s sequence to 6, 15 and 30 s: exact frame counts, whole shots kept, trims
landing on quiet points of the sound, never mid-word.

Ground truth: one 40 s source of five shots (7, 9, 6, 10 and 8 s, each a different look of a moving
pattern) under a sound of 250 ms speech-like bursts every 0.6 s with silence between.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipeline.analysis.sound_activity import LEVEL_WINDOW_S, SoundActivity, sound_activity
from pipeline.plan.cutdown import Unit, choose_pieces, units_of
from pipeline.analysis.cache import AnalysisCache
from pipeline.jobs.analyses import analyse_sources
from pipeline.jobs.finish import finish
from pipeline.jobs.sequence import plan_with_analysis
from pipeline.model.job import parse_job
from pipeline.media.runner import run_ffmpeg
from pipeline.analysis.loudness import measure_file
from pipeline.model.presets import load_presets
from pipeline.model.timebase import parse_time
from pipeline.media.probe import probe
from pipeline.plan.facts import JobFacts

RATE = 24
SHOT_SECONDS = (7, 9, 6, 10, 8)
LOOKS = ("", ",negate", ",vflip", ",hflip,negate", ",hue=h=90")
BURST_PERIOD_S, BURST_S, FIRST_BURST_S = 0.6, 0.25, 0.1
SMALL = {"video": {"width": 90, "height": 160, "fit": "center", "options": {"preset": "veryfast"}}}


@pytest.fixture(scope="module")
def sequence_source(clip_dir):
    path = clip_dir / "cutdown-40s.mp4"
    shots = ";".join(
        f"testsrc2=s=160x90:r={RATE}:d={seconds}{look}[s{number}]"
        for number, (seconds, look) in enumerate(zip(SHOT_SECONDS, LOOKS, strict=True))
    )
    graph = f"{shots};{''.join(f'[s{n}]' for n in range(5))}concat=n=5:v=1:a=0[v]"
    speech = (f"0.3*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*3*t))*gte(t,{FIRST_BURST_S})"
              f"*lt(mod(t-{FIRST_BURST_S},{BURST_PERIOD_S}),{BURST_S})")
    run_ffmpeg(["-filter_complex", graph, "-f", "lavfi", "-i", f"aevalsrc='{speech}':s=48000:d=40",
                "-map", "[v]", "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "128k", str(path)])
    return path


def _job(source, tmp_path, **deliverable):
    return parse_job({"version": 1, "name": "spot", "shots": [{"source": str(source)}],
                      "deliverables": [{"preset": "tiktok-9x16", "overrides": SMALL, **deliverable}]}, tmp_path)


def _quiet(time_s: float) -> bool:
    """Not inside a burst of sound: before the first, or after the last one that began has ended."""
    since_onset = (time_s - FIRST_BURST_S) % BURST_PERIOD_S
    return time_s <= FIRST_BURST_S or since_onset >= BURST_S


def test_cutdowns_hit_their_frame_counts_on_shot_boundaries_or_quiet_points(sequence_source, tmp_path):
    job = _job(sequence_source, tmp_path, cutdowns=[6, 15, 30])
    media = {sequence_source: probe(sequence_source)}
    presets = load_presets()
    analyses = analyse_sources(job, media, presets, AnalysisCache(None).get_or_compute).reframe
    assert analyses[sequence_source].cut_times_s == pytest.approx((7, 16, 22, 32), abs=0.5 / RATE)
    plan = plan_with_analysis(job, JobFacts(media, reframe=analyses), presets, tmp_path / "out",
                              measure_loudness=False)
    counts = {output.deliverable: output.expected.frame_count for output in plan.outputs}
    assert counts == {"tiktok-9x16": 40 * RATE, "tiktok-9x16-6s": 6 * RATE, "tiktok-9x16-15s": 15 * RATE,
                      "tiktok-9x16-30s": 30 * RATE}

    rate = Fraction(RATE)
    units = units_of(job, media, analyses, rate)
    assert [unit.frame_count for unit in units] == [seconds * RATE for seconds in SHOT_SECONDS]
    boundaries = {0, *np.cumsum(SHOT_SECONDS) * RATE}
    sounds = {sequence_source: sound_activity(sequence_source, media[sequence_source])}
    # One onset at the start of each burst: not every flux wobble inside one, nor the burst's end.
    expected_onsets = np.arange(FIRST_BURST_S, 40 - BURST_S, BURST_PERIOD_S)
    assert sounds[sequence_source].onset_times_s == pytest.approx(expected_onsets, abs=0.02)
    for seconds in (6, 15, 30):
        pieces = choose_pieces(units, seconds * RATE, rate, sounds)
        assert sum(piece.frame_count for piece in pieces) == seconds * RATE
        starts = [piece.first_frame for piece in pieces]
        assert starts == sorted(starts)  # sequence order
        for piece in pieces:
            for edge in (piece.first_frame, piece.first_frame + piece.frame_count):
                assert edge in boundaries or _quiet(edge / RATE), (seconds, edge / RATE)
        if seconds == 15:
            assert any(piece.whole for piece in pieces)  # whole shots kept where they fit


def test_a_cutdown_renders_to_the_frame(sequence_source, tmp_path):
    job = _job(sequence_source, tmp_path, duration_s=6)
    finish(job, tmp_path / "out")
    info = probe(tmp_path / "out" / "spot_tiktok-9x16.mp4")
    assert info.video.frame_count == 6 * RATE
    assert info.video.duration_s == 6
    # The cut-down is its own programme for loudness: the preset's streaming target, on the file.
    target = load_presets()["tiktok-9x16"].loudness
    measured = measure_file(info.path)
    assert measured.integrated_lufs == pytest.approx(target.target_lufs, abs=target.tolerance)
    assert measured.true_peak_dbtp <= target.max_true_peak_dbtp


def test_a_cutdown_longer_than_the_sequence_is_a_job_error(sequence_source, tmp_path):
    from pipeline.errors import JobError

    job = _job(sequence_source, tmp_path, duration_s=41)
    with pytest.raises(JobError, match=r"tiktok-9x16.*fewer than the 984"):
        media = {sequence_source: probe(sequence_source)}
        # The length alone decides.
        plan_with_analysis(job, JobFacts(media), load_presets(), tmp_path, measure_loudness=False)


def test_a_remainder_with_no_quiet_window_is_split_between_two_units():
    """Two 10 s units whose only quiet cut points (besides their edges) are 3 s apart in the first
    and 3.25 s apart in the second: no single 6.25 s window has two quiet ends, two windows do."""
    source = Path("spot.mp4")
    units = [Unit(0, source, 0, 240, activity=2.0), Unit(0, source, 240, 240, activity=1.0)]
    level = np.full(round(20 / LEVEL_WINDOW_S), -10.0)
    for quiet_s in (2.0, 5.0, 12.0, 15.25):
        level[round((quiet_s - 0.05) / LEVEL_WINDOW_S):round((quiet_s + 0.05) / LEVEL_WINDOW_S)] = -90.0
    sounds = {source: SoundActivity(level_db=level, onset_times_s=np.zeros(0))}
    pieces = choose_pieces(units, 150, Fraction(RATE), sounds)
    assert [(piece.first_frame, piece.frame_count) for piece in pieces] == [(48, 72), (288, 78)]


def test_overlays_follow_the_cutdown_or_are_left_out_with_a_note():
    """An end card moves to the cut-down's end; layers are cut short at it; captions, shot-timed
    layers and layers starting after it are left out, each with a note."""
    from pipeline.plan.cutdown import cutdown_overlays
    from pipeline.model.job import parse_job

    job = parse_job({
        "version": 1, "name": "spot",
        "shots": [{"source": "/nonexistent/a.mp4", "id": "intro"}, {"source": "/nonexistent/b.mp4"}],
        "deliverables": [{"preset": "tiktok-9x16"}],
        "overlays": [
            {"kind": "title", "text": "Hello", "start": 1, "duration": 3},
            {"kind": "watermark", "text": "DRAFT"},
            {"kind": "end_card", "text": "Buy", "start": 35, "duration": 5},
            {"kind": "captions", "cues": [{"start": 2, "end": 3, "text": "hi"}]},
            {"kind": "lower_third", "text": "Ana", "shot": "intro"},
            {"kind": "title", "text": "Later", "start": "480f"},
        ],
    }, Path("/"))
    kept, notes = cutdown_overlays(job, Fraction(6), Fraction(40), Fraction(RATE))

    times = [(overlay.kind, parse_time(overlay.start, 1), parse_time(overlay.end, 1)) for overlay in kept]
    assert times == [("title", 1, 4), ("watermark", 0, 6), ("end_card", 1, 6)]
    assert [note.split(" ")[0] for note in notes] == ["overlays.3", "overlays.4", "overlays.5"]
    assert "starts at 20.000 s, after its 6.000 s" in notes[2]
