"""Every development clip (real public footage, ``../shared/devclips``) into the web, vertical social
and broadcast presets through ``postprod finish``: each is a verified deliverable that looks as the
source does, or a clean refusal.

A verified deliverable is checked for what a viewer sees, against truths built here from the source
rather than taken from postprod: the picture is the source turned as its display matrix says
(rotation and reflection: the matrix is read and applied here, and every other of the eight turns
and mirrorings must match worse), the length is the source's within a frame, and there is sound
exactly when the source has some. A refusal is exit 3, the file named, nothing written.

The whole matrix is ``slow``; a few short clips into one preset run in the default suite. The
command line runs the flow's steps through the library path (no Prefect server).
"""

from __future__ import annotations

import json
import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from rich.console import Console

import flows.finish_job
import postprod.cli as cli
from pipeline.jobs.finish import finish
from pipeline.model.presets import load_presets
from pipeline.media.probe import probe
from tests.measure import decode_audio, rms_dbfs

DEVCLIPS = Path("../shared/devclips")
CLIPS = sorted(p.name for p in DEVCLIPS.iterdir() if p.suffix in (".mp4", ".webm")) if DEVCLIPS.is_dir() else []
MATRIX_PRESETS = ["web-h264-1080p", "social-9x16", "broadcast-prores-hq-1080p25"]
DEFAULT_PART = ["phone_rotate_and_reflect.mp4", "broken_invalid_nalu.mp4"]
"""Short clips for the default suite: a portrait phone clip turned and mirrored by its display
matrix, and a corrupt bitstream."""

SOUND_DBFS = -70.0
"""RMS above which a track counts as sound rather than silence."""
THUMB_LONG_SIDE = 96
"""Pictures are compared as grey thumbnails this long: enough to tell turns apart, blind to scalers."""
MIN_MATCH = 0.8
"""Least correlation of the deliverable's picture with the turned source at the same moment."""
MIN_DETAIL = 8.0
"""Grey-level spread (standard deviation) below which a picture has nothing to tell turns apart by:
vp9_alpha.webm's colour planes are black wherever it is transparent."""

pytestmark = pytest.mark.skipif(not CLIPS, reason=f"{DEVCLIPS} (the development clips) is not here")


@pytest.fixture(autouse=True)
def library_flow(monkeypatch):
    """The CLI's flow replaced by the same steps without Prefect."""

    def run(job, out_dir=None, one_process=True):
        return finish(job, out_dir, one_process=one_process)

    monkeypatch.setattr(flows.finish_job, "finish_job", run)
    monkeypatch.setattr(cli, "stderr", Console(stderr=True, width=10_000))


def display_matrix(path: Path) -> np.ndarray:
    """The 2x2 part of the first frame's display matrix (identity when there is none).

    The matrix maps a stored pixel (x, y) to where it is shown: (x', y') = (x, y) @ M.
    """
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        for side_data in frame.side_data:
            if side_data.type.name == "DISPLAYMATRIX":
                a, b, _, c, d, _, _, _, _ = struct.unpack("<9i", bytes(side_data)[:36])
                return np.rint(np.array([[a, b], [c, d]]) / 65536).astype(int)
    return np.eye(2, dtype=int)


def turned(picture: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``picture`` (rows, columns) moved pixel by pixel as ``matrix`` says."""
    rows, columns = np.mgrid[0:picture.shape[0], 0:picture.shape[1]]
    shown_x = matrix[0, 0] * columns + matrix[1, 0] * rows
    shown_y = matrix[0, 1] * columns + matrix[1, 1] * rows
    shown_x, shown_y = shown_x - shown_x.min(), shown_y - shown_y.min()
    result = np.zeros((shown_y.max() + 1, shown_x.max() + 1), dtype=picture.dtype)
    result[shown_y, shown_x] = picture
    return result


TURNS = [np.array(m) for m in ([[1, 0], [0, 1]], [[-1, 0], [0, 1]], [[1, 0], [0, -1]], [[-1, 0], [0, -1]],
                                 [[0, 1], [1, 0]], [[0, -1], [1, 0]], [[0, 1], [-1, 0]], [[0, -1], [-1, 0]])]
"""The eight ways to turn and mirror a picture onto a rectangle."""


def grey_frame_at(path: Path, seconds: float) -> np.ndarray:
    """The stored (unturned) grey picture shown ``seconds`` after the video stream's first frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = None
        chosen = None
        for frame in container.decode(stream):
            first = frame.time if first is None else first
            if chosen is None or frame.time - first <= seconds + 1e-6:
                chosen = frame
            else:
                break
        return chosen.to_ndarray(format="gray").astype(np.float32)


def _thumb(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(picture, (max(1, width), max(1, height)), interpolation=cv2.INTER_AREA)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    scale = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / scale) if scale else 0.0


def picture_match(shown: np.ndarray, source: np.ndarray, sar: Fraction, fit: str) -> float:
    """How well deliverable frame ``shown`` holds ``source`` (as shown) fitted to its raster: padded
    (the whole picture centred) or cropped (covering it; the best crop position along the long
    side, since a reframed crop may sit anywhere)."""
    height, width = shown.shape
    source_width, source_height = source.shape[1] * float(sar), source.shape[0]
    scale = (min if fit == "pad" else max)(width / source_width, height / source_height)
    scaled_width, scaled_height = round(source_width * scale), round(source_height * scale)
    step = max(width, height) / THUMB_LONG_SIDE
    if fit == "pad":
        x, y = (width - scaled_width) // 2, (height - scaled_height) // 2
        region = shown[y:y + scaled_height, x:x + scaled_width]
        size = (round(scaled_width / step), round(scaled_height / step))
        return _correlation(_thumb(region, *size), _thumb(source, *size))
    frame = _thumb(shown, round(width / step), round(height / step))
    covering = _thumb(source, round(scaled_width / step), round(scaled_height / step))
    spare_y, spare_x = covering.shape[0] - frame.shape[0], covering.shape[1] - frame.shape[1]
    return max(
        _correlation(frame, covering[dy:dy + frame.shape[0], dx:dx + frame.shape[1]])
        for dy in range(max(0, spare_y) + 1) for dx in range(max(0, spare_x) + 1)
        if covering[dy:dy + frame.shape[0], dx:dx + frame.shape[1]].shape == frame.shape
    )


def has_sound(path: Path) -> bool:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return False
    samples, _, _ = decode_audio(path)
    return samples.size > 0 and rms_dbfs(samples) > SOUND_DBFS


def check_deliverable(source: Path, output: Path, preset_name: str) -> list[str]:
    """What a viewer would find wrong with ``output`` as a finish of ``source``; empty when nothing."""
    preset = load_presets()[preset_name]
    source_info, output_info = probe(source), probe(output)
    problems = []
    rate = output_info.video.frame_rate
    if abs(output_info.video.duration_s - source_info.video.duration_s) > 1 / rate:
        problems.append(f"lasts {float(output_info.video.duration_s):.3f} s, the source "
                        f"{float(source_info.video.duration_s):.3f} s (more than a frame apart)")
    if has_sound(output) != has_sound(source):
        problems.append(f"sound {'present' if has_sound(output) else 'missing'}; the source has "
                        f"{'some' if has_sound(source) else 'none'}")
    moment = float(source_info.video.duration_s) * 0.4
    stored = grey_frame_at(source, moment)
    if stored.std() < MIN_DETAIL:
        return problems
    shown = grey_frame_at(output, moment)
    expected_turn = display_matrix(source)
    scores = {index: picture_match(shown, turned(stored, turn), source_info.video.sample_aspect_ratio,
                                   "pad" if preset.video.fit == "pad" else "crop")
              for index, turn in enumerate(TURNS)}
    expected = next(index for index, turn in enumerate(TURNS) if np.array_equal(turn, expected_turn))
    best = max(scores, key=scores.get)
    if scores[expected] < MIN_MATCH or best != expected:
        problems.append(f"picture turned wrongly: as the display matrix says {scores[expected]:.2f}, "
                        f"best {TURNS[best].tolist()} {scores[best]:.2f}")
    return problems


def finish_one(clip: str, preset: str, out_dir: Path, capsys) -> tuple[str, str]:
    """Run ``postprod finish`` on one clip into one preset; return (outcome, detail) for the table."""
    source = DEVCLIPS / clip
    before = source.stat().st_mtime_ns, source.stat().st_size
    exit_code = cli.main(["finish", str(source), "--preset", preset, "--out", str(out_dir)])
    console = capsys.readouterr().err
    assert (source.stat().st_mtime_ns, source.stat().st_size) == before, "the source was modified"
    if exit_code == 3:
        named = f"postprod: error: {source.resolve()}: "
        assert named in console, console
        assert not out_dir.exists() or not any(out_dir.iterdir()), sorted(out_dir.iterdir())
        return "refused", console.split(named, 1)[1].strip()
    assert exit_code == 0, f"exit {exit_code}: {console}"
    manifest = json.loads(next(out_dir.glob("*.manifest.json")).read_text())
    (output,) = manifest["outputs"]
    problems = check_deliverable(source, Path(output["path"]), preset)
    assert not problems, problems
    return "verified", output["qc"]["status"]


@pytest.mark.parametrize("clip", [clip for clip in DEFAULT_PART if clip in CLIPS])
def test_short_real_clips_into_web(clip, tmp_path, capsys):
    finish_one(clip, "web-h264-1080p", tmp_path / "out", capsys)


@pytest.mark.slow
@pytest.mark.parametrize("preset", MATRIX_PRESETS)
@pytest.mark.parametrize("clip", CLIPS)
def test_every_real_clip_into_every_matrix_preset(clip, preset, tmp_path, capsys):
    finish_one(clip, preset, tmp_path / "out", capsys)


def test_no_whole_devclip_probes_as_truncated():
    """The truncation check (a file ending before its header's duration) passes every real clip."""
    for clip in CLIPS:
        probe(DEVCLIPS / clip)
