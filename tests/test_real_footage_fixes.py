"""Failures users met finishing real footage, each checked where they met it: ``postprod finish`` and
``postprod run`` with a job file.

The command line runs the flow's steps through the library path (:func:`pipeline.finish.finish`), so
these tests start no Prefect server; ``tests/test_flow.py`` covers the flow itself.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
import yaml
from rich.console import Console

import flows.finish_job
import postprod.cli as cli
from pipeline.finish import finish
from pipeline.media import run_ffmpeg
from pipeline.probe import probe


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
