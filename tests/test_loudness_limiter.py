"""The limiter pass on short, peaky real speech: the first 4 s of a dubbing devclip (its peaks stand
18 dB over its loudness) reframed to 9:16 reaches a loud target within tolerance, and a target the
true-peak ceiling cannot allow is a job error that says why (raised while the loudness is planned,
before anything is rendered)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import JobError
from pipeline.jobs.analyses import probe_sources
from pipeline.jobs.finish import finish
from pipeline.jobs.loudness_plan import loudness_corrections
from pipeline.model.job import parse_job
from pipeline.analysis.loudness import measure_file
from pipeline.model.presets import load_presets
from pipeline.plan.facts import JobFacts

DEVCLIPS = Path("../shared/devclips")
pytestmark = pytest.mark.skipif(not DEVCLIPS.is_dir(), reason="../shared/devclips is absent")
SMALL = {"width": 180, "height": 320}


def _job(tmp_path, target_lufs):
    return parse_job({
        "version": 1, "name": "peaky",
        "shots": [{"source": str((DEVCLIPS / "ai_infinitetalk_dubbing_b.mp4").resolve()), "out": "4"}],
        "deliverables": [{"preset": "reels-9x16",
                          "overrides": {"video": SMALL, "loudness": {"integrated_lufs": target_lufs}}}],
    }, tmp_path)


def test_peaky_speech_reaches_a_loud_target_through_the_limiter(tmp_path):
    # -10 LUFS needs about 12 LU of limiting: two 1:1 gain trims stopped at -11.5 LUFS.
    finish(_job(tmp_path, -10.0), tmp_path / "out")
    measured = measure_file(tmp_path / "out" / "peaky_reels-9x16.mp4")
    assert measured.integrated_lufs == pytest.approx(-10.0, abs=1.0)
    assert measured.true_peak_dbtp <= -1.0


def test_a_target_the_peak_ceiling_cannot_allow_is_explained(tmp_path):
    with pytest.raises(JobError, match=r"-6.0 LUFS cannot be reached under the true-peak ceiling .* peaks stand "
                                       r"18\.\d dB over its loudness, the target and ceiling allow 4\.0"):
        job = _job(tmp_path, -6.0)
        loudness_corrections(job, JobFacts(probe_sources(job)), load_presets())


def test_an_encoder_that_lifts_the_peaks_gets_a_lower_ceiling(tmp_path):
    """Underwater noise (a real clip, 4 s of it) at -14 LUFS: the limiter held the programme at
    -2 dBTP, the AAC encode lifted it to +0.9 dBTP and verification failed. The programme is now
    encoded as it will ship before rendering, and the ceiling lowered by what the encoder adds."""
    job = parse_job({
        "version": 1, "name": "noisy",
        "shots": [{"source": str((DEVCLIPS / "real_vggsound_whale_shark.mp4").resolve()), "out": "4"}],
        "deliverables": [{"preset": "web-h264-1080p", "overrides": {"video": {"width": 320, "height": 180}}}],
    }, tmp_path)
    corrections = loudness_corrections(job, JobFacts(probe_sources(job)), load_presets())
    (correction,) = corrections.values()
    assert correction.limiter_ceiling_dbtp < -2.0 and "encoded, its peaks reached" in correction.reason
    finish(job, tmp_path / "out")
    measured = measure_file(tmp_path / "out" / "noisy_web-h264-1080p.mp4")
    assert measured.true_peak_dbtp <= -1.0
    assert measured.integrated_lufs == pytest.approx(-14.0, abs=1.0)
