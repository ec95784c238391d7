"""Analyses cached by content: a rerun with a preset changed, or a second job over the same clip,
decodes nothing for sync, reframing or cut-down sound activity and measures no programme loudness;
changed clips and broken cache entries are analysed again; the manifest says which results came
from the cache."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction

import pytest

from pipeline.analysis.cache import CACHE_DIR_VARIABLE
from pipeline.jobs import analyses as analyses_module
from pipeline.jobs import loudness_plan
from pipeline.jobs.finish import finish
from pipeline.media.source_decode import decode_tally, reset_decode_tally
from pipeline.media.synth import SHAPES, ClipContent, synthesize
from pipeline.model.job import parse_job

SMALL_SHAPE = replace(SHAPES["mono44k-1280x720-24"], width=320, height=180)
TALL = {"preset": "tiktok-9x16", "name": "tall", "cutdowns": [1],
        "overrides": {"video": {"width": 90, "height": 160, "options": {"preset": "veryfast"}}}}


@pytest.fixture(scope="module")
def talking_clip(tmp_path_factory):
    """Flashes and beeps in a 2 s clip with sound: sync has events to measure."""
    content = ClipContent(event_times_s=(Fraction(1, 2), Fraction(5, 4)))
    return synthesize(SMALL_SHAPE, tmp_path_factory.mktemp("cache-clip") / "clip.mp4", Fraction(2), content=content)


@pytest.fixture
def analysis_calls(monkeypatch) -> Callable[[], dict[str, int]]:
    """How many times each analysis really ran: sync's measurements, the source pass's picture
    decodes (reframing) and sound decodes (cut-down sound activity), over every source, and the
    loudness plan's ffmpeg runs (programme renders and codec-check encodes)."""
    sync_calls, loudness_runs = [], []
    original_sync, original_run = analyses_module.measure_sync, loudness_plan.run_ffmpeg

    def counted_sync(*args, **kwargs):
        sync_calls.append(args)
        return original_sync(*args, **kwargs)

    def counted_run(*args, **kwargs):
        loudness_runs.append(args)
        return original_run(*args, **kwargs)

    monkeypatch.setattr(analyses_module, "measure_sync", counted_sync)
    monkeypatch.setattr(loudness_plan, "run_ffmpeg", counted_run)
    reset_decode_tally()

    def calls() -> dict[str, int]:
        tallies = decode_tally().values()
        return {"sync": len(sync_calls), "reframe": sum(tally.picture for tally in tallies),
                "sound-activity": sum(tally.sound for tally in tallies), "loudness": len(loudness_runs)}

    return calls


def _job(source, tmp_path, crf: int):
    tall = {**TALL, "overrides": {"video": {**TALL["overrides"]["video"], "options": {"preset": "veryfast", "crf": crf}}}}
    return parse_job({"version": 1, "name": "cached", "shots": [{"source": str(source)}], "deliverables": [tall]},
                     tmp_path)


def _records(manifest_path) -> dict[str, bool]:
    return {entry["analysis"]: entry["from_cache"] for entry in json.loads(manifest_path.read_text())["analyses"]}


def test_a_rerun_with_a_preset_changed_analyses_nothing(talking_clip, analysis_calls, tmp_path):
    # Another preset setting, and the clip moved to another name: the same content. Reframing reads
    # the clip again while planning; it must read it under its new name.
    original = tmp_path / "original.mp4"
    shutil.copyfile(talking_clip, original)
    first = finish(_job(original, tmp_path, crf=20), tmp_path / "first")
    first_calls = analysis_calls()
    # The whole-length programme is measured in the source pass; the cut-down, a mix the pass
    # cannot know, is rendered. The beeps' peaks sit far under the limit: neither is encoded for
    # the codec check.
    assert first_calls == {"sync": 1, "reframe": 1, "sound-activity": 1, "loudness": 1}
    copy = tmp_path / "renamed.mp4"
    original.rename(copy)
    events = {"picture-events", "sound-onsets", "mouths", "speech-activity", "source-loudness"}  # same decode
    assert _records(first) == ({"sync": False, "reframe": False, "sound-activity": False, "loudness": False}
                               | dict.fromkeys(events, False))
    second = finish(_job(copy, tmp_path, crf=24), tmp_path / "second")
    assert analysis_calls() == first_calls, "a cached analysis decoded again, or a cached loudness was measured"
    assert _records(second) == ({"sync": True, "reframe": True, "sound-activity": True, "loudness": True}
                                | dict.fromkeys(events, True))
    # What came from the cache is what was measured, and names the file under its new name.
    first_sync = json.loads(first.read_text())["inputs"][0]["sync"]
    second_sync = json.loads(second.read_text())["inputs"][0]["sync"]
    assert second_sync == {**first_sync, "path": str(copy)}
    # The cached loudness corrections are the ones applied: each output carries the first run's.
    first_loudness = [output["loudness"] for output in json.loads(first.read_text())["outputs"]]
    second_loudness = [output["loudness"] for output in json.loads(second.read_text())["outputs"]]
    assert len(first_loudness) == 2 and all(first_loudness) and second_loudness == first_loudness


def test_a_changed_clip_or_a_broken_entry_is_analysed_again(talking_clip, analysis_calls, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(cache))
    source = tmp_path / "clip.mp4"
    shutil.copyfile(talking_clip, source)
    finish(_job(source, tmp_path, crf=20), tmp_path / "one")

    # The same path with other content (one event moved): every analysis runs again.
    other = ClipContent(event_times_s=(Fraction(3, 4), Fraction(3, 2)))
    synthesize(SMALL_SHAPE, source, Fraction(2), content=other)
    finish(_job(source, tmp_path, crf=20), tmp_path / "two")
    once = analysis_calls()
    assert {**once, "loudness": 0} == {"sync": 2, "reframe": 2, "sound-activity": 2, "loudness": 0}

    for entry in cache.rglob("*.pickle"):
        entry.write_bytes(b"not a pickle")
    manifest = finish(_job(source, tmp_path, crf=20), tmp_path / "three")
    again = analysis_calls()
    assert {**again, "loudness": 0} == {"sync": 3, "reframe": 3, "sound-activity": 3, "loudness": 0}
    assert again["loudness"] > once["loudness"], "a broken loudness entry was trusted"
    assert not any(_records(manifest).values())


def test_the_cache_can_be_switched_off(talking_clip, analysis_calls, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_VARIABLE, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    finish(_job(talking_clip, tmp_path, crf=20), tmp_path / "one")
    finish(_job(talking_clip, tmp_path, crf=20), tmp_path / "two")
    assert {**analysis_calls(), "loudness": 0} == {"sync": 2, "reframe": 2, "sound-activity": 2, "loudness": 0}
    assert not (tmp_path / "xdg").exists()


def test_another_decoder_is_a_miss(talking_clip, monkeypatch):
    """A result measured with one ffmpeg (or PyAV) is not read back by another: decoded samples
    may differ between releases."""
    from pipeline.analysis import cache as cache_module

    parameters = {"fps": 24}
    cache_module.code_fingerprint.cache_clear()
    before = cache_module.analysis_key("reframe", talking_clip, parameters)
    monkeypatch.setattr(cache_module, "decoder_versions", lambda: {"ffmpeg": "n10.0-another-build"})
    cache_module.code_fingerprint.cache_clear()
    try:
        assert cache_module.analysis_key("reframe", talking_clip, parameters) != before
    finally:
        cache_module.code_fingerprint.cache_clear()
