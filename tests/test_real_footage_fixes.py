"""Failures users met finishing real footage, each checked where they met it: ``postprod finish`` and
``postprod run`` with a job file.

The command line runs the flow's steps through the library path (:func:`pipeline.jobs.finish.finish`), so
these tests start no Prefect server; ``tests/test_flow.py`` covers the flow itself.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import opentimelineio as otio
import pytest
import yaml
from rich.console import Console

import flows.finish_job
import postprod.cli as cli
from pipeline.jobs.finish import finish
from pipeline.media.runner import run_ffmpeg
from pipeline.media.probe import probe
from tests.measure import frames_rgb, decode_audio


@pytest.fixture(autouse=True)
def library_flow(monkeypatch):
    """The CLI's flow replaced by the same steps without Prefect."""

    def run(job, out_dir=None, one_process=True):
        return finish(job, out_dir, one_process=one_process)

    monkeypatch.setattr(flows.finish_job, "finish_job", run)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich wraps messages at 80 columns without a terminal; a wide one keeps each on one line."""
    monkeypatch.setattr(cli, "stderr", Console(stderr=True, width=10_000))


def _generator_clip(folder: Path, rate: int, seconds: int = 1) -> Path:
    """A silent 320x180 clip at ``rate`` fps, the shape of CogVideoX (8 fps) and Open-Sora-Plan (10 fps)."""
    path = folder / f"generator-{rate}fps.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s=320x180:r={rate}:d={seconds}",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)])
    return path


@pytest.mark.parametrize("rate", [8, 10])
def test_low_rate_generator_clip_finishes_and_skips_timecode_exports(rate, tmp_path, capsys):
    """SMPTE timecode has no 8 or 10 fps count: the deliverable and the OTIO cut are written, the EDL
    and FCP XML are skipped with the reason on the console and in the manifest, and a stale EDL
    from an earlier run is not left beside the new cut."""
    clip = _generator_clip(tmp_path, rate)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    stale_edl = out_dir / f"{clip.stem}.edl"
    stale_edl.write_text("TITLE: an older cut\n")

    exit_code = cli.main(["finish", str(clip), "--preset", "master-prores-4444", "--out", str(out_dir)])

    console = capsys.readouterr().err
    assert exit_code == 0, console
    manifest = json.loads((out_dir / f"{clip.stem}.manifest.json").read_text())
    (output,) = manifest["outputs"]
    video = probe(output["path"]).video
    assert (video.frame_rate, video.frame_count) == (rate, rate)
    assert manifest["editorial"] == [str(out_dir / f"{clip.stem}.otio")]
    timeline = otio.adapters.read_from_file(manifest["editorial"][0])
    (shot,) = timeline.tracks[0].find_clips()
    assert shot.source_range == otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(rate, rate)
    )
    skipped = {entry["format"]: entry for entry in manifest["editorial_skipped"]}
    assert set(skipped) == {"cmx_3600", "fcp_xml"}
    for suffix, entry in ((".edl", skipped["cmx_3600"]), (".xml", skipped["fcp_xml"])):
        path = out_dir / f"{clip.stem}{suffix}"
        assert entry["path"] == str(path) and not path.exists()
        assert f"no count at the sequence's {rate} fps" in entry["reason"]
        assert f"skipped {path}: {entry['reason']}" in console


def _colour_clip(folder: Path, size: str, seconds: Fraction = Fraction(1)) -> Path:
    """A mid-grey clip with a tone, 24 fps."""
    path = folder / f"grey-{size}.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", f"color=c=#808080:s={size}:r=24:d={float(seconds)}",
                "-f", "lavfi", "-i", f"sine=f=440:r=48000:d={float(seconds)}",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)])
    return path


def _write_job(folder: Path, data: dict) -> Path:
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump({"version": 1, **data}), encoding="utf-8")
    return path


def _small(preset: str, name: str, width: int, height: int) -> dict:
    """A deliverable of ``preset`` at a small raster and a fast encoder setting."""
    video = {"width": width, "height": height, "frame_rate": 24, "options": {"preset": "veryfast"}}
    return {"preset": preset, "name": name, "overrides": {"video": video}}


def _red_logo(folder: Path) -> Path:
    """An opaque red bar, 64x24, in a transparent 80x40 PNG."""
    path = folder / "logo.png"
    image = np.zeros((40, 80, 4), dtype=np.uint8)
    image[8:32, 8:72] = (0, 0, 255, 255)  # BGRA
    cv2.imwrite(str(path), image)
    return path


def _red_box(path: Path) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the red pixels in the middle frame, right and bottom exclusive."""
    frames = frames_rgb(path)
    frame = frames[len(frames) // 2].astype(int)
    red = (frame[..., 0] > 150) & (frame[..., 1] < 90) & (frame[..., 2] < 90)
    rows, columns = np.nonzero(red)
    return columns.min(), rows.min(), columns.max() + 1, rows.max() + 1


@pytest.mark.parametrize("separate", [False, True], ids=["one-process", "separate-processes"])
def test_logo_on_several_deliverables_of_one_height(separate, tmp_path, capsys):
    """One logo on two deliverables whose logos scale alike (and on a third, taller one): each
    deliverable shows it, top right, at its own size."""
    clip = _colour_clip(tmp_path, "320x180")
    logo = _red_logo(tmp_path)
    job = _write_job(tmp_path, {
        "name": "logo", "shots": [{"source": str(clip)}],
        "deliverables": [_small("web-h264-1080p", "web", 384, 216), _small("social-16x9", "social", 384, 216),
                         _small("tiktok-9x16", "tiktok", 216, 384)],
        "overlays": [{"kind": "logo", "image": str(logo), "anchor": "top_right", "size": 0.2}],
    })
    out_dir = tmp_path / "out"

    exit_code = cli.main(["run", str(job), "--out", str(out_dir), *(["--separate-processes"] if separate else [])])

    assert exit_code == 0, capsys.readouterr().err
    for name, (width, height) in {"web": (384, 216), "social": (384, 216), "tiktok": (216, 384)}.items():
        left, top, right, bottom = _red_box(out_dir / f"logo_{name}.mp4")
        # The logo is 0.2 of the frame height; its red bar is 24 of its 40 rows, 64 of its 80 columns.
        logo_height = 0.2 * height
        assert abs((bottom - top) - logo_height * 24 / 40) <= 2, (name, top, bottom)
        assert abs((right - left) - logo_height * 64 / 40) <= 2, (name, left, right)
        assert (left + right) / 2 > width / 2 and (top + bottom) / 2 < height / 3, (name, left, top, right, bottom)


def test_blur_fill_with_a_shot_of_the_deliverables_shape(tmp_path, capsys):
    """``sequence: {fill: blur}``: a 16:9 shot fills the 16:9 frame edge to edge, and a square shot
    after it has a blurred copy of itself, not black, at its sides."""
    wide = _colour_clip(tmp_path, "320x180")
    square = tmp_path / "square.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=#C0C0C0:s=180x180:r=24:d=1", "-c:v", "libx264",
                "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(square)])
    job = _write_job(tmp_path, {
        "name": "blur", "sequence": {"fill": "blur"},
        "shots": [{"source": str(wide)}, {"source": str(square)}],
        "deliverables": [_small("web-h264-1080p", "web", 384, 216)],
    })

    exit_code = cli.main(["run", str(job), "--out", str(tmp_path / "out")])

    assert exit_code == 0, capsys.readouterr().err
    frames = frames_rgb(tmp_path / "out" / "blur_web.mp4").astype(int)
    assert len(frames) == 48
    # Mid grey (128) to the edges in the wide shot; light grey (192) in the square's fill, where
    # a black pad would be 16 and its blurred copy is the square's own colour.
    assert np.all(np.abs(frames[:24] - 128) <= 6)
    assert np.all(np.abs(frames[24:, :, :10] - 192) <= 6)


DEVCLIPS = Path("../shared/devclips")


def _cut(source: Path, folder: Path, keep_bytes: int) -> Path:
    """``source`` remuxed with its index first (as generators deliver), then cut after ``keep_bytes``
    bytes, like an interrupted download."""
    indexed = folder / f"indexed-{source.name}"
    run_ffmpeg(["-i", str(source), "-map", "0", "-c", "copy", "-movflags", "+faststart", str(indexed)])
    cut = folder / f"cut-{source.name}"
    cut.write_bytes(indexed.read_bytes()[:keep_bytes])
    return cut


def _assert_refused_as_truncated(cut: Path, out_dir: Path, capsys, declared_s: float, max_readable_s: float):
    before = cut.read_bytes()

    exit_code = cli.main(["finish", str(cut), "--preset", "web-h264-1080p", "--out", str(out_dir)])

    message = capsys.readouterr().err
    assert exit_code == 3, message
    match = re.search(rf"postprod: error: {re.escape(str(cut))}: truncated: only ([0-9.]+) s \((\d+) frames\) "
                      rf"of the {declared_s:.2f} s its header declares can be read", message)
    assert match, message
    assert 0 < float(match[1]) <= max_readable_s and int(match[2]) > 0
    assert not out_dir.exists() or not any(out_dir.iterdir())
    assert cut.read_bytes() == before


def test_truncated_clip_is_refused_naming_what_reads(tmp_path, capsys):
    """A 4 s clip cut to its first third: exit 3, the file and how much of it reads named, nothing
    written."""
    whole = tmp_path / "whole.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=4", "-f", "lavfi", "-i", "sine=r=48000:d=4",
                "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", str(whole)])
    cut = _cut(whole, tmp_path, whole.stat().st_size // 3)

    _assert_refused_as_truncated(cut, tmp_path / "out", capsys, declared_s=4.0, max_readable_s=2.0)


def test_real_clip_cut_to_200_kb_is_refused(tmp_path, capsys):
    """A real 33 s talking-head clip cut to its first 200 KB (the report's Sora 2 case)."""
    source = DEVCLIPS / "ai_infinitetalk_speech_b.mp4"
    if not source.exists():
        pytest.skip(f"{DEVCLIPS} (the development clips) is not here")
    cut = _cut(source, tmp_path, 200_000)

    _assert_refused_as_truncated(cut, tmp_path / "out", capsys, declared_s=33.27, max_readable_s=3.0)


def test_vfr_phone_clip_keeps_its_sound_to_the_sample(tmp_path, capsys):
    """The report's phone shape: rotation 180, mono AAC 48 kHz, about 10 fps with jittered frame
    times, sound starting after the picture. It finishes at the nearest standard rate (23.976)
    with every frame's sound (2002 samples a frame, within one AAC frame) and turned upside down."""
    stored = tmp_path / "stored.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=black:s=320x180:r=10:d=2.38,drawbox=x=0:y=0:w=80:h=45:c=white:t=fill,"
                "settb=1/90000,setpts='(N/10+0.04*mod(N\\,3))/TB'",
                "-itsoffset", "0.03", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=2.41",
                "-c:v", "libx264", "-preset", "ultrafast", "-fps_mode", "passthrough", "-enc_time_base:v", "1/90000",
                "-c:a", "aac", "-ac", "1", str(stored)])
    clip = tmp_path / "phone.mp4"
    run_ffmpeg(["-display_rotation", "180", "-i", str(stored), "-c", "copy", str(clip)])
    source = probe(clip)
    assert source.video.variable_frame_rate and source.video.rotation == 180
    job = _write_job(tmp_path, {"name": "phone", "shots": [{"source": str(clip)}],
                                "deliverables": [{"preset": "web-h264-1080p", "name": "web", "overrides": {
                                    "video": {"width": 384, "height": 216, "options": {"preset": "veryfast"}}}}]})

    exit_code = cli.main(["run", str(job), "--out", str(tmp_path / "out")])

    assert exit_code == 0, capsys.readouterr().err
    output = tmp_path / "out" / "phone_web.mp4"
    video = probe(output).video
    frames = round(source.video.duration_s * Fraction(24000, 1001))
    assert (video.frame_rate, video.frame_count) == (Fraction(24000, 1001), frames)
    samples, rate, _ = decode_audio(output)
    assert rate == 48000 and 0 <= samples.shape[-1] - frames * 2002 < 1024
    picture = frames_rgb(output)[frames // 2].astype(int).mean(axis=2)
    assert picture[-40:, -70:].mean() > 200 and picture[:40, :70].mean() < 40
