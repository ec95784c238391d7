"""HDR in: PQ and HLG devclips tone-mapped into an SDR deliverable (tags and measured levels against
a matrix-only conversion, which looks washed out), and the HDR10 deliverable (HEVC Main 10, BT.2020
PQ, mastering display and content light levels re-read from the output's SEI)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.errors import JobError
from pipeline.jobs.finish import finish
from pipeline.model.job import parse_job
from pipeline.media.runner import run_ffmpeg
from pipeline.model.presets import get_preset
from pipeline.media.probe import probe

DEVCLIPS = Path("../shared/devclips")
PQ_CLIP = DEVCLIPS / "hdr_hdr10_1080p_vfr.mp4"
HLG_CLIP = DEVCLIPS / "hdr_hlg10_color_test_audio_first.mp4"
SMALL_SDR = {"video": {"width": 480, "height": 270, "options": {"preset": "veryfast", "crf": 18}}}
SMALL_HDR10 = {"video": {"width": 640, "height": 360, "options": {"preset": "ultrafast", "crf": 20}}}

pytestmark = pytest.mark.skipif(not DEVCLIPS.is_dir(), reason="../shared/devclips is absent")


def _finish(tmp_path: Path, source: Path, preset: str, overrides: dict) -> dict:
    job = parse_job({"version": 1, "name": "hdr", "shots": [{"source": str(source.resolve())}],
                     "deliverables": [{"preset": preset, "overrides": overrides}],
                     "qc": {"policy": "warn"}}, tmp_path)
    return json.loads(finish(job, tmp_path / "out").read_text())["outputs"][0]


def _rgb_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]).astype(float)


def _levels(rgb: np.ndarray) -> dict[str, float]:
    """Luma percentiles (8-bit RGB-derived, BT.709 weights) and mean HSV saturation."""
    luma = rgb @ np.array([0.2126, 0.7152, 0.0722])
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1), 0)
    return {"p1": np.percentile(luma, 1), "p50": np.percentile(luma, 50), "p99": np.percentile(luma, 99),
            "saturation": float(saturation.mean())}


def _matrix_only(source: Path, tmp_path: Path) -> dict[str, float]:
    """What the SDR deliverable looked like before tone mapping: the BT.2020 matrix swapped for
    BT.709's and nothing else."""
    reference = tmp_path / "matrix_only.mkv"
    run_ffmpeg(["-i", str(source), "-map", "0:v:0", "-vf",
                "scale=480:270:in_color_matrix=bt2020:out_color_matrix=bt709,format=yuv444p",
                "-c:v", "ffv1", "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
                str(reference)])
    return _levels(_rgb_frames(reference))


@pytest.mark.parametrize(("source", "saturation_gain"), [(PQ_CLIP, 2.0), (HLG_CLIP, 1.4)], ids=["pq", "hlg"])
def test_hdr_into_sdr_is_tone_mapped_not_washed_out(source, saturation_gain, tmp_path):
    output = _finish(tmp_path, source, "web-h264-1080p", SMALL_SDR)
    video = probe(output["path"]).video
    assert (video.color_primaries, video.color_transfer, video.color_matrix, video.color_range) == (
        "bt709", "bt709", "bt709", "tv")
    assert "levels" not in output["qc"]["failed"] + output["qc"]["warned"]
    toned, flat = _levels(_rgb_frames(Path(output["path"]))), _matrix_only(source, tmp_path)
    # Colour as graded, not greyed: a matrix-only conversion leaves BT.2020 chroma under BT.709's
    # matrix and PQ/HLG code values as if they were gamma, so saturation collapses.
    assert toned["saturation"] >= saturation_gain * flat["saturation"]
    # Highlights reach SDR white instead of sitting in the grey upper middle; midtones stay put.
    assert toned["p99"] > 225
    assert abs(toned["p50"] - flat["p50"]) < 35


def test_hdr10_deliverable_carries_pq_tags_and_static_metadata(tmp_path):
    output = _finish(tmp_path, PQ_CLIP, "hdr10-hevc-1080p", SMALL_HDR10)
    path = Path(output["path"])
    info = probe(path)
    assert (info.video.codec, info.video.profile, info.video.pix_fmt) == ("hevc", "Main 10", "yuv420p10le")
    assert (info.video.color_primaries, info.video.color_transfer, info.video.color_matrix) == (
        "bt2020", "smpte2084", "bt2020nc")
    # The source carries content light levels (MaxCLL 1000, MaxFALL 200) but an incomplete mastering
    # display (no luminance): the first is carried, the second comes from the preset.
    assert info.video.hdr10 is not None
    assert info.video.hdr10.max_cll == probe(PQ_CLIP).video.hdr10.max_cll == "1000,200"
    assert info.video.hdr10.master_display == get_preset("hdr10-hevc-1080p").video.hdr10.master_display
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            kinds = {side_data.type.name for side_data in frame.side_data}
            assert {"MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL"} <= kinds
            break


def test_hlg_into_hdr10_is_moved_to_pq(tmp_path):
    output = _finish(tmp_path, HLG_CLIP, "hdr10-hevc-1080p", SMALL_HDR10)
    info = probe(output["path"])
    assert info.video.color_transfer == "smpte2084"
    assert info.video.hdr10 is not None and info.video.hdr10.max_cll == "1000,400"


def test_sdr_source_into_hdr10_is_refused_by_name(make_colour_clip, tmp_path):
    clip = make_colour_clip("gray", size="160x90")
    job = parse_job({"version": 1, "name": "sdr", "shots": [{"source": str(clip)}],
                     "deliverables": [{"preset": "hdr10-hevc-1080p"}]}, tmp_path)
    with pytest.raises(JobError, match=r"deliverables\.0\.preset: an HDR10 .* shots\.0 is"):
        finish(job, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
