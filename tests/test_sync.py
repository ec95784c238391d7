"""Sync analysis: offsets measured from content against known ground truth, verdicts against the
standards, declining when there is nothing to go on, container findings, drift, and the fix.

Ground truth: synthetic clips whose flashes and beeps (or bounces and knocks) happen at known,
irregular instants, with the sound shifted against the picture by a known amount.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
from fractions import Fraction
from pathlib import Path

import av
import pytest
from rich.console import Console

import postprod.cli as cli
from pipeline.errors import JobError
from pipeline.media.runner import run_ffmpeg
from pipeline.media.probe import decoded_audio_samples, probe
from pipeline.analysis.sync import (
    ATSC_IS191,
    EBU_R37,
    ITU_BT1359,
    STANDARDS,
    custom_standard,
    fix_report,
    fix_sync,
    measure_sync,
)
from pipeline.analysis.sync_fix import audio_shift_filter, fix_sync_args
from pipeline.media.synth import SHAPES, ClipContent, ClipShape, ImpactScene, resound, synthesize_impacts

GRID_SHIFTS_MS = (-500, -250, -120, -60, -40, -20, 0, 20, 40, 60, 120, 250, 500)
GRID = {
    "sora2-1280x720-24": GRID_SHIFTS_MS,
    "sora2pro-1920x1080-30": GRID_SHIFTS_MS,
    "sora2-720x1280-30": (-500, -60, -20, 40, 120),
    "sora2pro-1792x1024-24": (-250, -40, 0, 20, 60, 500),
}
"""Sora 2 and Sora 2 Pro shapes with sound, at 24 and 30 fps, with the sound shifted by these many
milliseconds: every shift at both rates, the portrait and 1792x1024 shapes on a share of them to
keep the suite fast."""
GRID_SECONDS = Fraction(2)
GRID_EVENTS_S = ("0.6", "0.95", "1.4")
"""Roughly when the flash-and-beep events happen; each is moved onto the nearest frame."""
HALF_FRAME_AT_24_MS = 21
MEDIAN_ERROR_MS = 10
VERDICT_MARGIN_MS = 10
"""Verdicts are asserted only where the true offset is this far from a limit: at the limit itself
the verdict rests on the measurement's last millisecond or two."""


def _events_on_frames(rate: Fraction) -> tuple[Fraction, ...]:
    return tuple(Fraction(round(Fraction(at) * rate)) / rate for at in GRID_EVENTS_S)


@pytest.fixture(scope="module")
def grid_clip(make_clip, clip_dir):
    """A grid clip by (shape, shift): one picture encode per shape, one sound per shift."""
    made: dict[tuple[str, int], Path] = {}

    def make(shape_name: str, shift_ms: int) -> Path:
        if (shape_name, shift_ms) not in made:
            shape = SHAPES[shape_name]
            events = _events_on_frames(shape.frame_rate)
            picture = make_clip(shape_name, GRID_SECONDS, ClipContent(event_times_s=events))
            content = ClipContent(event_times_s=events, audio_shift_s=Fraction(shift_ms, 1000))
            path = clip_dir / f"sync-grid-{shape_name}-{shift_ms:+d}.mp4"
            made[shape_name, shift_ms] = resound(picture, shape, path, GRID_SECONDS, content)
        return made[shape_name, shift_ms]

    return make


@pytest.fixture(scope="module")
def grid_reports(grid_clip):
    """Every grid clip measured, by (shape, true shift in ms)."""
    return {
        (shape, shift): measure_sync(grid_clip(shape, shift)) for shape, shifts in GRID.items() for shift in shifts
    }


def test_every_estimate_is_within_half_a_frame(grid_reports):
    misses = [f"{shape} {shift:+d} ms: {report.offset_ms} ({report.reason})"
              for (shape, shift), report in grid_reports.items()
              if report.offset_ms is None or abs(report.offset_ms - shift) > HALF_FRAME_AT_24_MS]
    assert not misses, misses


def test_median_error_is_small(grid_reports):
    errors = [abs(report.offset_ms - shift) for (_, shift), report in grid_reports.items()]
    assert statistics.median(errors) <= MEDIAN_ERROR_MS
    assert min(report.confidence for report in grid_reports.values()) >= 1.8


@pytest.mark.parametrize("standard", [EBU_R37, ITU_BT1359, ATSC_IS191], ids=lambda standard: standard.name)
def test_verdicts_follow_the_standard(grid_reports, standard):
    wrong = []
    for (shape, shift), report in grid_reports.items():
        if min(abs(shift + standard.max_lead_ms), abs(shift - standard.max_lag_ms)) < VERDICT_MARGIN_MS:
            continue
        expected = "in_sync" if -standard.max_lead_ms <= shift <= standard.max_lag_ms else "out_of_sync"
        verdict = report.verdict if standard == report.standard else standard.judge(report.offset_ms)
        if verdict != expected:
            wrong.append(f"{shape} {shift:+d} ms measured {report.offset_ms}: {verdict}")
    assert not wrong, wrong


def test_edit_lists_are_not_offsets(grid_clip, tmp_path):
    """x264's B-frames delay the video and AAC primes the audio; both are edit lists in the MP4.
    Measured in presentation time, neither shows as an offset."""
    source = grid_clip("sora2-1280x720-24", 0)
    reordered = tmp_path / "b-frames.mp4"
    run_ffmpeg(["-i", str(source), "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-c:a", "copy",
                str(reordered)])
    with av.open(str(reordered)) as container:
        first_packet = next(container.demux(video=0))
    assert first_packet.dts < first_packet.pts, "the re-encode should hold reordered B-frames"
    assert abs(measure_sync(reordered).offset_ms) <= HALF_FRAME_AT_24_MS


def test_standards_judge_their_limits_inclusively():
    outside_inside_inside_outside = ["out_of_sync", "in_sync", "in_sync", "out_of_sync"]
    assert [EBU_R37.judge(ms) for ms in (-41, -40, 60, 61)] == outside_inside_inside_outside
    assert [ITU_BT1359.judge(ms) for ms in (-91, -90, 185, 186)] == outside_inside_inside_outside
    assert [ATSC_IS191.judge(ms) for ms in (-16, -15, 45, 46)] == outside_inside_inside_outside
    limits = custom_standard(max_lead_ms=5, max_lag_ms=10)
    assert (limits.judge(-5), limits.judge(11)) == ("in_sync", "out_of_sync")
    with pytest.raises(JobError):
        custom_standard(max_lead_ms=-1, max_lag_ms=10)
    assert sorted(STANDARDS) == ["atsc-is191", "ebu-r37", "itu-bt1359"]


# Declining -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "content", "reason"),
    [
        ("sora2pro-1024x1792-30", ClipContent(), "no audio stream"),
        ("sora2-1280x720-24", ClipContent(silent_audio=True), "digital silence"),
        ("sora2-1280x720-24", ClipContent(still_picture=True), "the picture is static"),
    ],
    ids=["no-audio", "digital-silence", "static-picture"],
)
def test_nothing_to_go_on_is_undetermined(make_clip, shape, content, reason):
    report = measure_sync(make_clip(shape, Fraction(1), content))
    assert report.verdict == "undetermined"
    assert report.offset_ms is None and report.drift_ms_per_min is None
    assert reason in report.reason


# Harder content: bounces heard as knocks, noise, a silent distractor, murmurs -------------------------

IMPACT_SHAPES = (ClipShape("impacts-480x270-24", 480, 270, Fraction(24)),
                 ClipShape("impacts-480x270-30", 480, 270, Fraction(30)))
IMPACT_SECONDS = Fraction(5)


def _impact_scene(seed: int, shift_ms: int, rate: Fraction) -> ImpactScene:
    """Bounces 0.35-1.1 s apart and murmurs at random, on a seeded, repeatable draw."""
    draw = random.Random(seed)
    impacts, at = [], draw.uniform(0.3, 0.9)
    while (at := at + draw.uniform(0.35, 1.1)) < float(IMPACT_SECONDS) - 0.6:
        impacts.append(Fraction(round(at * rate)) / rate)
    murmurs = tuple(Fraction(round(draw.uniform(0.2, 4.5), 3)) for _ in range(draw.randint(2, 6)))
    return ImpactScene(tuple(impacts), Fraction(shift_ms, 1000), murmurs,
                       distractor_turn_s=Fraction(draw.choice([5, 7, 9]), 10), noise_seed=seed)


IMPACT_CASES = [(seed, shift) for seed, shift in enumerate((-300, -120, -40, 0, 20, 80, 200, 450))]


@pytest.fixture(scope="module")
def impact_clips(clip_dir):
    clips = {}
    for seed, shift in IMPACT_CASES:
        shape = IMPACT_SHAPES[seed % 2]
        path = clip_dir / f"sync-impacts-{seed}.mp4"
        scene = _impact_scene(seed, shift, shape.frame_rate)
        clips[seed] = synthesize_impacts(shape, path, IMPACT_SECONDS, scene)
    return clips


def test_harder_content_is_measured_right_or_declined(impact_clips):
    """Most of these are declined: the silent distractor and the murmurs make rival alignments
    nearly as good as the true one, and a guess there would too often be wrong."""
    reports = {shift: measure_sync(impact_clips[seed]) for seed, shift in IMPACT_CASES}
    accepted = {shift: report.offset_ms for shift, report in reports.items() if report.offset_ms is not None}
    wrong = {shift: offset for shift, offset in accepted.items() if abs(offset - shift) > HALF_FRAME_AT_24_MS}
    assert not wrong, f"confident wrong offsets: {wrong}"
    assert accepted, {shift: report.reason for shift, report in reports.items()}
    assert all("ambiguous" in report.reason for report in reports.values() if report.offset_ms is None)


def test_sound_from_another_clip_is_undetermined(impact_clips, tmp_path):
    """A picture with some other clip's sound has no true offset: any peak is a wrong peak. The
    first pair is the worst found: the knocks fall on the distractor's half-second rhythm."""
    for picture_seed, sound_seed in ((0, 7), (2, 5), (4, 3), (6, 1)):
        mismatched = tmp_path / f"mismatched-{picture_seed}-{sound_seed}.mp4"
        run_ffmpeg(["-i", str(impact_clips[picture_seed]), "-i", str(impact_clips[sound_seed]),
                    "-map", "0:v", "-map", "1:a", "-c", "copy", "-shortest", str(mismatched)])
        report = measure_sync(mismatched)
        assert report.verdict == "undetermined", (picture_seed, sound_seed, report.offset_ms)


# Drift and container findings ----------------------------------------------------------------------

DRIFT_SHAPE = ClipShape("drift-320x180-24", 320, 180, Fraction(24), audio_rate=48000)
DRIFT_SECONDS = Fraction(12)


def _irregular_events(rate: Fraction, seconds: Fraction) -> tuple[Fraction, ...]:
    draw = random.Random(7)
    events, at = [], 0.4
    while (at := at + draw.uniform(0.45, 0.95)) < float(seconds) - 0.3:
        events.append(Fraction(round(at * rate)) / rate)
    return tuple(events)


@pytest.mark.parametrize("drift_ms_per_min", [0, 60], ids=["steady", "ntsc-drift"])
def test_drift_is_reported_only_when_real(make_clip, drift_ms_per_min):
    """60 ms a minute is what a 24000/1001 clip played at 24 fps gathers: 12 ms over this clip."""
    content = ClipContent(event_times_s=_irregular_events(DRIFT_SHAPE.frame_rate, DRIFT_SECONDS),
                          audio_drift_ms_per_min=Fraction(drift_ms_per_min))
    report = measure_sync(make_clip(DRIFT_SHAPE, DRIFT_SECONDS, content))
    assert report.verdict == "in_sync"
    if drift_ms_per_min:
        assert report.drift_ms_per_min == pytest.approx(drift_ms_per_min, abs=15)
    else:
        assert report.drift_ms_per_min is None


def test_late_audio_stream_is_a_container_finding_and_a_content_offset(make_clip):
    """Sound written 200 ms late: the stream starts one AAC frame of priming (21.3 ms) earlier."""
    report = measure_sync(make_clip("late-audio-1280x720-24", seconds=Fraction(2)))
    assert report.container.audio_start_offset_ms == pytest.approx(200 - 1024 / 48, abs=0.1)
    assert any("ms after the video stream" in note for note in report.container.notes)
    assert report.offset_ms == pytest.approx(200, abs=HALF_FRAME_AT_24_MS)
    assert report.verdict == "out_of_sync"


def test_frame_rate_label_and_long_audio_are_container_findings(tmp_path):
    """Frames timed at 24000/1001 in a bitstream that says 24, and sound running 500 ms past the end."""
    timed = tmp_path / "ntsc.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x90:r=24000/1001:d=1",
                "-f", "lavfi", "-i", "sine=f=440:r=48000:d=1.5",
                "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(timed)])
    labelled = tmp_path / "labelled-24.mp4"
    run_ffmpeg(["-i", str(timed), "-c", "copy", "-bsf:v", "h264_metadata=tick_rate=48", str(labelled)])
    container = measure_sync(labelled).container
    assert container.nominal_frame_rate == 24
    assert container.measured_frame_rate == Fraction(24000, 1001)
    assert any("drifts 60.0 ms per minute" in note for note in container.notes)
    assert container.audio_length_difference_ms == pytest.approx(500, abs=25)
    assert any("longer than the picture" in note for note in container.notes)


# The fix --------------------------------------------------------------------------------------------


def _video_packets(path: Path) -> list[tuple[bytes, int | None, int | None]]:
    with av.open(str(path)) as container:
        return [(bytes(packet), packet.pts, packet.dts)
                for packet in container.demux(container.streams.video[0]) if packet.size]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("shift_ms", [120, -250])
def test_fix_puts_the_sound_in_place_and_copies_the_picture(grid_clip, tmp_path, shift_ms):
    source = grid_clip("sora2-1280x720-24", shift_ms)
    before = _sha256(source)
    report = measure_sync(source)
    fixed = fix_sync(source, report.offset_ms, tmp_path / "fixed.mp4")

    assert abs(measure_sync(fixed).offset_ms) <= MEDIAN_ERROR_MS
    assert _video_packets(fixed) == _video_packets(source)
    source_info, fixed_info = probe(source), probe(fixed)
    assert fixed_info.video.duration_s == source_info.video.duration_s
    assert fixed_info.audio.start_time_s == source_info.audio.start_time_s
    assert (fixed_info.audio.codec, fixed_info.audio.sample_rate, fixed_info.audio.layout) == (
        source_info.audio.codec, source_info.audio.sample_rate, source_info.audio.layout)
    assert abs(decoded_audio_samples(fixed) - decoded_audio_samples(source)) <= 1024
    assert _sha256(source) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fixed.mp4"]


def test_fix_refuses_to_overwrite_its_input(grid_clip):
    source = grid_clip("sora2-1280x720-24", 120)
    with pytest.raises(JobError, match="overwrite its input"):
        fix_sync(source, 120, source)


def test_shift_filters_are_sample_accurate():
    # 120 ms at 96 kHz is 11520 samples; 250 ms at 44.1 kHz is 11025.
    assert audio_shift_filter(120, 96000, 192000) == (
        "atrim=start_sample=11520,asetpts=PTS-11520/SR/TB,apad=pad_len=11520")
    assert audio_shift_filter(-250, 44100, 88200) == "adelay=delays=11025S:all=1,atrim=end_sample=88200"
    assert audio_shift_filter(0, 48000, 96000) == "anull"


def test_fix_arguments_copy_video_and_match_the_source_audio(grid_clip):
    source = grid_clip("sora2-1280x720-24", 120)
    args = fix_sync_args(source, probe(source), 120, 192000, Path("/out/.fixed.mp4.partial"),
                         muxer="mp4", audio_bit_rate=192000, faststart=False)
    assert args == [
        "-i", str(source), "-map", "0:v:0", "-map", "0:a:0", "-map_metadata", "0", "-c:v", "copy",
        "-filter:a", "atrim=start_sample=11520,asetpts=PTS-11520/SR/TB,apad=pad_len=11520",
        "-c:a", "aac", "-ar", "96000", "-ch_layout", "stereo", "-b:a", "192000", "-f", "mp4", "/out/.fixed.mp4.partial",
    ]  # fmt: skip


# Command line -----------------------------------------------------------------------------------------


def test_cli_prints_the_report_as_json(grid_clip, capsys):
    source = grid_clip("sora2-1280x720-24", 40)
    assert cli.main(["sync", str(source), "--json", "--standard", "atsc-is191"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {"offset_ms", "confidence", "verdict", "standard", "container", "drift_ms_per_min", "method",
            "convention"} <= set(document)
    assert document["offset_ms"] == pytest.approx(40, abs=HALF_FRAME_AT_24_MS)
    assert document["standard"]["name"] == "atsc-is191"
    assert document["verdict"] == "in_sync"
    assert "offset_ms > 0" in document["convention"]


def test_cli_fixes_several_inputs_into_a_folder(grid_clip, tmp_path, capsys):
    late, early = grid_clip("sora2-1280x720-24", 120), grid_clip("sora2-1280x720-24", -250)
    out = tmp_path / "fixed"
    assert cli.main(["sync", str(late), str(early), "--fix", str(out), "--json"]) == 0
    documents = json.loads(capsys.readouterr().out)
    fixed_paths = [document["fixed"]["path"] for document in documents]
    assert fixed_paths == [str(out / late.name), str(out / early.name)]
    assert all(abs(document["fixed"]["offset_ms"]) <= MEDIAN_ERROR_MS for document in documents)


def test_cli_bad_media_exits_3(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "stderr", Console(stderr=True, width=10_000))
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a clip\n", encoding="utf-8")
    assert cli.main(["sync", str(notes)]) == 3
    assert f"postprod: error: {notes}" in capsys.readouterr().err


def test_fix_takes_out_drift_by_resampling(make_clip, tmp_path):
    """60 ms a minute of drift on sound starting 40 ms late: after the fix neither remains."""
    content = ClipContent(event_times_s=_irregular_events(DRIFT_SHAPE.frame_rate, DRIFT_SECONDS),
                          audio_shift_s=Fraction(40, 1000), audio_drift_ms_per_min=Fraction(60))
    clip = make_clip(DRIFT_SHAPE, DRIFT_SECONDS, content)
    report = measure_sync(clip)
    assert report.drift_ms_per_min == pytest.approx(60, abs=15)
    assert report.offset_at_start_ms == pytest.approx(40, abs=10)

    fixed = measure_sync(fix_report(report, tmp_path / "fixed.mp4"))

    assert abs(fixed.offset_ms) <= 10
    assert fixed.drift_ms_per_min is None or abs(fixed.drift_ms_per_min) <= 15
    assert probe(tmp_path / "fixed.mp4").video.frame_count == probe(clip).video.frame_count


def test_estimates_follow_an_injected_shift(impact_clips, tmp_path):
    """Shift invariance on the hardest clips here (no natural footage can be fetched): moving one
    clip's sound by a known amount moves the estimate by that amount, or the estimate declines."""
    base = {seed: measure_sync(impact_clips[seed]) for seed, _ in IMPACT_CASES}
    measured = {seed: report.offset_ms for seed, report in base.items() if report.offset_ms is not None}
    assert measured, "no impact clip was measurable"
    followed = []
    for seed, offset in list(measured.items())[:2]:
        for injected_ms in (-80, 150):
            # Fixing an offset of -injected moves the sound by +injected.
            shifted = fix_sync(impact_clips[seed], -injected_ms, tmp_path / f"shift-{seed}-{injected_ms}.mp4")
            estimate = measure_sync(shifted).offset_ms
            if estimate is not None:
                assert estimate - offset == pytest.approx(injected_ms, abs=HALF_FRAME_AT_24_MS), (seed, injected_ms)
                followed.append((seed, injected_ms))
    assert followed, "every shifted clip was declined"
