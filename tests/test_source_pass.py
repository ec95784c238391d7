"""One decode per source: the pass hands each analysis what it declared (frames at its rate and
size, sound at its rate and layout), a job with sync, smart reframing and a cut-down decodes each
source's picture once and its sound once for its analyses, the lips included, a cached source not
at all, and the shared pass finds exactly what each analysis finds on its own."""

from __future__ import annotations

from dataclasses import fields, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.analysis.cache import AnalysisCache
from pipeline.analysis.lipsync import follow_mouths, landmark_model_path, speech_activity
from pipeline.analysis.onsets import PictureEventsMeter, SoundOnsetsMeter, picture_events, sound_onsets
from pipeline.analysis.reframe import analyse, camera_path
from pipeline.analysis.scenes import CutDetector, detect_cuts
from pipeline.analysis.sound_activity import SoundActivityMeter, sound_activity
from pipeline.analysis.source_pass import MOUTHS, SPEECH_ACTIVITY, SourceNeeds, analyse_source
from pipeline.analysis.sync import measure_sync
from pipeline.errors import MediaError
from pipeline.jobs.analyses import analyse_sources, check_sync
from pipeline.jobs.sequence import plan_with_analysis
from pipeline.jobs.steps import DirectSteps
from pipeline.plan.facts import JobFacts
from pipeline.media.picture_thread import PictureThread
from pipeline.media.probe import probe
from pipeline.media.runner import run_ffmpeg
from pipeline.media.source_decode import (
    DecodeTally, Image, PictureNeed, SoundNeed, decode_source, decode_tally, reset_decode_tally,
)
from pipeline.media.synth import SHAPES, ClipContent, synthesize
from pipeline.model.job import parse_job
from pipeline.model.presets import load_presets

RATE, SECONDS = 24, 3
DEVCLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "devclips"


@pytest.fixture(scope="module")
def cut_clip(clip_dir) -> Path:
    """3 s at 24 fps, 320x180: a moving pattern cutting at 1.5 s to another look, under a tone
    with 100 ms bursts every 0.5 s, 48 kHz stereo."""
    path = clip_dir / "pass-cut.mp4"
    half = SECONDS / 2
    graph = (f"testsrc2=s=320x180:r={RATE}:d={half}[a];testsrc2=s=320x180:r={RATE}:d={half},negate[b];"
             "[a][b]concat=n=2:v=1:a=0[v]")
    bursts = "0.4*sin(2*PI*440*t)*lt(mod(t,0.5),0.1)"
    run_ffmpeg(["-filter_complex", graph, "-f", "lavfi", "-i", f"aevalsrc='{bursts}|{bursts}':s=48000:d={SECONDS}",
                "-map", "[v]", "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                "-c:a", "aac", str(path)])
    return path


class _Frames:
    """Records what a picture consumer is handed."""

    def __init__(self, need: PictureNeed) -> None:
        self.picture_need = need
        self.indices: list[int] = []
        self.times: list[float | None] = []
        self.images: list[tuple[np.ndarray, ...]] = []

    def add_picture(self, index, time_s, images):
        self.indices.append(index)
        self.times.append(time_s)
        self.images.append(images)


class _Samples:
    """Records what a sound consumer is handed."""

    def __init__(self, need: SoundNeed) -> None:
        self.sound_need = need
        self.blocks: list[np.ndarray] = []

    def add_sound(self, samples, time_s):
        self.blocks.append(samples)


def test_each_analysis_gets_frames_and_sound_as_it_declared_them(cut_clip):
    luma = _Frames(PictureNeed((Image("luma"),)))
    luma_again = _Frames(PictureNeed((Image("luma"),)))
    sampled = _Frames(PictureNeed((Image("rgb24", 64, 36), Image("luma")), every=5))
    mono = _Samples(SoundNeed(16000))
    stereo = _Samples(SoundNeed(48000, "stereo"))
    reset_decode_tally()
    decode_source(cut_clip, [luma, luma_again, sampled], [mono, stereo])
    assert decode_tally() == {cut_clip.resolve(): DecodeTally(picture=1, sound=1)}

    assert luma.indices == list(range(RATE * SECONDS))
    assert luma.times == pytest.approx(np.arange(RATE * SECONDS) / RATE)
    assert {image.shape for (image,) in luma.images} == {(180, 320)}
    # Two analyses asking for the same form share one conversion of the frame.
    assert all(a[0] is b[0] for a, b in zip(luma.images, luma_again.images, strict=True))
    assert sampled.indices == list(range(0, RATE * SECONDS, 5))
    assert {(rgb.shape, grey.shape) for rgb, grey in sampled.images} == {((36, 64, 3), (180, 320))}
    # The cut to the negated look at 1.5 s: the picture really is the decoded one.
    before, after = sampled.images[6][0], sampled.images[8][0]  # frames 30 and 40
    assert abs(float(before.mean()) + float(after.mean()) - 255) < 40

    mono_samples = np.concatenate(mono.blocks, axis=1)
    stereo_samples = np.concatenate(stereo.blocks, axis=1)
    assert mono_samples.shape[0] == 1 and stereo_samples.shape[0] == 2
    assert mono_samples.shape[1] == pytest.approx(16000 * SECONDS, abs=1100)  # AAC priming and padding
    assert stereo_samples.shape[1] == pytest.approx(48000 * SECONDS, abs=3200)
    # The bursts: 100 ms of a 0.4 tone on both channels every 0.5 s, silence between; the mono mix
    # adds the channels at -3 dB each (ffmpeg's downmix).
    burst = stereo_samples[:, 48000 * 2 + 1200: 48000 * 2 + 3600]
    assert np.abs(burst).max(axis=1) == pytest.approx([0.4, 0.4], abs=0.03)
    assert np.abs(mono_samples[0, 16000 * 2 + 400: 16000 * 2 + 1200]).max() == pytest.approx(0.4 * 2**0.5, abs=0.04)
    assert np.abs(mono_samples[0, 16000 * 2 + 3200: 16000 * 2 + 7200]).max() < 0.01


def test_the_shared_pass_finds_what_each_analysis_finds_alone(cut_clip):
    media = probe(cut_clip)
    alone_reframe = analyse(cut_clip, media)
    alone_sound = sound_activity(cut_clip, media)
    reset_decode_tally()
    facts = analyse_source(cut_clip, media, SourceNeeds(reframe=True, sound_activity=True), AnalysisCache(None).get_or_compute)
    assert decode_tally() == {cut_clip.resolve(): DecodeTally(picture=1, sound=1)}

    assert facts.reframe.cut_times_s == alone_reframe.cut_times_s == (1.5,)
    assert detect_cuts(cut_clip).cut_frames == (36,)
    for field in ("sample_times_s", "subject_boxes", "subject_importance", "activity"):
        np.testing.assert_array_equal(getattr(facts.reframe, field), getattr(alone_reframe, field))
    assert facts.reframe.frame_count == RATE * SECONDS and facts.reframe.active == alone_reframe.active
    np.testing.assert_array_equal(facts.sound_activity.level_db, alone_sound.level_db)
    np.testing.assert_array_equal(facts.sound_activity.onset_times_s, alone_sound.onset_times_s)
    assert facts.sound_activity.onset_times_s == pytest.approx(np.arange(0, SECONDS, 0.5), abs=0.02)


def test_a_job_with_sync_reframing_and_a_cutdown_decodes_each_source_once(cut_clip, clip_dir, tmp_path):
    synced = synthesize(replace(SHAPES["mono44k-1280x720-24"], width=320, height=180), clip_dir / "pass-sync.mp4",
                        Fraction(2), content=ClipContent(event_times_s=(Fraction(1, 2), Fraction(5, 4))))
    job = parse_job({
        "version": 1, "name": "once", "shots": [{"source": str(cut_clip)}, {"source": str(synced)}],
        "sync": {"policy": "report"},
        "deliverables": [{"preset": "tiktok-9x16", "cutdowns": [2],
                          "overrides": {"video": {"fit": "smart", "width": 90, "height": 160}}}],
    }, tmp_path)
    presets = load_presets()

    def analyse_job(cache: AnalysisCache):
        media = {path: probe(path) for path in (cut_clip, synced)}
        reset_decode_tally()
        found = analyse_sources(job, media, presets, cache.get_or_compute, sync=True)
        reports, _ = check_sync(job, media, cache.get_or_compute, found.sync_facts)
        plan = plan_with_analysis(job, JobFacts(media, reframe=found.reframe, sound_activity=found.sound_activity),
                                  presets, tmp_path / "out", DirectSteps(cache), measure_loudness=False)
        return decode_tally(), reports, found.reframe, plan

    # Sync takes everything it matches from the pass: where the events decide (the synthetic
    # clip's) and where they do not and the lips are asked (the cut clip's tone bursts come every
    # 0.5 s whatever the picture does), nothing decodes a source again.
    cache = AnalysisCache(tmp_path / "cache")
    tally, reports, analyses, plan = analyse_job(cache)
    assert reports[synced].method in {"event_pairs", "event_correlation"}
    assert reports[cut_clip].verdict == "undetermined" and "lips:" in reports[cut_clip].reason
    assert tally == {synced.resolve(): DecodeTally(1, 1), cut_clip.resolve(): DecodeTally(1, 1)}
    assert {(record.source, record.analysis) for record in cache.records} >= {
        (path, name) for path in (synced, cut_clip) for name in (MOUTHS, SPEECH_ACTIVITY)}
    for path, report in reports.items():
        reset_decode_tally()
        alone = measure_sync(path)  # stand-alone, lips included: one decode too
        assert decode_tally() == {path.resolve(): DecodeTally(1, 1)}
        assert (report.offset_ms, report.verdict, report.method) == (alone.offset_ms, alone.verdict, alone.method)
    cut = next(render for render in plan.renders if render.outputs[0].deliverable.endswith("-2s"))
    assert cut.outputs[0].expected.frame_count == 2 * RATE

    # Cached: the second job decodes nothing for its analyses, and plans the same crop and cut.
    tally, cached_reports, cached, cached_plan = analyse_job(AnalysisCache(tmp_path / "cache"))
    assert tally == {}
    assert {path: report.offset_ms for path, report in cached_reports.items()} == {
        path: report.offset_ms for path, report in reports.items()}
    assert camera_path(cached[cut_clip], 9 / 16).shots == camera_path(analyses[cut_clip], 9 / 16).shots
    assert [render.args[1:] for render in cached_plan.renders] == [render.args[1:] for render in plan.renders]


def test_a_stream_missing_or_not_decoding_is_a_media_error_naming_the_file(clip_dir, tmp_path):
    silent = clip_dir / "pass-silent.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x90:r=24:d=1", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", str(silent)])
    with pytest.raises(MediaError, match=r"pass-silent\.mp4.*no audio stream"):
        decode_source(silent, sounds=[_Samples(SoundNeed(16000))])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(silent.read_bytes()[:2000])
    with pytest.raises(MediaError, match=r"broken\.mp4"):
        decode_source(broken, [_Frames(PictureNeed((Image("luma"),)))])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ai_infinitetalk_compare_0.mp4", "real_vggsound_whale_shark.mp4"])
def test_on_real_clips_the_shared_pass_matches_each_analysis_alone(name):
    path = _devclip(name)
    media = probe(path)
    facts = analyse_source(path, media, SourceNeeds(reframe=True, sound_activity=True), AnalysisCache(None).get_or_compute)
    alone = analyse(path, media)
    assert facts.reframe.cut_times_s == alone.cut_times_s
    np.testing.assert_array_equal(facts.reframe.subject_boxes, alone.subject_boxes)
    np.testing.assert_array_equal(facts.sound_activity.onset_times_s, sound_activity(path, media).onset_times_s)


def _devclip(name: str) -> Path:
    """The development clip ``name``; the test is skipped where the clips are not present."""
    path = DEVCLIPS / name
    if not path.exists():
        pytest.skip(f"development clips not present ({DEVCLIPS})")
    return path

def _first_audio_frame_time_s(path: Path) -> float:
    with av.open(str(path)) as container:
        return next(frame.time for frame in container.decode(audio=0) if frame.time is not None)


@pytest.mark.parametrize("codec", ["aac", "libmp3lame"])
def test_the_sync_events_of_the_shared_pass_are_those_measured_alone(cut_clip, clip_dir, codec):
    path = clip_dir / f"pass-events-{codec}.mp4"
    run_ffmpeg(["-i", str(cut_clip), "-c:v", "copy", "-c:a", codec, str(path)])
    # The events take the form the cuts and the sound activity take: one conversion, one resample.
    assert PictureEventsMeter.picture_need == CutDetector.picture_need
    assert SoundOnsetsMeter.sound_need == SoundActivityMeter.sound_need
    media = probe(path)
    needs = SourceNeeds(reframe=True, sound_activity=True, sync=True)
    facts = analyse_source(path, media, needs, AnalysisCache(None).get_or_compute)
    alone_picture, alone_sound = picture_events(path), sound_onsets(path)

    np.testing.assert_array_equal(facts.picture_events.frame_times_s, alone_picture.frame_times_s)
    np.testing.assert_array_equal(facts.picture_events.strength, alone_picture.strength)
    assert facts.picture_events.largest_change == alone_picture.largest_change
    np.testing.assert_array_equal(facts.sound_onsets.strength, alone_sound.strength)
    assert (facts.sound_onsets.start_s, facts.sound_onsets.peak_level) == (alone_sound.start_s, alone_sound.peak_level)
    # The envelope starts where the first decoded sound does (plus the flux's dating), even where
    # the resampler holds the first frame back (MP3), and the strongest picture event is the cut.
    assert facts.sound_onsets.start_s == _first_audio_frame_time_s(path) + (16 + 128) / 16000
    assert facts.picture_events.frame_times_s[np.argmax(facts.picture_events.strength)] == pytest.approx(1.5)
    report = measure_sync(path, media, facts=facts)
    alone = measure_sync(path, media)
    assert (report.offset_ms, report.verdict, report.reason) == (alone.offset_ms, alone.verdict, alone.reason)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["speech_face_2.mp4", "mp3_in_mp4_outdoor.mp4", "real_vggsound_whale_shark.mp4"])
def test_on_real_clips_sync_from_the_pass_matches_sync_alone(name):
    path = _devclip(name)
    media = probe(path)
    facts = analyse_source(path, media, SourceNeeds(reframe=True, sync=True), AnalysisCache(None).get_or_compute)
    alone_picture, alone_sound = picture_events(path), sound_onsets(path)
    np.testing.assert_array_equal(facts.picture_events.strength, alone_picture.strength)
    np.testing.assert_array_equal(facts.sound_onsets.strength, alone_sound.strength)
    assert facts.sound_onsets.start_s == alone_sound.start_s == _first_audio_frame_time_s(path) + (16 + 128) / 16000
    if facts.mouths is not None:  # the face models are installed
        with av.open(str(path)) as container:
            alone_mouths = follow_mouths(container.decode(video=0), media.video.rotation % 360)
        _assert_same_fields(facts.mouths, alone_mouths)
    _assert_same_fields(facts.speech_activity, speech_activity(path))
    report = measure_sync(path, media, facts=facts)
    alone = measure_sync(path, media)
    assert (report.offset_ms, report.verdict, report.method) == (alone.offset_ms, alone.verdict, alone.method)


def test_a_picture_thread_sees_every_frame_in_order_and_hands_back_what_the_analysis_raised(cut_clip):
    decoded = []
    with av.open(str(cut_clip)) as container:
        decoded = [frame.time for frame in container.decode(video=0)]
    with PictureThread(lambda frames: [frame.time for frame in frames], name="times") as times:
        decode_source(cut_clip, [times])
    assert times.result() == decoded and len(decoded) == RATE * SECONDS

    def fails_at_frame_10(frames):
        for number, _ in enumerate(frames):
            if number == 10:
                raise ValueError("analysis failed at frame 10")

    with PictureThread(fails_at_frame_10, name="fails") as failing:
        decode_source(cut_clip, [failing])  # the frames after the failure are drained, not waited for
    with pytest.raises(ValueError, match="frame 10"):
        failing.result()
    with PictureThread(lambda frames: "looked at none", name="early") as early:
        decode_source(cut_clip, [early])
    assert early.result() == "looked at none"


def test_the_lips_come_from_the_one_decode_and_match_the_face_tracker_fed_alone(clip_dir):
    """Two seconds of a real 720p talking clip: one picture and one sound decode give the sync
    check all four analyses, the mouths exactly those of the tracker fed by a decode of its own."""
    source = _devclip("ai_latentsync_compare_1.mp4")
    if landmark_model_path() is None:
        pytest.skip("face models not installed")
    path = clip_dir / "pass-talking-2s.mp4"
    run_ffmpeg(["-i", str(source), "-t", "2", "-c", "copy", str(path)])
    media = probe(path)
    reset_decode_tally()
    facts = analyse_source(path, media, SourceNeeds(sync=True), AnalysisCache(None).get_or_compute)
    assert decode_tally() == {path.resolve(): DecodeTally(1, 1)}
    with av.open(str(path)) as container:
        alone = follow_mouths(container.decode(video=0))
    # One face, seen in nearly every one of the 2 s at 25 fps (the copy keeps a frame or two more).
    assert len(facts.mouths.openings) == 1 and np.isfinite(facts.mouths.openings).sum() >= 45
    _assert_same_fields(facts.mouths, alone)
    _assert_same_fields(facts.speech_activity, speech_activity(path))


def _assert_same_fields(found, expected) -> None:
    """Every field of two analysis results (numbers or arrays) equal, NaN where NaN."""
    for field in fields(expected):
        np.testing.assert_array_equal(getattr(found, field.name), getattr(expected, field.name), err_msg=field.name)
