"""A programme that is its one source's sound as it is gets its first loudness measurement from the
source pass, not from a render of its own: the loudness plan comes out the same to 0.1 LU, with one
ffmpeg run fewer; a programme the pass cannot know (a music bed, a sync fix, an in point) is rendered.
Deliverables whose programmes and sound encodes are the same are rendered and encoded once."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.analysis.cache import AnalysisCache
from pipeline.analysis.loudness import measure_file
from pipeline.analysis.source_loudness import SourceLoudnessMeter
from pipeline.jobs.analyses import analyse_sources, probe_sources
from pipeline.jobs.loudness_plan import loudness_corrections
from pipeline.media.probe import probe_audio
from pipeline.media.runner import run_ffmpeg
from pipeline.media.source_decode import decode_source
from pipeline.media.synth import SHAPES, ClipContent, synthesize
from pipeline.model.job import job_for_clips, parse_job
from pipeline.model.presets import load_presets
from pipeline.plan.facts import JobFacts
from pipeline.plan.programme_sound import plan_programme_audio, source_sound_programmes

DEVCLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "devclips"
PRESETS = ["web-h264-1080p", "social-9x16"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """2 s of beeps over a tone at 320x180: Sora 2's 96 kHz stereo AAC, and 44.1 kHz mono."""
    folder = tmp_path_factory.mktemp("source-loudness")
    content = ClipContent(event_times_s=(Fraction(1, 2), Fraction(5, 4)))
    return {name: synthesize(replace(SHAPES[shape], width=320, height=180), folder / f"{name}.mp4", Fraction(2),
                             content=content)
            for name, shape in (("stereo96k", "sora2-1280x720-24"), ("mono44k", "mono44k-1280x720-24"))}


def _pass_facts(job) -> JobFacts:
    media = probe_sources(job)
    found = analyse_sources(job, media, load_presets(), AnalysisCache(None).get_or_compute, loudness=True)
    return JobFacts(media, source_loudness=found.loudness)


def test_the_plan_from_the_source_pass_equals_the_rendered_one(clips, loudness_runs):
    job = job_for_clips([clips["stereo96k"]], PRESETS, name="pass")
    facts = _pass_facts(job)
    assert set(source_sound_programmes(job, facts, load_presets())) == set(PRESETS)
    from_pass = loudness_corrections(job, facts, load_presets())
    runs_from_pass = len(loudness_runs)
    rendered = loudness_corrections(job, replace(facts, source_loudness={}), load_presets())
    for label in PRESETS:
        assert from_pass[label].measured_lufs == pytest.approx(rendered[label].measured_lufs, abs=0.1)
        assert from_pass[label].measured_true_peak_dbtp == pytest.approx(
            rendered[label].measured_true_peak_dbtp, abs=0.1)
        assert from_pass[label].gain_db == pytest.approx(rendered[label].gain_db, abs=0.1)
        assert from_pass[label].mode == rendered[label].mode == "linear"
    # From the pass nothing is rendered, rendered the programme once (both deliverables sound the
    # same); the beeps' peaks sit far enough under the limit that neither is encoded to check them.
    assert (runs_from_pass, len(loudness_runs) - runs_from_pass) == (0, 1)
    assert all("encoded peak not checked" in from_pass[label].reason for label in PRESETS)


@pytest.mark.parametrize("change", ["music", "sync-fix", "in-point"])
def test_a_programme_the_pass_cannot_know_is_rendered(clips, change):
    source = clips["stereo96k"]
    shot = {"source": str(source), **({"in": 0.5} if change == "in-point" else {})}
    job = parse_job({"version": 1, "name": "mix", "shots": [shot],
                     **({"music": {"source": str(clips["mono44k"])}} if change == "music" else {}),
                     "deliverables": [{"preset": "web-h264-1080p"}]}, source.parent)
    media = probe_sources(job)
    facts = JobFacts(media, sync_corrections={source: Fraction(1, 25)} if change == "sync-fix" else {})
    assert source_sound_programmes(job, facts, load_presets()) == {}


def test_deliverables_that_sound_the_same_are_encoded_once(clips, tmp_path):
    job = job_for_clips([clips["stereo96k"]], [*PRESETS, "review-540p"], name="same")
    facts = JobFacts(probe_sources(job))
    plan = plan_programme_audio(job, facts, load_presets(), tmp_path, encoded=True)
    paths = plan.paths
    assert paths["web-h264-1080p"] == paths["social-9x16"]
    assert len(set(paths.values())) == len(paths) - 1, "review-540p's sound is encoded on its own"
    run_ffmpeg(list(plan.args))
    sound = probe_audio(paths["social-9x16"])
    assert (sound.codec, sound.sample_rate, sound.channels) == ("aac", 48000, 2)
    assert sound.duration_s == pytest.approx(2, abs=0.05)


def test_a_mono_source_measures_as_the_dual_mono_programme(clips):
    from_pass, rendered = _both_ways(clips["mono44k"])
    assert from_pass.integrated_lufs == pytest.approx(rendered.integrated_lufs, abs=0.1)
    assert from_pass.true_peak_dbtp == pytest.approx(rendered.true_peak_dbtp, abs=0.1)


def _both_ways(source: Path) -> tuple | None:
    """(source pass, rendered programme) measurements of ``source`` as web-h264-1080p's programme,
    or None where its programme is not its sound as it is."""
    job = job_for_clips([source], ["web-h264-1080p"], name="both-ways")
    facts = JobFacts(probe_sources(job))
    rates = source_sound_programmes(job, facts, load_presets())
    if not rates:
        return None
    source = job.shots[0].source
    meter = SourceLoudnessMeter(facts.media[source], rates["web-h264-1080p"])
    decode_source(source, sounds=[meter])
    with tempfile.TemporaryDirectory() as scratch:
        plan = plan_programme_audio(job, facts, load_presets(), Path(scratch))
        run_ffmpeg(list(plan.args))
        return meter.result().measurement, measure_file(plan.paths["web-h264-1080p"])


@pytest.mark.slow
@pytest.mark.skipif(not DEVCLIPS.is_dir(), reason="the development clips are not here")
def test_devclips_measure_the_same_from_the_pass():
    names = ["real_vggsound_whale_shark.mp4", "speech_face_2.mp4", "ai_latentsync_compare_1.mp4",
             "mp3_in_mp4_outdoor.mp4", "ai_infinitetalk_compare_0.mp4"]
    compared = 0
    for name in names:
        measured = _both_ways(DEVCLIPS / name)
        if measured is None:
            continue
        from_pass, rendered = measured
        assert from_pass.integrated_lufs == pytest.approx(rendered.integrated_lufs, abs=0.1), name
        assert from_pass.true_peak_dbtp == pytest.approx(rendered.true_peak_dbtp, abs=0.2), name
        print(f"{name}: {from_pass.integrated_lufs:.3f} / {rendered.integrated_lufs:.3f} LUFS, "
              f"{from_pass.true_peak_dbtp:.3f} / {rendered.true_peak_dbtp:.3f} dBTP")
        compared += 1
    assert compared == len(names)
