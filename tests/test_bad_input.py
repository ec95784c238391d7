"""Bad input fails fast and cleanly: the right exit code, a message naming the file or field and the
problem, nothing written, the input untouched, and no Prefect flow started."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from rich.console import Console

import flows.finish_job
import postprod.cli as cli
from pipeline.errors import MediaError
from pipeline.media.isobmff import top_level_boxes
from pipeline.media.runner import run_ffmpeg
from pipeline.media.probe import probe

CHEAP_PRESET = "master-prores-4444"
"""Keeps the source's size, so nothing here would be expensive even if a render started."""


@pytest.fixture(autouse=True)
def no_flow(monkeypatch):
    """Bad input must be refused before the Prefect flow (and its temporary server) starts."""

    def refuse(*args, **kwargs):
        pytest.fail("bad input reached the Prefect flow instead of being refused first")

    monkeypatch.setattr(flows.finish_job, "finish_job", refuse)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich wraps messages at 80 columns without a terminal; a wide one keeps each on one line."""
    monkeypatch.setattr(cli, "stderr", Console(stderr=True, width=10_000))


@pytest.fixture
def clip(make_clip) -> Path:
    """A small, valid clip with sound."""
    return make_clip("tiny-161x121-25", audio_rate=48000)


def _box_span(path: Path, box_type: str) -> tuple[int, int]:
    """Offset and size of the first top-level box of ``box_type``."""
    offset = 0
    for name, size in top_level_boxes(path):
        if name == box_type:
            return offset, size
        offset += size
    raise AssertionError(f"{path} has no {box_type} box")


def _missing(folder: Path, clip: Path) -> Path:
    return folder / "never-rendered.mp4"


def _empty(folder: Path, clip: Path) -> Path:
    path = folder / "empty.mp4"
    path.touch()
    return path


def _text_named_mp4(folder: Path, clip: Path) -> Path:
    path = folder / "shot-list.mp4"
    path.write_text("shot 1: sunrise over the harbour\nshot 2: gulls\n", encoding="utf-8")
    return path


def _truncated(folder: Path, clip: Path) -> Path:
    """An upload cut off mid-transfer: our clips keep ``moov`` after ``mdat``, so it is lost."""
    mdat_offset, _ = _box_span(clip, "mdat")
    assert _box_span(clip, "moov")[0] > mdat_offset
    path = folder / "truncated.mp4"
    path.write_bytes(clip.read_bytes()[: mdat_offset + 4096])
    return path


def _audio_only(folder: Path, clip: Path) -> Path:
    path = folder / "voice-over.m4a"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-c:a", "aac", str(path)])
    return path


def _corrupt_bitstream(folder: Path, clip: Path) -> Path:
    """The index intact, the media data replaced by (seeded) random bytes."""
    data = bytearray(clip.read_bytes())
    mdat_offset, mdat_size = _box_span(clip, "mdat")
    payload_start, payload_end = mdat_offset + 8, mdat_offset + mdat_size
    data[payload_start:payload_end] = random.Random(2024).randbytes(payload_end - payload_start)
    path = folder / "corrupt.mp4"
    path.write_bytes(bytes(data))
    return path


BAD_MEDIA: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "missing": (_missing, "file not found"),
    "zero-bytes": (_empty, "file is empty (0 bytes)"),
    "text-named-mp4": (_text_named_mp4, "not a media file ffmpeg can read"),
    "truncated-mp4": (_truncated, "truncated or unfinished MP4/MOV: it has no index (moov box)"),
    "audio-only": (_audio_only, "has no video stream (found: audio)"),
    "corrupt-bitstream": (_corrupt_bitstream, "video does not decode"),
}


@pytest.fixture(params=sorted(BAD_MEDIA))
def bad_media(request, tmp_path, clip) -> tuple[Path, str]:
    """A bad input file (in its own folder) and the problem its error must state."""
    make, problem = BAD_MEDIA[request.param]
    folder = tmp_path / "inputs"
    folder.mkdir()
    return make(folder, clip), problem


def _contents(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def _assert_nothing_written(out_dir: Path) -> None:
    assert not out_dir.exists() or not any(out_dir.iterdir()), sorted(out_dir.iterdir())


def test_probe_names_file_and_problem(bad_media):
    path, problem = bad_media
    with pytest.raises(MediaError) as raised:
        probe(path)
    assert raised.value.exit_code == 3
    assert raised.value.path == str(path)
    assert str(raised.value).startswith(f"{path}: {problem}")


def test_cli_probe_exits_3(bad_media, capsys):
    path, problem = bad_media
    assert cli.main(["probe", str(path)]) == 3
    assert f"postprod: error: {path}: {problem}" in capsys.readouterr().err


def test_cli_finish_exits_3_and_writes_nothing(bad_media, tmp_path, capsys):
    path, problem = bad_media
    out_dir = tmp_path / "out"
    before = _contents(path)

    exit_code = cli.main(["finish", str(path), "--preset", CHEAP_PRESET, "--out", str(out_dir)])

    assert exit_code == 3
    assert f"postprod: error: {path}: {problem}" in capsys.readouterr().err
    _assert_nothing_written(out_dir)
    assert _contents(path) == before


def test_cli_finish_unknown_preset_exits_2(clip, tmp_path, capsys):
    out_dir = tmp_path / "out"
    before = clip.read_bytes()

    exit_code = cli.main(["finish", str(clip), "--preset", "nope", "--out", str(out_dir)])

    assert exit_code == 2
    err = capsys.readouterr().err
    assert "postprod: error: unknown preset 'nope'; known presets: " in err
    assert CHEAP_PRESET in err
    _assert_nothing_written(out_dir)
    assert clip.read_bytes() == before


@pytest.fixture
def project(tmp_path, clip) -> Path:
    """A job folder holding ``clip.mp4``, which job files name relative to themselves."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copyfile(clip, folder / "clip.mp4")
    return folder


def _job_file(folder: Path, shots) -> Path:
    job = {"version": 1, "name": "bad-input", "shots": shots, "deliverables": [{"preset": CHEAP_PRESET}]}
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("shots", "field_message"),
    [
        ("clip.mp4", "shots: Input should be a valid list"),
        ([{"source": "clip.mp4", "in": 2, "out": 1}], "shots.0: in point 2 is not before out point 1"),
        ([{"source": "clip.mp4", "in": "later"}], "shots.0.in: not a time: 'later' "
         "(use seconds like 1.5, frames like 36f, or timecode HH:MM:SS:FF)"),
    ],
    ids=["shots-wrong-type", "in-after-out", "in-not-a-time"],
)
def test_cli_run_bad_job_exits_2(project, tmp_path, capsys, shots, field_message):
    job_path = _job_file(project, shots)
    out_dir = tmp_path / "out"
    before = {path: path.read_bytes() for path in project.iterdir()}

    exit_code = cli.main(["run", str(job_path), "--out", str(out_dir)])

    assert exit_code == 2
    err_lines = capsys.readouterr().err.splitlines()
    assert f"postprod: error: {job_path}:" in err_lines
    assert field_message in err_lines
    _assert_nothing_written(out_dir)
    assert {path: path.read_bytes() for path in project.iterdir()} == before


@pytest.mark.parametrize(
    ("shots", "exit_code"),
    [([{"source": "missing.mp4"}], 3), ([{"source": "clip.mp4", "in": "12f", "out": "6f"}], 2)],
    ids=["missing-source", "frames-in-after-out"],
)
def test_cli_run_refuses_bad_sources_before_the_flow(project, tmp_path, shots, exit_code):
    job_path = _job_file(project, shots)
    assert cli.main(["run", str(job_path), "--out", str(tmp_path / "out")]) == exit_code
