"""The job's sync policy: report the verdict, fix the offset while conforming, or stop the job."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from pipeline.errors import MediaError
from pipeline.jobs.finish import finish
from pipeline.model.job import parse_job
from pipeline.media.synth import ClipContent
from pipeline.analysis.sync import measure_sync

EVENTS_S = (Fraction(12, 24), Fraction(31, 24), Fraction(55, 24))
SOUND_LATE_MS = 120
"""Outside EBU R37, which lets sound lag its picture by at most 60 ms."""


@pytest.fixture
def late_clip(make_clip):
    content = ClipContent(event_times_s=EVENTS_S, audio_shift_s=Fraction(SOUND_LATE_MS, 1000))
    return make_clip("sora2-1280x720-24", Fraction(3), content)


def finish_with_policy(tmp_path, clip, policy: str):
    job = parse_job(
        {
            "version": 1,
            "name": f"sync-{policy}",
            "shots": [{"source": str(clip)}],
            "deliverables": [{"preset": "prores-proxy-1080p", "overrides": {"video": {"width": 640, "height": 360}}}],
            "sync": {"policy": policy},
        },
        tmp_path,
    )
    return finish(job, tmp_path / "out")


@pytest.mark.parametrize("policy", ["report", "fix"])
def test_report_records_and_fix_corrects(policy, late_clip, tmp_path):
    manifest = json.loads(finish_with_policy(tmp_path, late_clip, policy).read_text())

    measured = manifest["inputs"][0]["sync"]
    assert measured["verdict"] == "out_of_sync" and measured["standard"]["name"] == "ebu-r37"
    assert measured["offset_ms"] == pytest.approx(SOUND_LATE_MS, abs=21)
    remeasured = measure_sync(manifest["outputs"][0]["path"])
    if policy == "report":
        assert remeasured.offset_ms == pytest.approx(SOUND_LATE_MS, abs=21), "report leaves the sound alone"
    else:
        assert abs(remeasured.offset_ms) <= 10 and remeasured.verdict == "in_sync"


def test_fail_stops_the_job_with_the_measurement(late_clip, tmp_path):
    with pytest.raises(MediaError, match=r"sound is 1[0-4]\d ms late .* outside EBU R37: it may lead by 40 ms and lag by 60 ms"):
        finish_with_policy(tmp_path, late_clip, "fail")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_clips_in_sync_pass_every_policy(make_clip, tmp_path):
    in_sync = make_clip("sora2-1280x720-24", Fraction(3), ClipContent(event_times_s=EVENTS_S))
    manifest = json.loads(finish_with_policy(tmp_path, in_sync, "fail").read_text())
    assert manifest["inputs"][0]["sync"]["verdict"] == "in_sync"
