"""Benchmark that the Python enhancement stage streams: peak memory of a 10 s and a 60 s 1080p source
put through optical-flow rate conversion (every output frame between two source frames built by the
interpolator) must be within 20 % of each other.

Each run is a fresh child process calling :func:`pipeline.prestage.enhance_stage.make_intermediate` (decode
through a pipe, flow in numpy/OpenCV, FFV1 encode through a pipe); ``os.wait4`` gives the child's
peak RSS, and ``RUSAGE_CHILDREN`` inside it the largest of its ffmpeg processes. Sources are
``testsrc2`` at a low rate (default 12 -> 24 fps) so the 60 s run stays within a few minutes on
2 cores; memory depends on the raster, not the rate.

Run from the repository root::

    python bench/enhance_memory.py --short 10 --long 60 --rate 12 --target 24
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from machine import print_machine
from pipeline.media.runner import run_ffmpeg

CHILD = """
import resource, sys
from fractions import Fraction
from pathlib import Path
from pipeline.prestage.enhance_stage import StageKey, make_intermediate
from pipeline.media.probe import probe
source, target, rate = Path(sys.argv[1]), Path(sys.argv[2]), Fraction(sys.argv[3])
make_intermediate(StageKey(source, rate, False, None), probe(source), target)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def make_source(path: Path, seconds: int, rate: int) -> Path:
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r={rate}:d={seconds}", "-c:v", "libx264",
                "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)])
    return path


def measure(source: Path, target: Path, rate: int) -> tuple[int, int, float, float]:
    """Peak RSS of the Python child and of its largest ffmpeg (KiB), its CPU and wall seconds."""
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(source), str(target), str(rate)],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    _, status, usage = os.wait4(child.pid, 0)
    output = child.stdout.read()
    if status != 0:
        raise SystemExit(f"child failed for {source}")
    return usage.ru_maxrss, int(output.strip().splitlines()[-1]), usage.ru_utime + usage.ru_stime, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=10, help="seconds of the short source")
    parser.add_argument("--long", type=int, default=60, help="seconds of the long source")
    parser.add_argument("--rate", type=int, default=12, help="source frame rate")
    parser.add_argument("--target", type=int, default=24, help="rate the flow interpolator converts to")
    args = parser.parse_args()
    console = Console(width=120)
    print_machine(console)
    table = Table(title=f"Flow {args.rate} -> {args.target} fps, 1920x1080, streamed")
    for column in ("source", "peak RSS Python MiB", "largest ffmpeg MiB", "CPU s", "wall s"):
        table.add_column(column, justify="right")
    peaks = []
    with tempfile.TemporaryDirectory() as folder:
        for seconds in (args.short, args.long):
            source = make_source(Path(folder) / f"src-{seconds}.mp4", seconds, args.rate)
            target = Path(folder) / f"out-{seconds}.mov"
            python_kib, ffmpeg_kib, cpu, wall = measure(source, target, args.target)
            target.unlink()
            peaks.append(python_kib)
            table.add_row(f"{seconds} s", f"{python_kib / 1024:.0f}", f"{ffmpeg_kib / 1024:.0f}", f"{cpu:.1f}",
                          f"{wall:.1f}")
    console.print(table)
    console.print(f"long / short peak RSS: {peaks[1] / peaks[0]:.3f} (goal within 1.20)")


if __name__ == "__main__":
    main()
