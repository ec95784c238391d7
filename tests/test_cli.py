"""The command line's contract: version, exit codes, a closed pipe, 80 columns, ./dev's commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

import pipeline
from pipeline.model.presets import load_presets
from postprod.cli import EXIT_CLOSED_PIPE, main, presets_table

ROOT = Path(__file__).resolve().parents[1]


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"postprod {pipeline.__version__}"


def test_presets_table_fits_80_columns():
    console = Console(width=80, record=True, file=open(os.devnull, "w"))
    presets = load_presets()
    console.print(presets_table(presets))
    lines = console.export_text().splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    starts = [line.split(" ", 1)[0] for line in lines]
    assert all(name in starts for name in presets), "every preset name is whole on a line of its own"


def test_closed_pipe_ends_quietly_with_141(make_colour_clip, monkeypatch):
    """`postprod probe --json CLIP... | head -1`: the reader has gone; no traceback, exit 141, and
    standard output no longer points at the pipe (so Python's exit-time flush stays quiet too)."""
    clip = make_colour_clip("red", seconds=1)
    read_end, write_end = os.pipe()
    os.close(read_end)
    closed_pipe = open(write_end, "w")
    monkeypatch.setattr(sys, "stdout", closed_pipe)
    try:
        assert main(["probe", "--json", *[str(clip)] * 100]) == EXIT_CLOSED_PIPE
        assert os.fstat(write_end).st_ino == os.stat(os.devnull).st_ino
    finally:
        monkeypatch.undo()
        closed_pipe.close()


def test_dev_rejects_an_unknown_command():
    result = subprocess.run([str(ROOT / "dev"), "bogus"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "unknown command 'bogus'" in result.stderr and "./dev test" in result.stderr
    assert subprocess.run([str(ROOT / "dev"), "help"], capture_output=True, timeout=30).returncode == 0


def test_the_command_line_loads_neither_scipy_nor_prefect_before_a_command_needs_them():
    """Every ``postprod`` process pays for what the command line imports: SciPy (0.8 CPU s) comes
    with the loudness meter and the sync matcher, Prefect (1.1 s) with a flow run."""
    code = "import sys, postprod.cli; print(sorted({name.split('.')[0] for name in sys.modules} & {'scipy', 'prefect'}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip() == "[]"


def test_the_program_ends_at_once_with_its_output_delivered(make_colour_clip):
    """Run as a program, postprod ends without Python's teardown (postprod/fast_exit.py): what it
    printed arrives whole, and a reader gone away still means exit 141 and nothing on stderr."""
    clip = make_colour_clip("red", seconds=1)
    command = [sys.executable, "-m", "postprod.cli", "probe", "--json", str(clip), str(clip)]
    whole = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert [facts["video"]["frame_count"] for facts in json.loads(whole.stdout)] == [24, 24]
    gone = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    gone.stdout.close()
    assert gone.wait(timeout=120) == EXIT_CLOSED_PIPE
    assert gone.stderr.read() == b""
