"""The batch's render graphs against its hand-written commands, encode by encode.

``bench/batch.py`` compares ``postprod batch`` with two hand-written ffmpeg commands per clip. This
prints both sides' argument lists for one Sora 2 shaped clip (1280x720 24 fps H.264, 96 kHz AAC)
into ``web-h264-1080p`` and ``social-9x16``, as the batch plans them (sync check, loudness
correction) and times each (CPU seconds of the ffmpeg process, median of interleaved rounds):

- each deliverable encoded on its own: hand-written, and postprod's graph planned for it alone;
- both in one ffmpeg: postprod's graph as the batch renders it (one decode split to both, each
  encoder given its share of the cores as threads), and the same with the encoders' own default
  threads;
- the filters alone, no encoder (``-f null``): hand-written against postprod's graph, for each
  deliverable, so the scaler, conform and sound chain show without x264's noise.

Run from the repository root::

    python bench/batch_graphs.py [--seconds 4] [--repeat 3] [--print-args]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from rich.console import Console
from rich.table import Table

from batch import HAND_VIDEO, PRESETS, _hand_written
from machine import print_machine
from pipeline.analysis.cache import AnalysisCache
from pipeline.jobs.analyses import analyse_sources, check_sync, probe_sources
from pipeline.jobs.sequence import plan_with_analysis
from pipeline.media.runner import ffmpeg_executable
from pipeline.media.synth import SHAPES, ClipContent, synthesize
from pipeline.model.job import job_for_clips
from pipeline.model.presets import load_presets
from pipeline.plan.facts import JobFacts

Argv = list[str]


def planned_args(source: Path, presets: list[str], out: Path) -> Argv:
    """postprod's one ffmpeg command for ``presets``, planned as the batch plans it."""
    out.mkdir(exist_ok=True)
    job = job_for_clips([source], presets, name="clip")
    media = probe_sources(job)
    analyse = AnalysisCache(None).get_or_compute
    found = analyse_sources(job, media, load_presets(), analyse, sync=True, loudness=True)
    _, corrections = check_sync(job, media, analyse, found.sync_facts)
    facts = JobFacts(media, None, corrections, found.reframe, found.sound_activity, source_loudness=found.loudness,
                     active_area=found.active_area)
    (render,) = plan_with_analysis(job, facts, load_presets(), out).renders
    return [ffmpeg_executable(), "-v", "error", "-y", *render.args]


def default_threads(argv: Argv) -> Argv:
    """``argv`` without its ``-threads:v`` options: each encoder starts its own default threads."""
    dropped = {index for index, item in enumerate(argv) if item == "-threads:v"}
    return [item for index, item in enumerate(argv) if index not in dropped and index - 1 not in dropped]


def filters_only(argv: Argv) -> Argv:
    """``argv`` with its outputs replaced by the null muxer: decode and filters, no encoder."""
    if "-filter_complex" in argv:
        graph = argv.index("-filter_complex")
        maps = [item for index, item in enumerate(argv) if index and argv[index - 1] == "-map"]
        return [*argv[: graph + 2], *(item for label in maps for item in ("-map", label)),
                "-c:v", "wrapped_avframe", "-c:a", "pcm_f32le", "-f", "null", "-"]
    source = argv[argv.index("-i") + 1]
    video = argv[argv.index("-vf") + 1]
    return [ffmpeg_executable(), "-v", "error", "-i", source, "-vf", video, "-ar", "48000", "-ac", "2",
            "-c:v", "wrapped_avframe", "-c:a", "pcm_f32le", "-f", "null", "-"]


def cpu_seconds(argv: Argv) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of one ffmpeg run."""
    started = time.monotonic()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    if status:
        raise SystemExit(f"ffmpeg failed: {child.stderr.read().decode()[-2000:]}\n{argv}")
    return usage.ru_utime + usage.ru_stime, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--print-args", action="store_true", help="print every command's arguments")
    args = parser.parse_args()
    console = Console(width=160)
    print_machine(console)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        events = tuple(Fraction(second) for second in range(1, args.seconds))
        source = synthesize(SHAPES["sora2-1280x720-24"], root / "clip.mp4", Fraction(args.seconds),
                            content=ClipContent(event_times_s=events))
        variants: dict[str, Argv] = {}
        for preset in PRESETS:
            variants[f"{preset}: hand-written"] = _hand_written(source, preset, root / f"hand-{preset}.mp4")
            variants[f"{preset}: postprod, alone"] = planned_args(source, [preset], root / "alone")
        variants["both: postprod, one ffmpeg (as the batch)"] = planned_args(source, list(PRESETS), root / "both")
        variants["both: postprod, one ffmpeg, encoders' default threads"] = default_threads(
            variants["both: postprod, one ffmpeg (as the batch)"])
        for preset in PRESETS:
            variants[f"{preset}: filters only, hand-written"] = filters_only(variants[f"{preset}: hand-written"])
            variants[f"{preset}: filters only, postprod"] = filters_only(variants[f"{preset}: postprod, alone"])
        if args.print_args:
            for name, argv in variants.items():
                print(f"{name}:\n{subprocess.list2cmdline(argv[1:])}\n")
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for round_number in range(args.repeat):
            names = list(variants)
            for name in names[round_number % len(names):] + names[: round_number % len(names)]:
                runs[name].append(cpu_seconds(variants[name]))
    table = Table("command", "CPU s", "wall s", title=f"{args.seconds} s clip, median of {args.repeat}",
                  title_justify="left")
    for name, results in runs.items():
        table.add_row(name, f"{statistics.median(r[0] for r in results):.2f}",
                      f"{statistics.median(r[1] for r in results):.2f}")
    console.print(table)
    hand = sum(statistics.median(r[0] for r in runs[f"{p}: hand-written"]) for p in PRESETS)
    both = statistics.median(r[0] for r in runs["both: postprod, one ffmpeg (as the batch)"])
    console.print(f"postprod's one ffmpeg against the two hand-written commands: {both / hand:.2f}x CPU "
                  f"(sizes {', '.join(f'{w}x{h}' for _, _, (w, h) in HAND_VIDEO.values())})", highlight=False)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
