"""Sync evidence beyond event correlation: agreeing flash/click pairs over a busy picture, and
talking faces on real footage (development clips with their sound shifted by known amounts).

Truth for the talking clips: a clip whose sound is moved ``s`` ms later measures ``s`` ms more than
the unshifted clip (their makers publish them as in sync; the full table against that truth is
bench/sync_calibration.py).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import postprod.cli as cli
from pipeline.analysis.lipsync import MouthTracks, SpeechActivity, match_lips, mouth_tracks, speech_activity
from pipeline.media.runner import run_ffmpeg
from pipeline.media.probe import probe
from pipeline.analysis.sync import fix_sync, measure_sync
from pipeline.media.synth import ClipContent, ClipShape, resound, synthesize

DEVCLIPS = Path("../shared/devclips")
needs_devclips = pytest.mark.skipif(not DEVCLIPS.is_dir(), reason="../shared/devclips/ is not here")

FLASH_SHAPE = ClipShape("flash-click-320x180-25", 320, 180, Fraction(25), audio_rate=48000)
FLASH_SECONDS = Fraction(6)
FLASH_GAPS_S = ("0.5", "0.7", "0.45", "0.9", "0.55", "1.1", "0.6")
FLASH_SHIFTS_MS = (0, 120, -80, 250, -300, 40, -160)
CLICK_S = 0.005
EVENT_TOLERANCE_MS = 5
ONE_FRAME_MS = 40


def _flash_times() -> tuple[Fraction, ...]:
    """Seven instants at irregular gaps, on frames."""
    times, at = [], Fraction(0)
    for gap in FLASH_GAPS_S:
        at += Fraction(gap)
        times.append(Fraction(round(at * FLASH_SHAPE.frame_rate)) / FLASH_SHAPE.frame_rate)
    return tuple(times)


@pytest.fixture(scope="module")
def flash_picture(clip_dir):
    """testsrc2 (moving all over) with seven one-frame white flashes."""
    return synthesize(FLASH_SHAPE, clip_dir / "flash-click.mp4", FLASH_SECONDS,
                      content=ClipContent(event_times_s=_flash_times()))


def test_seven_flash_click_pairs_decide_over_a_moving_picture(flash_picture, clip_dir):
    """Each flash has a 5 ms click at a known lag: the pairs decide, to within 5 ms, every time."""
    misses = []
    for shift in FLASH_SHIFTS_MS:
        content = ClipContent(event_times_s=_flash_times(), audio_shift_s=Fraction(shift, 1000), beep_s=CLICK_S)
        clip = resound(flash_picture, FLASH_SHAPE, clip_dir / f"flash-click{shift:+d}.mp4", FLASH_SECONDS, content)
        report = measure_sync(clip)
        if report.method != "event_pairs" or abs(report.offset_ms - shift) > EVENT_TOLERANCE_MS:
            misses.append(f"{shift:+d} ms: {report.offset_ms} by {report.method} ({report.reason})")
        assert report.evidence and "7 of" in report.evidence
    assert not misses


def test_clicks_that_meet_no_flash_decide_nothing(flash_picture, clip_dir):
    """Clicks at instants of their own (gaps reversed): some may meet a picture event, not seven."""
    flashes = _flash_times()
    others = tuple(flashes[0] + flashes[-1] - at for at in reversed(flashes))
    content = ClipContent(event_times_s=others, beep_s=CLICK_S, audio_shift_s=Fraction(37, 1000))
    clip = resound(flash_picture, FLASH_SHAPE, clip_dir / "flash-other-clicks.mp4", FLASH_SECONDS, content)
    report = measure_sync(clip)
    assert report.method != "event_pairs"


def test_check_fails_out_of_sync_and_passes_in_sync(flash_picture, clip_dir, capsys):
    late = resound(flash_picture, FLASH_SHAPE, clip_dir / "flash-click-late.mp4", FLASH_SECONDS,
                   ClipContent(event_times_s=_flash_times(), audio_shift_s=Fraction(200, 1000), beep_s=CLICK_S))
    on_time = resound(flash_picture, FLASH_SHAPE, clip_dir / "flash-click-on-time.mp4", FLASH_SECONDS,
                      ClipContent(event_times_s=_flash_times(), beep_s=CLICK_S))
    def run(*args: str) -> tuple[int, dict]:
        code = cli.main(["sync", *args, "--json"])
        return code, json.loads(capsys.readouterr().out)

    code, document = run(str(late))
    assert code == 0 and document["verdict"] == "out_of_sync" and document["method"] == "event_pairs"
    assert run(str(late), "--check")[0] == cli.EXIT_OUT_OF_SYNC
    code, document = run(str(on_time), "--check")
    assert code == 0 and document["verdict"] == "in_sync"


# Talking faces -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def face_5():
    """speech_face_5 (camera interview footage, 524x524, 4.9 s): its mouths, once."""
    path = DEVCLIPS / "speech_face_5.mp4"
    return path, mouth_tracks(path)


@needs_devclips
def test_the_mouth_is_followed_through_a_real_clip(face_5):
    _, mouths = face_5
    assert mouths is not None
    seen = np.isfinite(mouths.openings).sum(axis=1)
    assert seen.max() >= 0.95 * len(mouths.frame_times_s)
    opening = mouths.openings[int(np.argmax(seen))]
    # The mouth opens and closes while the man speaks (height of the lips over eye distance).
    assert np.nanpercentile(opening, 95) - np.nanpercentile(opening, 5) > 0.05


@needs_devclips
@pytest.mark.parametrize("shift_ms", [-200, 160])
def test_the_lip_estimate_follows_a_shift_of_the_sound(face_5, tmp_path, shift_ms):
    path, mouths = face_5
    unshifted = match_lips(mouths, speech_activity(path), 500)
    shifted_clip = fix_sync(path, -shift_ms, tmp_path / "shifted.mp4")
    shifted = match_lips(mouths, speech_activity(shifted_clip), 500)
    assert unshifted is not None and shifted is not None
    assert abs(shifted.offset_ms - unshifted.offset_ms - shift_ms) <= ONE_FRAME_MS / 4
    assert abs(unshifted.offset_ms) <= 2 * ONE_FRAME_MS


@needs_devclips
def test_the_face_that_talks_is_the_one_matched(face_5, tmp_path):
    """Two interviewees side by side, each speaking; with either one's sound, the match is found
    on that one's face, at the lag measured on that face alone."""
    other = DEVCLIPS / "speech_face_2.mp4"
    pair = tmp_path / "pair.mp4"
    run_ffmpeg(["-i", str(face_5[0]), "-i", str(other), "-filter_complex",
                "[0:v]scale=320:320,setsar=1[a];[1:v]scale=320:320,setsar=1[b];[a][b]hstack=shortest=1[v]",
                "-map", "[v]", "-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", str(pair)])
    mouths = mouth_tracks(pair)
    assert mouths is not None and len(mouths.openings) >= 2
    alone = {source: match_lips(mouth_tracks(source), speech_activity(source), 500)
             for source in (face_5[0], other)}
    chosen = {source: match_lips(mouths, speech_activity(source), 500) for source in (face_5[0], other)}
    assert chosen[face_5[0]].face != chosen[other].face
    for source in alone:
        assert abs(chosen[source].offset_ms - alone[source].offset_ms) <= ONE_FRAME_MS / 2


@needs_devclips
def test_a_talking_clip_with_its_sound_moved_late_is_answered_by_the_lips_within_a_frame(tmp_path):
    """The LatentSync comparison clip (8 s, 720p, in sync as published), its sound moved 120 ms
    late: the events do not decide, the lips do, within a frame of the move, and out of sync."""
    late = fix_sync(DEVCLIPS / "ai_latentsync_compare_1.mp4", -120, tmp_path / "late.mp4")
    report = measure_sync(late)
    assert report.method == "lip_sync", report.reason
    assert abs(report.offset_ms - 120) <= ONE_FRAME_MS
    assert report.verdict == "out_of_sync"


@needs_devclips
def test_a_face_that_leaves_the_picture_is_matched_where_it_is_seen(face_5):
    """Frames without the face (here a second and a half taken out of the track) are left out,
    not read as a closed mouth: the match stays where it was."""
    path, mouths = face_5
    full = match_lips(mouths, speech_activity(path), 500)
    gone = mouths.openings.copy()
    gone[:, (mouths.frame_times_s > 1.5) & (mouths.frame_times_s < 3.0)] = np.nan
    partial = match_lips(MouthTracks(mouths.frame_times_s, gone), speech_activity(path), 500)
    assert partial is not None and abs(partial.offset_ms - full.offset_ms) <= ONE_FRAME_MS / 2
    assert partial.frames < full.frames


@needs_devclips
def test_pictures_with_another_clips_speech_are_undetermined(face_5):
    path, mouths = face_5
    for speaker in ("speech_face_2", "ai_latentsync_compare_1"):
        lips = match_lips(mouths, speech_activity(DEVCLIPS / f"{speaker}.mp4"), 500)
        assert lips is None or lips.weakness() is not None, lips


@pytest.mark.slow
@needs_devclips
def test_portrait_talking_clip_is_followed():
    """The 9:16 HEVC LatentSync demo: the face is found and followed in portrait."""
    path = DEVCLIPS / "speech_latentsync_demo2_portrait_hevc.mp4"
    mouths = mouth_tracks(path, probe(path).video.rotation % 360)
    assert mouths is not None
    assert np.isfinite(mouths.openings).sum(axis=1).max() >= 0.9 * len(mouths.frame_times_s)


def _mouth_following(speech, lead_ms: int, seconds: float, seed: int) -> MouthTracks:
    """A 25 fps mouth that opens with the speech level ``lead_ms`` before the sound has it, with
    landmark jitter: a talking face whose sound comes ``lead_ms`` late."""
    rng = np.random.default_rng(seed)
    times = np.arange(0, seconds, 1 / 25)
    level_db = speech.band_levels_db.mean(axis=0)
    at = np.clip(np.round((times + lead_ms / 1000 - speech.start_s) * 1000).astype(int), 0, len(level_db) - 1)
    opening = (level_db[at] - level_db.min()) / 100 + rng.normal(0, 0.01, len(times))
    return MouthTracks(frame_times_s=times, openings=opening[None])


@pytest.fixture(scope="module")
def two_speeches():
    """The speech of the LatentSync comparison clip, and another speaker's."""
    return (speech_activity(DEVCLIPS / "ai_latentsync_compare_1.mp4"),
            speech_activity(DEVCLIPS / "speech_face_2.mp4"))


@needs_devclips
@pytest.mark.parametrize("late_ms", [-160, 0, 120])
def test_a_mouth_that_follows_the_speech_is_answered_at_its_lag_and_not_with_other_speech(two_speeches, late_ms):
    """A mouth that follows the speech stands far above unrelated alignments at its lag; the same
    mouth with another clip's speech does not."""
    speech, other_speech = two_speeches
    mouths = _mouth_following(speech, late_ms, 7.5, seed=abs(late_ms))
    lips = match_lips(mouths, speech, 500)
    assert lips is not None and lips.weakness() is None, lips.weakness()
    assert abs(lips.offset_ms - late_ms) <= ONE_FRAME_MS / 2
    other = match_lips(MouthTracks(mouths.frame_times_s[:100], mouths.openings[:, :100]), other_speech, 500)
    assert other is not None and other.weakness() is not None


@needs_devclips
def test_a_match_on_the_few_frames_that_meet_a_short_sound_or_at_the_search_edge_is_no_evidence(two_speeches):
    """A mouth whose sound stops halfway, and a true lag at the very edge of the search range:
    strong matches, neither reported."""
    speech, _ = two_speeches
    mouths = _mouth_following(speech, 0, 7.5, seed=7)
    half = SpeechActivity(speech.start_s, speech.band_levels_db[:, :3600])
    short = match_lips(mouths, half, 500)
    assert short is not None and short.heard_share < 0.6
    assert "without sound" in short.weakness()
    edge = match_lips(_mouth_following(speech, 490, 7.5, seed=8), speech, 500)
    assert edge is not None and edge.at_search_edge and "edge" in edge.weakness()
