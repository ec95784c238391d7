"""What burnt-in overlays cost: the same deliverable rendered with and without them, side by side.

A Sora 2 shaped clip (1280x720 24 fps, synthesised by ``pipeline.media.synth``) is finished into
``web-h264-1080p`` twice per round: once plain, once with a title (fade and slide), a lower third
with its bar, captions from an SRT file (one cue a second), a logo PNG with opacity and fades, and
timecode. Only the ffmpeg render is timed (the same planner output ``pipeline.render.renderer`` runs), wall
clock and CPU seconds of the child process; rounds alternate the order so machine noise falls on
both. Goal: overlays add at most 15 % to the render's wall time.

Run from the repository root::

    python bench/overlays.py --seconds 12 --repeat 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from machine import print_machine
from pipeline.jobs.analyses import probe_sources
from pipeline.model.job import parse_job
from pipeline.media.runner import run_ffmpeg
from pipeline.plan.facts import JobFacts
from pipeline.plan.planner import plan_job
from pipeline.model.presets import load_presets
from pipeline.media.synth import SHAPES, synthesize
from pipeline.render.prepare import prepared

SHAPE = "sora2-1280x720-24"
PRESET = "web-h264-1080p"
GOAL_RATIO = 1.15


def _overlays(folder: Path, seconds: int) -> list[dict]:
    logo = folder / "logo.png"
    image = np.zeros((120, 240, 4), dtype=np.uint8)
    image[20:100, 20:220] = (40, 180, 250, 255)
    cv2.imwrite(str(logo), image)
    captions = folder / "captions.srt"
    captions.write_text("".join(
        f"{n + 1}\n00:00:{n:02d},100 --> 00:00:{n:02d},900\nCaption number {n + 1}, a line of speech\n\n"
        for n in range(seconds)), encoding="utf-8")
    return [
        {"kind": "title", "text": "Solarfly: the spot", "start": 0.5, "duration": 3, "fade_in_frames": 12,
         "fade_out_frames": 12, "slide_in": "up"},
        {"kind": "lower_third", "text": "Ada Lovelace", "subtext": "Analyst, Difference Engines", "start": 1,
         "duration": 4, "fade_in_frames": 6},
        {"kind": "captions", "captions": str(captions)},
        {"kind": "logo", "image": str(logo), "opacity": 0.8, "fade_in_frames": 12},
        {"kind": "timecode", "anchor": "top_left"},
    ]


def _render_s(plan) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with prepared(plan.prepared_files):
        run_ffmpeg(list(plan.args), expected_duration_s=float(plan.duration_s))
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    console = Console(width=120)
    print_machine(console)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        clip = synthesize(SHAPES[SHAPE], folder / "clip.mp4", Fraction(options.seconds))
        base = {"version": 1, "name": "bench", "shots": [{"source": str(clip)}],
                "deliverables": [{"preset": PRESET}]}
        jobs = {"plain": parse_job(base, folder),
                "overlays": parse_job({**base, "overlays": _overlays(folder, options.seconds)}, folder)}
        media = probe_sources(jobs["plain"])
        plans = {name: plan_job(job, JobFacts(media), load_presets(), folder / name).renders[0] for name, job in jobs.items()}
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in plans}
        for round_number in range(options.repeat):
            order = list(plans) if round_number % 2 == 0 else list(reversed(plans))
            for name in order:
                (folder / name).mkdir(exist_ok=True)
                times[name].append(_render_s(plans[name]))
    table = Table(title=f"{options.seconds} s {SHAPE} into {PRESET}, median of {options.repeat}")
    for column in ("render", "wall s", "CPU s", "wall ratio", "CPU ratio"):
        table.add_column(column)
    plain_wall = statistics.median(wall for wall, _ in times["plain"])
    plain_cpu = statistics.median(cpu for _, cpu in times["plain"])
    for name, samples in times.items():
        wall = statistics.median(value for value, _ in samples)
        cpu = statistics.median(value for _, value in samples)
        table.add_row(name, f"{wall:.2f}", f"{cpu:.2f}", f"{wall / plain_wall:.3f}", f"{cpu / plain_cpu:.3f}")
    console.print(table)
    ratio = statistics.median(wall for wall, _ in times["overlays"]) / plain_wall
    verdict = "meets" if ratio <= GOAL_RATIO else "misses"
    console.print(f"overlays: {ratio:.3f}x the plain render's wall time; {verdict} the goal of {GOAL_RATIO}x")


if __name__ == "__main__":
    main()
