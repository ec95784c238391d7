"""The loudness plan's codec check runs only where the encoder could lift a programme's peaks over
its limit: a programme whose corrected peak leaves room under the limit for the largest coding error
measured is not encoded to check it, and its deliverable still meets the limit; a hot programme,
or one at a bitrate under the one measured, is encoded and checked as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.analysis.loudness import measure_file
from pipeline.errors import VerificationError
from pipeline.jobs import loudness_plan
from pipeline.jobs.analyses import probe_sources
from pipeline.jobs.finish import finish
from pipeline.media.runner import run_ffmpeg
from pipeline.model.job import parse_job
from pipeline.model.presets import load_presets
from pipeline.plan.facts import JobFacts

SPIKES = "if(lt(mod(t\\,0.25)\\,0.001)\\,0.9\\,0)"
SOUNDS = {
    # The encoder's worst case: a square wave's encode peaks 4 to 6 dB over it (bench/codec_overshoot.py).
    "square": "aevalsrc=0.5*sgn(sin(2*PI*440*t))|0.5*sgn(sin(2*PI*440*t+1)):s=48000:d=2",
    # Noise with clicks that a -13 LUFS target puts 1.3 dB under the limit: no limiter, but close.
    "clicks": f"aevalsrc=0.3*(random(0)*2-1)+{SPIKES}|0.3*(random(1)*2-1)+{SPIKES}:s=48000:d=2",
    # Clipped pink noise driven into the limiter: dense peaks, which 128k AAC lifts over the limit.
    "pink": "anoisesrc=c=pink:a=0.3:r=48000:d=2:seed=7,volume=12dB,aformat=sample_fmts=s16:channel_layouts=stereo",
}


@pytest.fixture(scope="module")
def sounds(tmp_path_factory) -> dict[str, Path]:
    """2 s clips, 160x90 picture, each sound as 24-bit PCM (nothing lossy before the plan)."""
    folder = tmp_path_factory.mktemp("codec-check")
    clips = {}
    for name, sound in SOUNDS.items():
        clips[name] = folder / f"{name}.mov"
        run_ffmpeg(["-f", "lavfi", "-i", "color=c=gray:s=160x90:r=24:d=2", "-f", "lavfi", "-i", sound,
                    "-c:v", "libx264", "-c:a", "pcm_s24le", "-ac", "2", "-shortest", str(clips[name])])
    return clips


def _job(source: Path, lufs: float, bitrate: str = "256k"):
    overrides = {"video": {"width": 320, "height": 180, "options": {"preset": "veryfast"}},
                 "audio": {"options": {"b": bitrate}}, "loudness": {"integrated_lufs": lufs}}
    return parse_job({"version": 1, "name": source.stem, "shots": [{"source": str(source)}],
                      "deliverables": [{"preset": "web-h264-1080p", "overrides": overrides}]}, source.parent)


def _correction(job):
    (correction,) = loudness_plan.loudness_corrections(job, JobFacts(probe_sources(job)), load_presets()).values()
    return correction


def _encodes(runs: list) -> int:
    return sum("aac" in args for args in runs)


def test_a_programme_far_under_the_limit_is_not_encoded_and_still_meets_it(sounds, loudness_runs, tmp_path):
    job = _job(sounds["square"], -8.0)
    correction = _correction(job)
    assert correction.mode == "linear"
    assert (len(loudness_runs), _encodes(loudness_runs)) == (1, 0), "the programme's render only"
    assert "encoded peak not checked: its true peak of -8.98 dBTP is under -5.41 dBTP" in correction.reason
    finish(job, tmp_path)
    delivered = measure_file(tmp_path / "square_web-h264-1080p.mp4")
    assert delivered.true_peak_dbtp <= -1.0
    assert delivered.integrated_lufs == pytest.approx(-8.0, abs=1.0)
    # The encode lifted the square's peaks by several dB: what the margin is for.
    assert delivered.true_peak_dbtp > -8.98 + 2.0


def test_a_programme_near_the_limit_is_encoded_and_checked(sounds, loudness_runs):
    correction = _correction(_job(sounds["clicks"], -13.0))
    assert correction.mode == "linear" and -2.5 < correction.measured_true_peak_dbtp + correction.gain_db < -2.0
    assert _encodes(loudness_runs) == 1
    assert "encoded as it ships, its peaks reached" in correction.reason and "not checked" not in correction.reason


def test_dense_peaks_at_a_lower_bitrate_are_checked_and_lowered(sounds, loudness_runs):
    correction = _correction(_job(sounds["pink"], -9.0, bitrate="128k"))
    assert correction.mode == "linear+limiter"
    assert _encodes(loudness_runs) >= 2, "encoded, lowered, encoded again"
    assert "encoded, its peaks reached" in correction.reason
    assert correction.limiter_ceiling_dbtp < -2.0


def test_an_encode_over_the_limit_after_a_skipped_check_fails_verification(sounds, monkeypatch, tmp_path):
    """Were the bound ever wrong, nothing over the limit is delivered: a square wave at -3 LUFS (its
    peaks at -4 dBTP, its encode 4 to 6 dB higher) with the check skipped fails verification."""
    monkeypatch.setattr(loudness_plan, "PEAK_LIFT_LU", -60.0)
    job = _job(sounds["square"], -3.0)
    assert "encoded peak not checked" in _correction(job).reason
    with pytest.raises(VerificationError, match=r"true peak: expected at most -1.0 dBTP"):
        finish(job, tmp_path)
    assert list(tmp_path.iterdir()) == []
