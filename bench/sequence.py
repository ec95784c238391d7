"""Benchmark a multi-shot sequence with dissolves: postprod against hand-written ffmpeg and MoviePy 2.

Ten Sora 2 shaped shots (1280x720 24 fps H.264 with 96 kHz AAC, synthesised by ``pipeline.media.synth``)
are joined with 12-frame dissolves and equal-power audio crossfades into one 1920x1080 24 fps H.264
file (libx264 High, crf 18, preset medium, 2 s closed GOP, yuv420p, AAC 256k 48 kHz stereo,
faststart), four ways:

a. a hand-written ffmpeg command: one filter graph chaining ``xfade`` and ``acrossfade`` (the
   baseline). xfade takes 4:4:4 or RGB only, so each shot is scaled straight to yuv444p and the
   result made 4:2:0 once, after the last dissolve: no conversions that ffmpeg would insert itself;
b. postprod: ``pipeline.jobs.finish.finish`` on a job built with ``parse_job`` (one ``web-h264-1080p``
   deliverable) in a fresh Python process, so the timing includes interpreter start-up, imports,
   probing the shots, planning, the render, verification (re-probe, audio decode), hashing and the
   manifest;
b2. postprod's render path alone: probe, plan, render (windows and join) and verification, without
   the checks the hand-written command does not make (sync analysis of every source, the loudness
   measurement passes, QC of the output, editorial exports), so the cost of those and of the
   render show apart;
c. a MoviePy 2 script: ``VideoFileClip`` scaled on decode (``target_resolution``, MoviePy's
   fastest way to reach 1080p), ``CrossFadeIn`` on each incoming shot composited over the
   outgoing one with ``concatenate_videoclips(..., padding=-d, method="compose")`` (a
   ``CrossFadeOut`` on the outgoing shot as well would dip towards the black background instead of
   dissolving), linear ``AudioFadeIn``/``AudioFadeOut`` on the overlapping sounds, written with the
   same encoder settings through the same ffmpeg binary (``IMAGEIO_FFMPEG_EXE``).

Each variant runs as a child process, timed end to end (wall clock). Memory is measured two ways:
peak RSS of the whole process tree, the sum over the child and all its descendants polled from
``/proc`` every 0.1 s (MoviePy keeps a reader ffmpeg per shot alive next to Python and the writer;
shared pages count once per process, so the sum overstates a little), and the largest single
process's peak from ``os.wait4``'s ``ru_maxrss``; ``os.wait4`` also gives CPU seconds, which hold up
better than wall time on a busy machine. Rounds are interleaved and rotated so machine noise falls on
all variants alike; the table gives medians. A variant that fails is reported with its error and not
run again; the others go on. Every output is probed: frame count against the timeline's (shots x
frames - joins x dissolve frames), decoded audio length against the picture's, and format (codec,
profile, pixel format, size, rate, audio) against the hand-written output; differences are printed
as warnings.

Goal: postprod within 1.10x of the hand-written command's wall time.

Run from the repository root (MoviePy comes with the ``bench`` extra: ``pip install -e '.[bench]'``)::

    python bench/sequence.py --shots 10 --seconds 3 --dissolve-frames 12 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from rich.console import Console
from rich.table import Table

from machine import print_machine
from pipeline.media.runner import ffmpeg_executable
from pipeline.media.probe import decoded_audio_samples, probe
from pipeline.media.synth import SHAPES, synthesize

SHAPE = "sora2-1280x720-24"
FPS = 24
SAMPLE_RATE = 48000
PRESET = "web-h264-1080p"
GOAL_RATIO = 1.10
POLL_S = 0.1
"""How often the process tree's RSS is sampled."""
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
ERROR_TAIL_LINES = 8
CONSOLE_WIDTH = 132
"""Wide enough for the table unwrapped, also when stdout is a pipe or a log file (rich assumes 80)."""

COLOUR_TAGS = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv"
CONFORM = f"scale=1920:1080:flags=lanczos,format=yuv444p,setsar=1,{COLOUR_TAGS}"
"""Per shot, into the 4:4:4 that xfade works in."""
X264_OPTIONS = [
    "-profile:v", "high", "-preset", "medium", "-crf", "18", "-g", str(2 * FPS), "-flags", "+cgop",
    "-pix_fmt", "yuv420p",
]  # fmt: skip
"""What the ``web-h264-1080p`` preset asks of libx264; the hand-written command and MoviePy use it."""
MUX_OPTIONS = ["-movflags", "+faststart"]

POSTPROD_SCRIPT = """
import sys
from pathlib import Path
from pipeline.jobs.finish import finish
from pipeline.model.job import parse_job
out_dir, dissolve_frames, preset, shots = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
transition = {"type": "dissolve", "frames": dissolve_frames}
job = parse_job({
    "version": 1, "name": "sequence",
    "shots": [{"source": shot, "transition": transition} for shot in shots],
    "deliverables": [{"preset": preset}],
}, Path.cwd())
finish(job, out_dir)
"""
"""What a script using the library writes; run with ``python -c`` so start-up and imports count."""

RENDER_ONLY_SCRIPT = """
import sys
from pathlib import Path
from pipeline.jobs.analyses import probe_sources
from pipeline.model.job import parse_job
from pipeline.plan.facts import JobFacts
from pipeline.plan.planner import plan_job
from pipeline.model.presets import load_presets
from pipeline.render.renderer import remove_intermediates, render
out_dir, dissolve_frames, preset, shots = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
transition = {"type": "dissolve", "frames": dissolve_frames}
job = parse_job({
    "version": 1, "name": "sequence",
    "shots": [{"source": shot, "transition": transition} for shot in shots],
    "deliverables": [{"preset": preset, "overrides": {"loudness": None}}],
}, Path.cwd())
plan = plan_job(job, JobFacts(probe_sources(job)), load_presets(), out_dir)
try:
    for render_plan in plan.renders:
        render(render_plan)
finally:
    remove_intermediates(plan)
"""
"""The render path alone: probe, plan, windows and join, verification; no sync analysis, loudness
passes, QC or editorial exports (the checks the hand-written command does not make)."""

MOVIEPY_SCRIPT = """
import sys
from moviepy import VideoFileClip, afx, concatenate_videoclips, vfx
output, overlap_s, fps, sample_rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
x264_options, shots = sys.argv[5].split(), sys.argv[6:]
clips = []
for number, shot in enumerate(shots):
    clip = VideoFileClip(shot, target_resolution=(1920, 1080), audio_fps=sample_rate)
    effects = [vfx.CrossFadeIn(overlap_s), afx.AudioFadeIn(overlap_s)] if number else []
    if number < len(shots) - 1:
        effects.append(afx.AudioFadeOut(overlap_s))
    clips.append(clip.with_effects(effects))
sequence = concatenate_videoclips(clips, padding=-overlap_s, method="compose")
sequence.write_videofile(
    output, fps=fps, codec="libx264", preset="medium", ffmpeg_params=x264_options,
    audio_codec="aac", audio_bitrate="256k", audio_fps=sample_rate, logger=None,
)
"""
"""The MoviePy 2 way to join shots with crossfades; its temporary audio file goes to the cwd."""

Argv = list[str]


@dataclass(frozen=True)
class Edit:
    """The sequence every variant renders."""

    shots: list[Path]
    shot_frames: int
    dissolve_frames: int

    @property
    def frame_count(self) -> int:
        return len(self.shots) * self.shot_frames - (len(self.shots) - 1) * self.dissolve_frames

    @property
    def overlap_s(self) -> Fraction:
        return Fraction(self.dissolve_frames, FPS)


def hand_written(edit: Edit, output: Path) -> Argv:
    """Variant a: one ffmpeg; each shot scaled to 4:4:4, xfade and acrossfade chained shot by shot,
    4:2:0 at the end."""
    count = len(edit.shots)
    inputs = [arg for shot in edit.shots for arg in ("-i", str(shot))]
    graph = [f"[{n}:v]{CONFORM}[v{n}];[{n}:a]aresample={SAMPLE_RATE}[a{n}]" for n in range(count)]
    step_s = Fraction(edit.shot_frames - edit.dissolve_frames, FPS)
    crossfade_samples = edit.dissolve_frames * SAMPLE_RATE // FPS
    video, audio = "v0", "a0"
    for n in range(1, count):
        graph.append(f"[{video}][v{n}]xfade=transition=fade:duration={float(edit.overlap_s)}"
                     f":offset={float(n * step_s)}[x{n}]")
        graph.append(f"[{audio}][a{n}]acrossfade=ns={crossfade_samples}:c1=qsin:c2=qsin[y{n}]")
        video, audio = f"x{n}", f"y{n}"
    graph.append(f"[{video}]format=yuv420p[picture]")
    return [
        ffmpeg_executable(), "-nostdin", "-y", "-loglevel", "error", *inputs,
        "-filter_complex", ";".join(graph), "-map", "[picture]", "-map", f"[{audio}]",
        "-c:v", "libx264", *X264_OPTIONS,
        "-c:a", "aac", "-b:a", "256k", "-ar", str(SAMPLE_RATE), "-ac", "2", *MUX_OPTIONS, str(output),
    ]  # fmt: skip


def postprod(edit: Edit, output: Path) -> Argv:
    """Variant b: the library in a fresh interpreter; it names its output ``sequence_<preset>.mp4``."""
    return [sys.executable, "-c", POSTPROD_SCRIPT, str(output.parent), str(edit.dissolve_frames), PRESET,
            *map(str, edit.shots)]


def render_only(edit: Edit, output: Path) -> Argv:
    """Variant b2: the library's render path without the checks around it."""
    return [sys.executable, "-c", RENDER_ONLY_SCRIPT, str(output.parent), str(edit.dissolve_frames), PRESET,
            *map(str, edit.shots)]


def moviepy(edit: Edit, output: Path) -> Argv:
    """Variant c: the MoviePy 2 script."""
    return [sys.executable, "-c", MOVIEPY_SCRIPT, str(output), str(float(edit.overlap_s)), str(FPS),
            str(SAMPLE_RATE), " ".join(X264_OPTIONS + MUX_OPTIONS), *map(str, edit.shots)]


@dataclass(frozen=True)
class Variant:
    """One way of rendering the edit."""

    key: str
    name: str
    command: Callable[[Edit, Path], Argv]
    """The edit and the output path to aim for in; the child process to run out."""


VARIANTS = (
    Variant("a", "hand-written ffmpeg", hand_written),
    Variant("b", "postprod (library)", postprod),
    Variant("b2", "postprod render path only", render_only),
    Variant("c", "MoviePy 2", moviepy),
)
"""The first is the baseline that ratios are given against."""


@dataclass(frozen=True)
class Run:
    """One timed run of a variant."""

    error: str | None
    """Why the variant failed (exit status and the tail of its output); None when it succeeded."""
    wall_s: float
    cpu_s: float
    """User + system seconds of the child and its reaped descendants."""
    tree_rss_kib: int
    """Largest sum of RSS over the child and its descendants, sampled every :data:`POLL_S`."""
    process_rss_kib: int
    """Largest single process's peak RSS (``ru_maxrss`` of the child and its reaped descendants)."""


def _process_table() -> dict[int, tuple[int, int]]:
    """Every visible process: pid -> (parent pid, RSS in KiB)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
        table[int(entry.name)] = (int(fields[1]), int(fields[21]) * PAGE_KIB)
    return table


def tree_rss_kib(root: int) -> int:
    """Summed RSS of ``root`` and all its descendants."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += table.get(pid, (0, 0))[1]
        pending += children.get(pid, [])
    return total


def run_child(argv: Argv, cwd: Path, env: dict[str, str]) -> Run:
    """Run one process to completion, sampling its tree's RSS until it exits; a failure is recorded,
    not raised."""
    log = cwd / "log.txt"
    started = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=sink,
                                   stderr=subprocess.STDOUT)
    peak_kib, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak_kib
        while not done.wait(POLL_S):
            peak_kib = max(peak_kib, tree_rss_kib(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.perf_counter() - started
    done.set()
    sampler.join()
    returncode = os.waitstatus_to_exitcode(status)
    error = None
    if returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-ERROR_TAIL_LINES:])
        error = f"exit {returncode}:\n{tail}"
    return Run(error, wall_s, usage.ru_utime + usage.ru_stime, peak_kib, usage.ru_maxrss)


def output_of(folder: Path) -> Path:
    """The one video a variant wrote into its folder."""
    (video,) = folder.glob("*.mp4")
    return video


def time_variants(edit: Edit, workdir: Path, repeat: int, console: Console) -> dict[str, list[Run]]:
    """Every variant ``repeat`` times into a fresh folder, rounds interleaved and each round rotated;
    a variant that failed is not run again (its list ends with the failed run)."""
    env = {**os.environ, "IMAGEIO_FFMPEG_EXE": ffmpeg_executable()}
    runs: dict[str, list[Run]] = {variant.key: [] for variant in VARIANTS}
    for round_index in range(repeat):
        shift = round_index % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            if runs[variant.key] and runs[variant.key][-1].error:
                continue
            folder = workdir / variant.key
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            run = run_child(variant.command(edit, folder / "sequence.mp4"), folder, env)
            runs[variant.key].append(run)
            if run.error:
                console.print(f"  round {round_index + 1}/{repeat}  {variant.key}. {variant.name} FAILED",
                              style="bold red", highlight=False)
                continue
            console.print(f"  round {round_index + 1}/{repeat}  {variant.key}. {variant.name:<20} "
                          f"{run.wall_s:7.2f} s  CPU {run.cpu_s:7.2f} s  tree {run.tree_rss_kib / 1024:5.0f} MiB",
                          highlight=False)
    return runs


@dataclass(frozen=True)
class Output:
    """What a variant's output probes as."""

    frames: int
    audio_s: float
    """Decoded audio length (encoder priming removed)."""
    signature: tuple
    """Format facts that must match the baseline's."""


def inspect(path: Path) -> Output:
    """Probe an output; the sound is decoded to count its samples."""
    info = probe(path)
    video, audio = info.video, info.audio
    sound = (audio.codec, audio.sample_rate, audio.channels) if audio else None
    signature = (video.codec, video.profile, video.pix_fmt, f"{video.display_width}x{video.display_height}",
                 str(video.frame_rate), sound)
    audio_s = decoded_audio_samples(path) / audio.sample_rate if audio else 0.0
    return Output(video.frame_count, audio_s, signature)


def check_outputs(outputs: dict[str, Output], edit: Edit) -> list[str]:
    """Warnings for each output whose frames, sound length or format are not what was asked."""
    baseline = outputs[VARIANTS[0].key].signature
    expected_s = edit.frame_count / FPS
    warnings = []
    for variant in VARIANTS:
        found = outputs.get(variant.key)
        if found is None:
            continue
        if found.frames != edit.frame_count:
            warnings.append(f"WARNING: {variant.key}. {variant.name} has {found.frames} frames, "
                            f"expected {edit.frame_count} ({found.frames - edit.frame_count:+d})")
        if abs(found.audio_s - expected_s) > 1024 / SAMPLE_RATE:
            warnings.append(f"WARNING: {variant.key}. {variant.name} has {found.audio_s:.3f} s of sound, "
                            f"the picture asks for {expected_s:.3f} s")
        if found.signature != baseline:
            warnings.append(f"WARNING: {variant.key}. {variant.name} probes as {found.signature}, "
                            f"{VARIANTS[0].key}. as {baseline}")
    return warnings


def median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(run, field) for run in runs)


def results_table(runs: dict[str, list[Run]], outputs: dict[str, Output], edit: Edit, title: str) -> Table:
    """One row per variant: medians of its runs and what its output probes as."""
    baseline_s = median(runs[VARIANTS[0].key], "wall_s")
    table = Table(title=title)
    table.add_column("variant")
    for column in ("wall s", f"vs {VARIANTS[0].key}", "CPU s", "peak tree RSS MiB", "largest process MiB",
                   f"frames (expected {edit.frame_count})", f"audio s (expected {edit.frame_count / FPS:g})"):
        table.add_column(column, justify="right")
    for variant in VARIANTS:
        done, found = runs[variant.key], outputs.get(variant.key)
        if found is None:
            table.add_row(f"{variant.key}. {variant.name}", "failed", *[""] * 6)
            continue
        wall_s = median(done, "wall_s")
        table.add_row(
            f"{variant.key}. {variant.name}",
            f"{wall_s:.2f}",
            f"{wall_s / baseline_s:.3f}x",
            f"{median(done, 'cpu_s'):.2f}",
            f"{median(done, 'tree_rss_kib') / 1024:.0f}",
            f"{median(done, 'process_rss_kib') / 1024:.0f}",
            str(found.frames),
            f"{found.audio_s:.3f}",
        )
    return table


def goal_line(runs: dict[str, list[Run]]) -> str:
    goal = f"goal: postprod <= {GOAL_RATIO:.2f}x of the hand-written command: "
    if runs["b"][-1].error:
        return goal + "not measured, postprod failed"
    ratio = median(runs["b"], "wall_s") / median(runs[VARIANTS[0].key], "wall_s")
    return goal + f"{ratio:.3f}x {'met' if ratio <= GOAL_RATIO else 'MISSED'}"


def synthesise_shots(folder: Path, count: int, seconds: Fraction) -> list[Path]:
    return [synthesize(SHAPES[SHAPE], folder / f"shot{n:02d}.mp4", seconds) for n in range(count)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=10, help="number of shots (default 10)")
    parser.add_argument("--seconds", type=Fraction, default=Fraction(3), help="length of each shot (default 3)")
    parser.add_argument("--dissolve-frames", type=int, default=12, help="dissolve length at 24 fps (default 12)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per variant (default 1)")
    args = parser.parse_args()
    if args.shots < 2 or not 0 < args.dissolve_frames <= args.seconds * FPS // 2:
        parser.error("need at least 2 shots and a dissolve of 1 frame up to half a shot")
    return args


def main() -> None:
    args = parse_args()
    console = Console(width=CONSOLE_WIDTH)
    print_machine(console)
    with tempfile.TemporaryDirectory(prefix="sequence-bench-") as tmp:
        workdir = Path(tmp)
        console.print(f"synthesising {args.shots} x {args.seconds} s {SHAPE} shots ...")
        shots = synthesise_shots(workdir / "shots", args.shots, args.seconds)
        edit = Edit(shots, int(args.seconds * FPS), args.dissolve_frames)
        console.print(f"running {len(VARIANTS)} variants, {args.repeat} interleaved round(s) ...")
        runs = time_variants(edit, workdir, args.repeat, console)
        failed = {variant: runs[variant.key][-1].error for variant in VARIANTS if runs[variant.key][-1].error}
        outputs = {variant.key: inspect(output_of(workdir / variant.key))
                   for variant in VARIANTS if variant not in failed}
    for variant, error in failed.items():
        console.print(f"FAILED: {variant.key}. {variant.name}: {error}", style="bold red", highlight=False)
    if VARIANTS[0] in failed:
        sys.exit("the hand-written baseline failed; nothing to compare against")
    title = (f"{args.shots} x {args.seconds} s {SHAPE} shots, {args.dissolve_frames}-frame dissolves, "
             f"to 1920x1080 24 fps H.264; median of {args.repeat}")
    console.print(results_table(runs, outputs, edit, title))
    warnings = check_outputs(outputs, edit)
    for warning in warnings:
        console.print(warning, style="bold red", highlight=False)
    if not warnings:
        console.print("outputs agree: frame count, sound length and format as the hand-written command's")
    console.print(goal_line(runs))
    console.print(f"1-min load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
