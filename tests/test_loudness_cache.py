"""The loudness plan cached by content: a programme whose sound chain and sound encode are unchanged
(another video setting, the clip renamed) is not measured again and gets the same corrections;
anything that changes the sound (the music bed's gain, a sync correction, the target, the sound
encoder's bitrate) is measured again."""

from __future__ import annotations

import shutil
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.analysis.cache import AnalysisCache
from pipeline.jobs import loudness_plan
from pipeline.jobs.analyses import probe_music, probe_sources
from pipeline.jobs.loudness_plan import cached_loudness_corrections
from pipeline.media.synth import SHAPES, ClipContent, synthesize
from pipeline.model.job import parse_job
from pipeline.model.presets import load_presets
from pipeline.plan.facts import JobFacts

SMALL_SHAPE = replace(SHAPES["mono44k-1280x720-24"], width=320, height=180)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 2 s clip whose sound has beeps to measure."""
    content = ClipContent(event_times_s=(Fraction(1, 2), Fraction(5, 4)))
    return synthesize(SMALL_SHAPE, tmp_path_factory.mktemp("loudness-cache") / "clip.mp4", Fraction(2),
                      content=content)


@pytest.fixture
def loudness_runs(monkeypatch) -> list:
    """Every ffmpeg run of the loudness plan (programme renders and codec-check encodes)."""
    runs = []
    original = loudness_plan.run_ffmpeg

    def counted(*args, **kwargs):
        runs.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(loudness_plan, "run_ffmpeg", counted)
    return runs


def _job(source: Path, tmp_path: Path, crf: int = 20, music_gain_db: float = -12.0, lufs: float = -14.0,
         bitrate: str = "256k"):
    overrides = {"video": {"width": 320, "height": 180, "options": {"preset": "veryfast", "crf": crf}},
                 "audio": {"options": {"b": bitrate}}, "loudness": {"integrated_lufs": lufs}}
    return parse_job({"version": 1, "name": "cached-loudness", "shots": [{"source": str(source)}],
                      "music": {"source": str(source), "gain_db": music_gain_db},
                      "deliverables": [{"preset": "web-h264-1080p", "overrides": overrides}]}, tmp_path)


def _measure(job, cache: AnalysisCache, sync_ms: int = 0):
    media = probe_sources(job)
    corrections = {path: Fraction(sync_ms, 1000) for path in media} if sync_ms else {}
    facts = JobFacts(media, probe_music(job), corrections)
    return cached_loudness_corrections(job, facts, load_presets(), cache.get_or_compute)


def test_an_unchanged_sound_chain_is_measured_once(clip, loudness_runs, tmp_path):
    cache = AnalysisCache(tmp_path / "cache")
    first = _measure(_job(clip, tmp_path), cache)
    measured = len(loudness_runs)
    assert measured >= 1, "the programme render"
    renamed = tmp_path / "renamed.mp4"
    shutil.copyfile(clip, renamed)
    # A new job's cache view (a rerun) with another video setting and the clip under another name.
    rerun = AnalysisCache(tmp_path / "cache")
    again = _measure(_job(renamed, tmp_path, crf=28), rerun)
    assert len(loudness_runs) == measured, "the rerun measured the programme again"
    assert again == first and first["web-h264-1080p"].applies
    assert [(record.source, record.analysis, record.from_cache) for record in rerun.records] == [
        (renamed, "loudness", True)]


@pytest.mark.parametrize("change", [{"music_gain_db": -6.0}, {"lufs": -16.0}, {"bitrate": "96k"}, {"sync_ms": 40}],
                         ids=["music-gain", "target", "audio-bitrate", "sync-correction"])
def test_a_change_to_the_sound_is_measured_again(clip, loudness_runs, tmp_path, change):
    cache = AnalysisCache(tmp_path / "cache")
    first = _measure(_job(clip, tmp_path), cache)
    measured = len(loudness_runs)
    sync_ms = change.pop("sync_ms", 0)
    rerun = AnalysisCache(tmp_path / "cache")
    again = _measure(_job(clip, tmp_path, **change), rerun, sync_ms)
    assert len(loudness_runs) > measured
    assert [record.from_cache for record in rerun.records] == [False]
    if "music_gain_db" in change:
        # A louder bed makes a louder programme, which the new measurement sees.
        assert again["web-h264-1080p"].measured_lufs > first["web-h264-1080p"].measured_lufs
    if "lufs" in change:
        assert again["web-h264-1080p"].gain_db == pytest.approx(first["web-h264-1080p"].gain_db - 2.0, abs=0.05)
