"""Benchmark how a long sequence's memory grows with its shot count: windows against one graph.

The same N one-second Sora 2 shaped shots (1280x720 24 fps H.264 with 96 kHz AAC) are joined with
6-frame dissolves into 1920x1080 24 fps H.264 (libx264 High, veryfast, crf 18), for several N, by

a. the hand-written one-graph ffmpeg command of ``bench/sequence.py`` (every shot an input of one
   ``xfade``/``acrossfade`` chain), at veryfast;
b. postprod rendering the whole sequence as one graph (``sequence.shots_per_render`` = N);
c. postprod as it renders by default: windows of at most 8 shots, each one ffmpeg, then a join that
   copies the encoded pictures and encodes the sound once.

Each variant runs as a child process; the table gives wall time, CPU seconds and the largest single
process's peak RSS (``ru_maxrss`` from ``os.wait4``: in postprod that is the ffmpeg of the biggest
window) and the whole process tree's polled peak. One graph opens every input at the start and keeps
its decoder and frame queues to the end, so its memory grows with N; windows keep it flat.

Run from the repository root::

    python bench/sequence_memory.py --counts 5 10 20 40
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

from rich.console import Console
from rich.table import Table

from machine import print_machine
from sequence import CONSOLE_WIDTH, Edit, hand_written, run_child, synthesise_shots

REPOSITORY = Path(__file__).resolve().parent.parent
DISSOLVE_FRAMES = 6
X264_SPEED = "veryfast"
"""Faster than the preset's medium so forty shots take minutes; memory is about inputs, not the encoder."""

POSTPROD_SCRIPT = """
import sys
from pathlib import Path
from pipeline.jobs.finish import finish
from pipeline.model.job import parse_job
out_dir, shots_per_render, speed, shots = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
job = parse_job({
    "version": 1, "name": "sequence",
    "shots": [{"source": shot, "transition": {"type": "dissolve", "frames": %d}} for shot in shots],
    "sequence": {"shots_per_render": shots_per_render},
    "deliverables": [{"preset": "web-h264-1080p", "overrides": {"video": {"options": {"preset": speed}}}}],
}, Path.cwd())
finish(job, out_dir)
""" % DISSOLVE_FRAMES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[5, 10, 20, 40], help="shot counts to try")
    args = parser.parse_args()
    console = Console(width=CONSOLE_WIDTH)
    print_machine(console)
    table = Table(title=f"1 s Sora 2 shaped shots, {DISSOLVE_FRAMES}-frame dissolves, to 1080p24 H.264 "
                        f"({X264_SPEED})")
    for column in ("shots", "variant", "wall s", "CPU s", "largest process MiB", "process tree MiB"):
        table.add_column(column, justify="right" if column != "variant" else "left")
    with tempfile.TemporaryDirectory(prefix="sequence-memory-") as tmp:
        workdir = Path(tmp)
        shots = synthesise_shots(workdir / "shots", max(args.counts), Fraction(1))
        for count in args.counts:
            edit = Edit(shots[:count], 24, DISSOLVE_FRAMES)
            hand = hand_written(edit, workdir / f"hand{count}.mp4")
            hand[hand.index("medium")] = X264_SPEED
            variants = {
                "a. hand-written, one graph": hand,
                "b. postprod, one graph": [sys.executable, "-c", POSTPROD_SCRIPT, str(workdir / f"one{count}"),
                                           str(count), X264_SPEED, *map(str, edit.shots)],
                "c. postprod, windows of 8": [sys.executable, "-c", POSTPROD_SCRIPT, str(workdir / f"win{count}"),
                                              "8", X264_SPEED, *map(str, edit.shots)],
            }
            for name, argv in variants.items():
                run = run_child(argv, workdir, {**os.environ, "PYTHONPATH": str(REPOSITORY)})
                if run.error:
                    console.print(f"FAILED: {count} shots, {name}: {run.error}", style="bold red")
                    continue
                console.print(f"{count:3d} shots  {name:28s} {run.wall_s:6.1f} s  "
                              f"{run.process_rss_kib / 1024:6.0f} MiB", highlight=False)
                table.add_row(str(count), name, f"{run.wall_s:.1f}", f"{run.cpu_s:.1f}",
                              f"{run.process_rss_kib / 1024:.0f}", f"{run.tree_rss_kib / 1024:.0f}")
    console.print(table)


if __name__ == "__main__":
    main()
