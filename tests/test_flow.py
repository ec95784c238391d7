"""The finish_job flow and the CLI's run command, end to end on a temporary Prefect server."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml
from prefect import flow
from prefect.testing.utilities import prefect_test_harness

import pipeline.render.renderer
from flows.finish_job import PrefectSteps, finish_job
from pipeline.analysis.cache import CACHE_DIR_VARIABLE, AnalysisCache
from pipeline.errors import FFmpegError
from pipeline.jobs import analyses, loudness_plan
from pipeline.media.source_decode import decode_tally, reset_decode_tally
from pipeline.media.synth import ClipContent
from pipeline.model.job import job_for_clips, parse_job
from pipeline.media.probe import probe
from postprod.cli import main
from tests.measure import frames_rgb

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_cli_run_finishes_a_job_file(make_clip, tmp_path, capsys):
    clip = make_clip("sora2pro-1792x1024-24", seconds=Fraction(1))
    job_file = tmp_path / "job.yaml"
    job_file.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "name": "spot",
                "shots": [{"source": str(clip), "in": "6f"}],
                "deliverables": [{"preset": "social-9x16"}, {"preset": "prores-proxy-1080p"}],
            }
        )
    )

    # The clip lies in the session's clip folder, outside the job file's: the user allows it.
    assert main(["run", str(job_file), "--out", str(tmp_path / "out"), "--json",
                 "--allow-read", str(clip.parent)]) == 0

    manifest = json.loads(capsys.readouterr().out)
    assert [output["preset"] for output in manifest["outputs"]] == ["social-9x16", "prores-proxy-1080p"]
    vertical = probe(manifest["outputs"][0]["path"])
    assert (vertical.video.display_width, vertical.video.display_height) == (1080, 1920)
    assert vertical.video.frame_count == 18  # 24 frames from frame 6 on
    assert manifest["inputs"][0]["sha256"] and manifest["versions"]["ffmpeg"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "spot.edl", "spot.manifest.json", "spot.otio", "spot.qc.html", "spot.xml",
        "spot_prores-proxy-1080p.mov", "spot_prores-proxy-1080p.qc.json",
        "spot_social-9x16.mp4", "spot_social-9x16.qc.json",
    ]
    assert all(output["qc"]["passed"] for output in manifest["outputs"])
    assert [Path(p).name for p in manifest["editorial"]] == ["spot.otio", "spot.edl", "spot.xml"]


def test_an_analysis_task_is_cached_by_content_and_parameters(make_colour_clip, tmp_path):
    """The flow's analysis task computes once per content and parameters: a renamed copy of the
    clip is a hit (the result renamed with it), another parameter is a miss, and the records say
    which came from the cache."""
    clip = make_colour_clip("red", seconds=Fraction(1))
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(clip.read_bytes())
    computed = []

    @flow
    def analyse_three_times(folder: Path) -> PrefectSteps:
        steps = PrefectSteps(AnalysisCache(folder))
        for source, parameters in ((clip, {"n": 1}), (copy, {"n": 1}), (clip, {"n": 2})):
            def compute(source=source):
                computed.append(source)
                return probe(source)

            assert steps.analyse("probe", source, parameters, compute).path == source
        return steps

    steps = analyse_three_times(tmp_path / "cache")
    assert computed == [clip, clip]
    assert [record.from_cache for record in steps.records] == [False, True, False]
    assert analyse_three_times(tmp_path / "cache").records[0].from_cache, "a new run reads the persisted result"
    assert computed == [clip, clip]


@pytest.mark.slow
def test_a_flow_rerun_with_a_preset_changed_analyses_nothing(make_clip, tmp_path, monkeypatch):
    """The flow's analysis tasks are cached by the source's content, the analysis's parameters and
    code: the second run, another preset setting over a renamed copy of the clip, decodes nothing
    for sync or reframing, measures no loudness, and its manifest says so."""
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "cache"))
    runs = {"measure_sync": 0, "loudness": 0}
    for name, module, function in (("measure_sync", analyses, "measure_sync"), ("loudness", loudness_plan, "run_ffmpeg")):
        def counted(*args, _name=name, _original=getattr(module, function), **kwargs):
            runs[_name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(module, function, counted)
    reset_decode_tally()

    def calls() -> dict[str, int]:
        """Sync measurements, the source pass's picture decodes (reframing), loudness ffmpeg runs."""
        return {"measure_sync": runs["measure_sync"], "reframe": sum(t.picture for t in decode_tally().values()),
                "loudness": runs["loudness"]}
    clip = make_clip("mono44k-1280x720-24", seconds=Fraction(2), width=320, height=180,
                     content=ClipContent(event_times_s=(Fraction(1, 2), Fraction(5, 4))))

    def run(source, crf: int, out: str) -> dict:
        # A smart crop needs the reframing analysis; no cut-down keeps it short (the cut-downs' sound
        # activity is cached by the same task, see tests/test_analysis_cache.py).
        small = {"preset": "review-540p", "overrides": {"loudness": {"standard": "streaming"}, "video": {
            "width": 90, "height": 160, "fit": "smart", "options": {"preset": "ultrafast", "crf": crf}}}}
        job = parse_job({"version": 1, "name": "cached", "shots": [{"source": str(source)}], "deliverables": [small]},
                        tmp_path)
        return json.loads(finish_job(job=job, out_dir=tmp_path / out).read_text())

    first = run(clip, 20, "first")
    measured = calls()
    assert {**measured, "loudness": 0} == {"measure_sync": 1, "reframe": 1, "loudness": 0} and measured["loudness"] > 0
    # The sync check's and the source's loudness, from the same decode as reframing.
    events = ("picture-events", "sound-onsets", "mouths", "speech-activity", "source-loudness")
    assert {entry["analysis"]: entry["from_cache"] for entry in first["analyses"]} == {
        "sync": False, "reframe": False, "loudness": False, **dict.fromkeys(events, False)}
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(clip.read_bytes())
    second = run(copy, 24, "second")
    assert calls() == measured, "a cached analysis decoded again, or a cached loudness was measured"
    assert {entry["analysis"]: entry["from_cache"] for entry in second["analyses"]} == {
        "sync": True, "reframe": True, "loudness": True, **dict.fromkeys(events, True)}
    # The cached measurements are the ones made: sync naming the file it now stands for, and the
    # loudness correction the first run applied.
    assert second["inputs"][0]["sync"] == {**first["inputs"][0]["sync"], "path": str(copy)}
    assert second["outputs"][0]["loudness"] == first["outputs"][0]["loudness"] is not None
    assert [output["probe"]["video"]["frame_count"] for output in second["outputs"]] == [48]


def _flaky_ffmpeg(monkeypatch, returncode: int) -> list[int]:
    """Make the first ffmpeg run fail with ``returncode``; later runs are real. Returns a call log."""
    calls: list[int] = []
    real_run = pipeline.render.renderer.run_ffmpeg

    def run(args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise FFmpegError(["ffmpeg"], returncode, ["simulated failure"])
        return real_run(args, **kwargs)

    monkeypatch.setattr(pipeline.render.renderer, "run_ffmpeg", run)
    return calls


def test_killed_ffmpeg_is_retried(make_clip, tmp_path, monkeypatch):
    calls = _flaky_ffmpeg(monkeypatch, returncode=-9)  # killed by SIGKILL, e.g. out of memory
    job = job_for_clips([make_clip("ray-1280x720-24")], ["social-1x1"], name="retry")

    manifest = json.loads(finish_job(job=job, out_dir=tmp_path).read_text())

    assert len(calls) == 2
    assert probe(manifest["outputs"][0]["path"]).video.display_width == 1080


@pytest.mark.expected_error_logs
def test_ffmpeg_refusal_is_not_retried(make_clip, tmp_path, monkeypatch):
    calls = _flaky_ffmpeg(monkeypatch, returncode=1)
    job = job_for_clips([make_clip("ray-1280x720-24")], ["social-1x1"], name="refused")

    with pytest.raises(FFmpegError, match="simulated failure"):
        finish_job(job=job, out_dir=tmp_path)

    assert len(calls) == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_preview_burns_in_running_timecode(make_colour_clip, tmp_path):
    """The review copy is 960x540 with a timecode that changes every frame in its box."""
    clips = [make_colour_clip("red", Fraction(1)), make_colour_clip("blue", Fraction(1))]
    job_file = tmp_path / "job.yaml"
    job_file.write_text(yaml.safe_dump({
        "version": 1, "name": "cut",
        "shots": [{"source": str(clips[0]), "transition": {"type": "dissolve", "frames": 6}},
                  {"source": str(clips[1])}],
        "deliverables": [{"preset": "broadcast-prores-hq-1080p25"}],
    }))

    assert main(["preview", str(job_file), "--out", str(tmp_path / "out"), "--allow-read", str(clips[0].parent)]) == 0

    review = tmp_path / "out" / "cut_review.mp4"
    info = probe(review)
    assert (info.video.display_width, info.video.display_height, info.video.frame_count) == (960, 540, 42)
    frames = frames_rgb(review)
    timecode_box = frames[:, 460:540, 380:580].astype(int)
    picture_only = frames[:, 100:200, 100:200].astype(int)
    assert np.abs(np.diff(timecode_box[:10], axis=0)).max() > 50, "the timecode digits change"
    assert np.abs(np.diff(picture_only[:10], axis=0)).max() < 5, "the picture itself is still"


@pytest.mark.expected_error_logs  # the broken clip's job fails on purpose
def test_cli_batch_reports_each_item_and_exits_1_when_one_failed(make_clip, tmp_path, capsys, caplog,
                                                                  monkeypatch):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    clip = make_clip("sora2-1280x720-24", seconds=Fraction(1))
    (inbox / "good.mp4").write_bytes(clip.read_bytes())
    (inbox / "broken.mp4").write_bytes(clip.read_bytes()[:2000])
    monkeypatch.setenv("POSTPROD_RENDER_SLOTS", "3")

    code = main(["batch", str(inbox), "--out", str(out), "--preset", "review-540p", "--json"])
    assert "2 item(s) in" in caplog.text and "3 at a time" in caplog.text, "no --concurrency: the render slots"

    summary = json.loads(capsys.readouterr().out)
    by_item = {Path(item["item"]).name: item for item in summary["items"]}
    assert code == 1
    assert by_item["good.mp4"]["status"] == "succeeded" and by_item["good.mp4"]["qc"] in ("pass", "warn")
    assert probe(by_item["good.mp4"]["outputs"][0]).video.frame_count == 24
    assert by_item["broken.mp4"]["status"] == "failed" and "broken.mp4" in by_item["broken.mp4"]["reason"]

    assert main(["batch", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "missing: no such inbox folder" in " ".join(capsys.readouterr().err.split())


@pytest.mark.expected_error_logs  # the hostile jobs fail on purpose
def test_batch_sets_hostile_jobs_aside_and_finishes_the_good_clip(make_clip, tmp_path, capsys):
    """Inputs are checked before the fingerprint hashes them: a FIFO, /dev/zero, a link loop, the
    job file itself, an option that writes a stats file, a module import, a non-UTF-8 clip name;
    each fails with its field named, no file is written outside the output, and the good clip
    renders."""
    import os
    import time

    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "good.mp4").write_bytes(make_clip("sora2-1280x720-24", seconds=Fraction(1, 2)).read_bytes())
    (inbox / "clips").mkdir()
    (inbox / "clips" / "shot.mp4").write_bytes((inbox / "good.mp4").read_bytes())
    os.mkfifo(inbox / "pipe.mp4")
    (inbox / "zero.mp4").symlink_to("/dev/zero")
    (inbox / "loop-a.mp4").symlink_to(inbox / "loop-b.mp4")
    (inbox / "loop-b.mp4").symlink_to(inbox / "loop-a.mp4")
    (inbox / os.fsdecode(b"caf\xe9.mp4")).write_bytes((inbox / "good.mp4").read_bytes())
    stats = tmp_path / "stats.log"

    def job(name: str, **fields) -> None:
        document = {"version": 1, "name": name, "shots": [{"source": "clips/shot.mp4"}],
                    "deliverables": [{"preset": "review-540p"}], **fields}
        (inbox / f"{name}.yaml").write_text(yaml.safe_dump(document))

    job("fifo", shots=[{"source": "pipe.mp4"}])
    job("devzero", shots=[{"source": "zero.mp4"}])
    job("loop", shots=[{"source": "loop-a.mp4"}])
    job("itself", shots=[{"source": "itself.yaml"}])
    job("stats", deliverables=[{"preset": "review-540p", "overrides": {
        "video": {"options": {"x264-params": f"pass=1:stats={stats}"}}}}])
    job("graphics", overlays=[{"kind": "graphics", "callable": "antigravity:fly"}])
    (inbox / "legacy.json").write_text(json.dumps({"version": 1, "name": "legacy", "shots": [{"source": "nope.mp4"}],
                                                   "deliverables": [{"preset": "review-540p"}]}))

    started = time.monotonic()
    code = main(["batch", str(inbox), "--out", str(out), "--preset", "review-540p", "--json"])
    seconds = time.monotonic() - started

    summary = json.loads(capsys.readouterr().out)
    reasons = {Path(item["item"]).name: item["reason"] for item in summary["items"] if item["status"] == "failed"}
    assert code == 1
    assert {Path(item["item"]).name: item["status"] for item in summary["items"]}["good.mp4"] == "succeeded"
    expected = {
        "fifo.yaml": "pipe.mp4: not a regular file: it is a FIFO (named pipe) (named by shots.0.source)",
        "devzero.yaml": "shots.0.source: /dev/zero is outside the folders this job may read",
        "loop.yaml": "loop-a.mp4: a symbolic link loop (named by shots.0.source)",
        "itself.yaml": "shots.0.source: names the job file itself",
        "stats.yaml": "options.x264-params: 'pass=1:stats=",
        "graphics.yaml": "overlays.0.callable: module 'antigravity' is not allowed to run here",
        "legacy.json": "nope.mp4: file not found (named by shots.0.source)",
        "caf\\xe9.mp4": "the file name is not valid UTF-8",
    }
    for item, reason in expected.items():
        assert reason in (reasons.get(item) or ""), (item, reasons.get(item))
    assert not stats.exists() and "antigravity" not in __import__("sys").modules
    assert sorted(os.fsencode(path.name) for path in (inbox / "failed").iterdir()) == sorted(
        os.fsencode(Path(name).stem.replace("\\xe9", "\udce9")) for name in expected)
    assert (inbox / "failed" / "itself" / "itself.yaml").is_file()
    assert seconds < 120, f"the batch took {seconds:.0f} s"
    print(f"batch with {len(expected)} hostile items and one good clip: {seconds:.1f} s")
