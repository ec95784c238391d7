"""Broadcast legality: broadcast presets legalise what they are given (super-blacks, super-whites,
saturated colour), dips stay inside the legal range by themselves, and levels QC fails a job only
when legalising is switched off.

Ground truth: EBU R 103 as the QC levels check measures it (luma -1 %..+103 %, R'G'B' -5 %..+105 %),
and a test pattern whose luma is pushed down by 25 % of the nominal range, so its darker half sits
below black and its colours leave gamut.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.plan.legalise import (
    CHROMA_KNEE,
    LUMA_BLACK_KNEE,
    LUMA_WHITE_KNEE,
    TOUCH_MIN,
    _chroma_ratio,
    legalise_ycbcr,
    touched_share,
)
from pipeline.errors import QcFailedError, JobError
from pipeline.jobs.finish import finish
from pipeline.model.job import parse_job
from pipeline.media.runner import run_ffmpeg
from tests.measure import frames_ycbcr_levels

BROADCAST = "broadcast-prores-hq-1080p25"
SMALL = {"video": {"width": 320, "height": 180}}
RATE = 25


def _rgb(luma, blue, red):
    kr, kb = 0.2126, 0.0722
    kg = 1 - kr - kb
    green = luma - (2 * kb * (1 - kb) * blue + 2 * kr * (1 - kr) * red) / kg
    return luma + 2 * (1 - kr) * red, green, luma + 2 * (1 - kb) * blue


def _r103(luma, blue, red) -> tuple[float, float]:
    """Share of samples with luma outside -1 %..103 % and with R'G'B' outside -5 %..105 %."""
    r, g, b = _rgb(luma, blue, red)
    low, high = np.minimum(np.minimum(r, g), b), np.maximum(np.maximum(r, g), b)
    return float(((luma < -0.01) | (luma > 1.03)).mean()), float(((low < -0.05) | (high > 1.05)).mean())


def test_legaliser_keeps_legal_pixels_and_brings_every_code_inside_r103():
    codes = np.arange(0, 1024, 8) / 4.0  # every eighth 10-bit code, in 8-bit levels
    luma, blue, red = np.meshgrid((codes - 16) / 219, (codes - 128) / 224, (codes - 128) / 224, indexing="ij")
    out = legalise_ycbcr(luma, blue, red)
    assert _r103(*out) == (0.0, 0.0)
    untouched = ((luma >= LUMA_BLACK_KNEE) & (luma <= LUMA_WHITE_KNEE)
                 & (_chroma_ratio(luma, blue, red) <= CHROMA_KNEE))
    assert untouched.mean() > 0.05
    for before, after in zip((luma, blue, red), out, strict=True):
        assert np.array_equal(before[untouched], after[untouched])
    # Every colour inside nominal 0..100 % R'G'B' is among the untouched.
    r, g, b = _rgb(luma, blue, red)
    nominal = (np.minimum(np.minimum(r, g), b) >= 0) & (np.maximum(np.maximum(r, g), b) <= 1)
    assert nominal.any() and not np.any(nominal & ~untouched)
    # What QC reports as touched is what the legaliser moved by a 10-bit code or more.
    chroma_moved = np.maximum(np.abs(out[1] - blue), np.abs(out[2] - red))
    moved = (np.abs(out[0] - luma) >= TOUCH_MIN) | (chroma_moved >= TOUCH_MIN)
    assert touched_share(*out) == pytest.approx(float(moved.mean()), abs=1e-6)
    # A soft knee, not a clamp: distinct super-black and super-white levels stay distinct and in order.
    ramp = (np.arange(4, 1020) / 4.0 - 16) / 219
    legal_ramp = legalise_ycbcr(ramp, np.zeros_like(ramp), np.zeros_like(ramp))[0]
    assert np.all(np.diff(legal_ramp) > 0)


@pytest.fixture(scope="module")
def super_black_pattern(tmp_path_factory) -> Path:
    """testsrc2 with luma pushed 25 % of the nominal range darker (8-bit code floor 1), lossless and
    tagged BT.709, so no matrix conversion on the way in clips it before the legaliser sees it."""
    path = tmp_path_factory.mktemp("legalise") / "super_black.mkv"
    run_ffmpeg([
        "-f", "lavfi", "-i", f"testsrc2=s=320x180:r={RATE}:d=2,format=yuv444p,"
        "geq=lum='clip(lum(X,Y)-55,1,254)':cb='cb(X,Y)':cr='cr(X,Y)',"
        "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709",
        "-f", "lavfi", "-i", "sine=f=440:r=48000:d=2",
        "-c:v", "ffv1", "-c:a", "pcm_s16le", str(path),
    ])  # fmt: skip
    return path


def _finish(tmp_path: Path, shots: list[dict], overrides: dict) -> dict:
    """Finish a job into the broadcast preset; its manifest."""
    job = parse_job({"version": 1, "name": "legal", "shots": shots,
                     "deliverables": [{"preset": BROADCAST, "overrides": overrides}]}, tmp_path)
    return json.loads(finish(job, tmp_path / "out").read_text())


UNLEGALISED = {"video": {**SMALL["video"], "legalise": False}}


def _normalised(path: Path) -> tuple[np.ndarray, ...]:
    frames = frames_ycbcr_levels(path)
    return (frames[:, 0] - 16) / 219, (frames[:, 1] - 128) / 224, (frames[:, 2] - 128) / 224


def test_super_blacks_into_a_broadcast_preset_come_out_legal(super_black_pattern, tmp_path):
    source = _normalised(super_black_pattern)
    source_luma_out, source_gamut_out = _r103(*source)
    assert source_luma_out > 0.1 and source_gamut_out > 0.1, "the pattern must start illegal"

    entry = _finish(tmp_path, [{"source": str(super_black_pattern)}], SMALL)["outputs"][0]
    assert entry["qc"]["status"] != "fail" and "levels" not in entry["qc"]["failed"]
    luma, blue, red = _normalised(Path(entry["path"]))
    luma_out, gamut_out = _r103(luma, blue, red)
    # The judge: QC's levels meter (2x2-averaged, EBU R 103's low-pass) finds no frame outside.
    report = json.loads(Path(entry["qc"]["report"]).read_text())
    levels = next(check for check in report["checks"] if check["name"] == "levels")
    assert levels["status"] == "pass" and levels["value"] <= 0.01
    # Per pixel, with the 4:2:2 chroma upsampled again, only the subsampling's ringing at the edges
    # of the saturated bars is left outside.
    assert luma_out < 0.002 and gamut_out < 0.05
    assert np.percentile(luma, 0.1) >= -0.01  # single pixels may ring past it in the encode
    # The picture survives: the pattern's bright half keeps its levels, the dark half its gradation.
    assert abs(np.percentile(luma, 90) - np.percentile(source[0], 90)) < 0.02
    assert len(np.unique(np.round(luma[luma < LUMA_BLACK_KNEE] * 876))) >= 3
    touched = entry["legalise"]["touched_share"]
    assert 0.1 < touched < 0.9


def test_levels_fail_the_job_only_when_legalising_is_off(super_black_pattern, tmp_path):
    with pytest.raises(QcFailedError, match="levels"):
        _finish(tmp_path, [{"source": str(super_black_pattern)}], UNLEGALISED)
    manifest = json.loads((tmp_path / "out" / "legal.manifest.json").read_text())
    assert manifest["outputs"][0]["qc"]["failed"] == ["levels"]
    assert manifest["outputs"][0]["legalise"] is None


@pytest.mark.parametrize(("transition", "extreme"), [("dip_to_white", 940), ("dip_to_black", 64)])
def test_dips_stay_legal_without_the_legaliser(transition, extreme, tmp_path):
    clips = []
    for number in range(2):
        clip = tmp_path / f"grey{number}.mov"
        run_ffmpeg(["-f", "lavfi", "-i", f"color=c=gray:s=320x180:r={RATE}:d=1,format=yuv444p",
                    "-f", "lavfi", "-i", "sine=f=440:r=48000:d=1", "-c:v", "ffv1", "-c:a", "pcm_s16le", str(clip)])
        clips.append({"source": str(clip)})
    clips[0]["transition"] = {"type": transition, "frames": 10}
    manifest = _finish(tmp_path, clips, UNLEGALISED)
    assert manifest["outputs"][0]["qc"]["status"] != "fail"
    frames = frames_ycbcr_levels(Path(manifest["outputs"][0]["path"]))
    luma = frames[:, 0].reshape(len(frames), -1) * 4
    assert len(frames) == 2 * RATE - 10
    assert luma.min() >= 64 - 1 and luma.max() <= 940 + 1
    middle = luma[RATE - 10 + 5].mean()
    assert abs(middle - extreme) <= 2, f"the dip reaches {middle}, not {extreme}"


def test_legalising_a_picture_it_cannot_handle_is_refused_by_field(super_black_pattern, tmp_path):
    job = parse_job({"version": 1, "name": "alpha", "shots": [{"source": str(super_black_pattern)}],
                     "deliverables": [{"preset": "master-prores-4444", "overrides": {"video": {"legalise": True}}}]},
                    tmp_path)
    with pytest.raises(JobError, match=r"deliverables\.0\.overrides\.video: legalise works on .* yuva444p10le"):
        finish(job, tmp_path / "out")


@pytest.mark.parametrize("fill", ["white", "#ff00ff", "blur"])
def test_fills_stay_legal_without_the_legaliser(fill, tmp_path):
    """A 4:3 shot pillarboxed in the 16:9 broadcast raster: the fill is drawn at legal levels."""
    clip = tmp_path / "four_by_three.mkv"
    # swscale makes testsrc2's Y'CbCr with the BT.601 matrix: tagged so, the picture itself is legal.
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s=240x180:r={RATE}:d=0.4,format=yuv444p,"
                "setparams=range=tv:colorspace=smpte170m:color_primaries=smpte170m:color_trc=bt709",
                "-f", "lavfi", "-i", "sine=f=440:r=48000:d=0.4", "-c:v", "ffv1", "-c:a", "pcm_s16le", str(clip)])

    def finished(overrides: dict) -> dict:
        job = parse_job({"version": 1, "name": "fill", "shots": [{"source": str(clip)}], "sequence": {"fill": fill},
                         "qc": {"policy": "warn"}, "deliverables": [{"preset": BROADCAST, "overrides": overrides}]},
                        tmp_path)
        return json.loads(finish(job, tmp_path / "out").read_text())["outputs"][0]

    frames = frames_ycbcr_levels(Path(finished(UNLEGALISED)["path"]))
    bars = frames[:, :, :, :36]  # left of the 240-wide picture centred in 320
    luma_out, gamut_out = _r103((bars[:, 0] - 16) / 219, (bars[:, 1] - 128) / 224, (bars[:, 2] - 128) / 224)
    assert luma_out == 0 and gamut_out == 0
    # The blur fill's overlay subsamples the saturated picture's chroma and rings out of gamut at its
    # edges; legalised (the broadcast default), the whole frame passes.
    legalised = finished(SMALL)["qc"]
    assert "levels" not in legalised["failed"] + legalised["warned"]
