"""Measure what postprod costs over hand-written ffmpeg commands that make the same deliverables.

A Sora 2 shaped clip (1280x720 24 fps H.264 with 96 kHz AAC, synthesised by ``pipeline.media.synth``) is
finished into ``broadcast-prores-hq-1080p25`` and ``web-h264-1080p`` six ways:

a. two hand-written ffmpeg commands, one per output (the baseline);
b. one hand-written ffmpeg command that splits the decoded source to both outputs;
g. postprod's own ffmpeg command for r, run by hand: the graph r plans (accurate scaling, the EBU
   R 103 legalising LUT of the broadcast preset, timecode), with the files it prepares written once;
r. postprod's render path alone in a fresh Python process: probe, plan, one ffmpeg (split) and the
   verification of its outputs, without loudness normalisation (b does none), sync, QC or exports;
c. the library path, ``pipeline.jobs.finish.finish`` in a fresh Python process (one ffmpeg, split);
d. the same with ``one_process=False`` (one ffmpeg per output);
e. ``postprod finish ... --json``, i.e. the Prefect flow, on postprod's background Prefect server
   (started by this script before the rounds, in a temporary folder, as after a user's first command).

Each variant runs in child processes, timed end to end (wall clock, so Python start-up, imports,
probing, verification, hashing, the manifest and Prefect's server are all included), with CPU
seconds and peak RSS read from ``os.wait4`` (CPU seconds hold up better on a busy machine). Rounds
are interleaved and rotated so machine noise falls on all variants alike; the tables give medians. The outputs of every variant are probed and compared, so the
comparison is like for like.

Goals: the render path (r) at most 1.05x its own command run by hand (g), i.e. what running it through
postprod costs; b against g is what postprod's graph does beyond the plain hand-written one; postprod end to
end, Prefect overhead included (``postprod finish``/``run``), at most 1.10x the hand-written separate
commands; both the library (c, d) and the Prefect (e) numbers are reported, with a breakdown of where
postprod's time goes.

Run from the repository root::

    python bench/render_overhead.py --seconds 12 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from rich.console import Console
from rich.table import Table

from flows.server import SERVER_HOME_ENV, SERVER_MODE_ENV, ensure_server, free_port, stop_server
from machine import print_machine
from pipeline.inputs import sha256_of_input
from pipeline.jobs.finish import probe_sources
from pipeline.model.job import job_for_clips
from pipeline.model.presets import load_presets
from pipeline.plan.facts import JobFacts
from pipeline.plan.planner import plan_job
from pipeline.plan.workfiles import TextFile
from pipeline.media.runner import ffmpeg_executable
from pipeline.media.probe import probe
from pipeline.media.synth import SHAPES, synthesize

SHAPE = "sora2-1280x720-24"
PRESETS = ("broadcast-prores-hq-1080p25", "web-h264-1080p")
EXTENSIONS = {"broadcast": ".mov", "web": ".mp4"}
"""Each variant writes one file of each kind; its extension tells which deliverable it is."""
GOAL_RATIO = 1.10
RENDER_PATH_GOAL_RATIO = 1.05
CONSOLE_WIDTH = 132
"""Wide enough for the tables unwrapped, also when stdout is a pipe or a log file (rich assumes 80)."""

COLOUR_TAGS = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709"
"""A filter, not ``-color_primaries`` etc.: ffmpeg 9 tags the stream from the frames, so the output
options leave an untagged source's primaries and transfer untagged."""
BROADCAST_VIDEO = f"fps=25,scale=1920:1080:flags=lanczos,format=yuv422p10le,{COLOUR_TAGS}"
WEB_VIDEO = f"scale=1920:1080:flags=lanczos,format=yuv420p,{COLOUR_TAGS}"
BROADCAST_CODECS = [
    "-c:v", "prores_aw", "-profile:v", "3",
    "-c:a", "pcm_s24le", "-ar", "48000", "-ac", "2",
]  # fmt: skip
WEB_CODECS = [
    "-c:v", "libx264", "-profile:v", "high", "-preset", "medium", "-crf", "18", "-g", "48",
    "-c:a", "aac", "-b:a", "256k", "-ar", "48000", "-ac", "2", "-movflags", "+faststart",
]  # fmt: skip

LIBRARY_SCRIPT = """
import sys
from pathlib import Path
from pipeline.jobs.finish import finish
from pipeline.model.job import job_for_clips
source, out_dir, one_process, presets = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4:]
finish(job_for_clips([source], presets, name="clip"), out_dir, one_process=one_process == "one")
"""
"""What a script using the library writes; run with ``python -c`` so start-up and imports count."""

RENDER_PATH_SCRIPT = """
import sys
from pathlib import Path
from pipeline.jobs.finish import probe_sources
from pipeline.model.job import job_for_clips
from pipeline.model.presets import load_presets
from pipeline.plan.facts import JobFacts
from pipeline.plan.planner import plan_job
from pipeline.render.renderer import remove_intermediates, render
source, out_dir, presets = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
job = job_for_clips([source], presets, name="clip")
job = job.model_copy(update={"deliverables": [
    deliverable.model_copy(update={"overrides": {"loudness": None}}) for deliverable in job.deliverables]})
plan = plan_job(job, JobFacts(probe_sources(job)), load_presets(), out_dir)
try:
    for render_plan in plan.renders:
        render(render_plan)
finally:
    remove_intermediates(plan)
"""
"""The render path alone: probe, plan, one ffmpeg, verification of what it wrote."""

Argv = list[str]
GRAPH: list[Argv] = []
"""Variant g's command, planned by :func:`main` once the source exists."""


def _ffmpeg(*args: str) -> Argv:
    return [ffmpeg_executable(), "-nostdin", "-y", "-loglevel", "warning", *args]


def hand_separate(source: Path, out: Path) -> list[Argv]:
    """Variant a: one command per output, each decoding the source."""
    return [
        _ffmpeg("-i", str(source), "-vf", BROADCAST_VIDEO, *BROADCAST_CODECS, str(out / "broadcast.mov")),
        _ffmpeg("-i", str(source), "-vf", WEB_VIDEO, *WEB_CODECS, str(out / "web.mp4")),
    ]


def hand_split(source: Path, out: Path) -> list[Argv]:
    """Variant b: one command, the decoded picture split to both outputs."""
    graph = f"[0:v]split=2[m][w];[m]{BROADCAST_VIDEO}[broadcast];[w]{WEB_VIDEO}[web]"
    return [_ffmpeg(
        "-i", str(source), "-filter_complex", graph,
        "-map", "[broadcast]", "-map", "0:a", *BROADCAST_CODECS, str(out / "broadcast.mov"),
        "-map", "[web]", "-map", "0:a", *WEB_CODECS, str(out / "web.mp4"),
    )]  # fmt: skip


def planned_graph(source: Path, out: Path, files: Path) -> Argv:
    """The ffmpeg command the render path plans for ``source`` into ``out``, with the files it prepares
    (the legalising LUT) written into ``files`` once, where clearing ``out`` between rounds leaves them."""
    job = job_for_clips([source], list(PRESETS), name="clip")
    job = job.model_copy(update={"deliverables": [
        deliverable.model_copy(update={"overrides": {"loudness": None}}) for deliverable in job.deliverables]})
    (plan,) = plan_job(job, JobFacts(probe_sources(job)), load_presets(), out).renders
    args = list(plan.args)
    files.mkdir(parents=True, exist_ok=True)
    for prepared_file in plan.prepared_files:
        assert isinstance(prepared_file, TextFile), prepared_file  # these presets prepare a LUT, nothing else
        kept = files / prepared_file.path.name
        kept.write_text(prepared_file.text, encoding="utf-8")
        args = [arg.replace(str(prepared_file.path), str(kept)) for arg in args]
    # The outputs under their final names (postprod writes a hidden partial file and renames it).
    finals = {str(output.partial_path): str(output.path) for output in plan.outputs}
    args = [finals.get(arg, arg) for arg in args]
    return _ffmpeg(*(arg for arg in args if arg not in ("-progress", "pipe:1")))


def render_path(source: Path, out: Path) -> list[Argv]:
    """Variant r: the render path in a fresh interpreter."""
    return [[sys.executable, "-c", RENDER_PATH_SCRIPT, str(source), str(out), *PRESETS]]


def library(one_process: bool) -> Callable[[Path, Path], list[Argv]]:
    """Variants c and d: ``pipeline.jobs.finish.finish`` in a fresh interpreter."""

    def commands(source: Path, out: Path) -> list[Argv]:
        mode = "one" if one_process else "separate"
        return [[sys.executable, "-c", LIBRARY_SCRIPT, str(source), str(out), mode, *PRESETS]]

    return commands


def postprod_cli(source: Path, out: Path) -> list[Argv]:
    """Variant e: the CLI, through the Prefect flow on the background server :func:`main` started."""
    script = Path(sys.executable).with_name("postprod")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "postprod.cli"]
    presets = [arg for preset in PRESETS for arg in ("--preset", preset)]
    return [[*command, "finish", str(source), *presets, "--out", str(out), "--json"]]


@dataclass(frozen=True)
class Variant:
    """One way of making both deliverables."""

    key: str
    name: str
    includes: str
    """One line: what the timing covers."""
    commands: Callable[[Path, Path], list[Argv]]
    """Source and output folder in; the processes to run, in order, out."""


POSTPROD_WORK = "verify (re-probe, decode audio), sha256, manifest"
VARIANTS = (
    Variant("a", "hand-written, separate", "2 ffmpeg runs, each decoding the source", hand_separate),
    Variant("b", "hand-written, split", "1 ffmpeg run, the source decoded once and split", hand_split),
    Variant("g", "postprod's graph by hand", "1 ffmpeg run, the command r plans", lambda source, out: [GRAPH[0]]),
    Variant("r", "postprod render path, split", "python start-up, probe, plan, 1 ffmpeg, verify (no loudness)",
            render_path),
    Variant("c", "postprod library, split", f"python start-up, probe, plan, 1 ffmpeg, {POSTPROD_WORK}",
            library(one_process=True)),
    Variant("d", "postprod library, separate", f"python start-up, probe, plan, 2 ffmpeg, {POSTPROD_WORK}",
            library(one_process=False)),
    Variant("e", "postprod finish (Prefect)",
            "c + Prefect imports, task and flow run states on the running background server", postprod_cli),
)  # fmt: skip


@dataclass(frozen=True)
class Run:
    """One timed run of a variant."""

    wall_s: float
    cpu_s: float
    """User + system seconds of the variant's processes and their reaped descendants."""
    peak_rss_kib: int
    """Largest ru_maxrss of the variant's processes (each includes its reaped descendants)."""
    manifest: dict | None
    """postprod's manifest, None for hand-written variants."""


def run_child(argv: Argv, log: Path) -> tuple[float, float, int]:
    """Run one process to completion: wall seconds, CPU seconds and peak RSS in KiB, the process's
    reaped descendants (ffmpeg, Prefect's server) included."""
    started = time.perf_counter()
    with log.open("ab") as sink:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"exit {process.returncode}: {argv}\n{tail}")
    return wall_s, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def run_variant(variant: Variant, source: Path, out: Path) -> Run:
    """Run a variant into an empty folder."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    log = out.with_suffix(".log")
    log.unlink(missing_ok=True)
    timed = [run_child(argv, log) for argv in variant.commands(source, out)]
    manifests = list(out.glob("*.manifest.json"))
    manifest = json.loads(manifests[0].read_text()) if manifests else None
    walls, cpus, peaks = zip(*timed, strict=True)
    return Run(sum(walls), sum(cpus), max(peaks), manifest)


def time_variants(source: Path, workdir: Path, repeat: int, console: Console) -> dict[str, list[Run]]:
    """Every variant ``repeat`` times, rounds interleaved and each round's order rotated."""
    runs: dict[str, list[Run]] = {variant.key: [] for variant in VARIANTS}
    for round_index in range(repeat):
        shift = round_index % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            run = run_variant(variant, source, workdir / variant.key)
            runs[variant.key].append(run)
            console.print(f"  round {round_index + 1}/{repeat}  {variant.key}. {variant.name:<28} "
                          f"{run.wall_s:6.2f} s  CPU {run.cpu_s:6.2f} s  {run.peak_rss_kib / 1024:5.0f} MiB")
    return runs


def output_signature(path: Path) -> tuple:
    """What must match across variants: codecs, profile, raster, frames, colour and sound format."""
    info = probe(path)
    video, audio = info.video, info.audio
    sound = (audio.codec, audio.sample_rate, audio.channels) if audio else None
    return (video.codec, video.profile, video.pix_fmt, f"{video.display_width}x{video.display_height}",
            video.frame_count, str(video.frame_rate), video.color_primaries, video.color_transfer,
            video.color_matrix, sound)


def compare_outputs(workdir: Path) -> list[str]:
    """Warnings for each output that probes differently from the baseline's; empty when all match."""
    baseline = VARIANTS[0].key
    warnings = []
    for kind, extension in EXTENSIONS.items():
        signatures = {
            variant.key: output_signature(next((workdir / variant.key).glob(f"*{extension}")))
            for variant in VARIANTS
        }
        for key, signature in signatures.items():
            if signature != signatures[baseline]:
                warnings.append(f"WARNING: {kind} output of {key} probes as {signature}, "
                                f"{baseline} as {signatures[baseline]}")
    return warnings


def hash_seconds(source: Path, outputs: Path) -> float:
    """Seconds to hash the source and one variant's outputs, as the manifest does (page cache warm)."""
    started = time.perf_counter()
    for path in [source, *outputs.glob("*.mov"), *outputs.glob("*.mp4")]:
        sha256_of_input(path)
    return time.perf_counter() - started


def import_seconds(modules: str) -> float:
    """Wall seconds of a fresh interpreter that only imports ``modules``."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {modules}"], check=True)
    return time.perf_counter() - started


def median(values) -> float:
    return statistics.median(list(values))


def results_table(runs: dict[str, list[Run]], title: str) -> Table:
    baseline = VARIANTS[0].key
    baseline_wall_s = median(run.wall_s for run in runs[baseline])
    baseline_cpu_s = median(run.cpu_s for run in runs[baseline])
    table = Table(title=title)
    table.add_column("variant")
    for column in ("median wall s", f"vs {baseline}", "median CPU s", f"CPU vs {baseline}", "peak RSS MiB"):
        table.add_column(column, justify="right")
    for variant in VARIANTS:
        wall_s = median(run.wall_s for run in runs[variant.key])
        cpu_s = median(run.cpu_s for run in runs[variant.key])
        rss_mib = median(run.peak_rss_kib for run in runs[variant.key]) / 1024
        table.add_row(f"{variant.key}. {variant.name}", f"{wall_s:.2f}", f"{wall_s / baseline_wall_s:.3f}x",
                      f"{cpu_s:.2f}", f"{cpu_s / baseline_cpu_s:.3f}x", f"{rss_mib:.0f}")
    return table


def breakdown_table(runs: dict[str, list[Run]]) -> Table:
    """postprod's wall time split with its manifest's timings (medians)."""
    table = Table(title="where postprod's time goes (median s; manifest timings)")
    table.add_column("variant")
    for column in ("wall", "probe source", "encode", "verify outputs", "rest"):
        table.add_column(column, justify="right")
    for variant in VARIANTS:
        done = runs[variant.key]
        if done[0].manifest is None:  # hand-written
            continue
        timings = [run.manifest["timings"] for run in done]
        verify = [sum(output["verify_s"] for output in run.manifest["outputs"]) for run in done]
        table.add_row(
            f"{variant.key}. {variant.name}",
            f"{median(run.wall_s for run in done):.2f}",
            f"{median(t['probe_s'] for t in timings):.2f}",
            f"{median(t['render_s'] - v for t, v in zip(timings, verify, strict=True)):.2f}",
            f"{median(verify):.2f}",
            f"{median(run.wall_s - t['total_s'] for run, t in zip(done, timings, strict=True)):.2f}",
        )
    return table


def goal_line(runs: dict[str, list[Run]]) -> str:
    baseline_s = median(run.wall_s for run in runs[VARIANTS[0].key])
    verdicts = []
    for measure in ("wall_s", "cpu_s") if {"r", "g"} <= runs.keys() else ():
        ratio = median(getattr(run, measure) for run in runs["r"]) / median(getattr(run, measure) for run in runs["g"])
        verdicts.append(f"r/g {measure[:-2]} {ratio:.3f}x {'met' if ratio <= RENDER_PATH_GOAL_RATIO else 'MISSED'}")
    for key in ("c", "e"):
        if key not in runs:
            continue
        ratio = median(run.wall_s for run in runs[key]) / baseline_s
        verdicts.append(f"{key} {ratio:.3f}x {'met' if ratio <= GOAL_RATIO else 'MISSED'}")
    return (f"goals: render path <= {RENDER_PATH_GOAL_RATIO:.2f}x of g, postprod <= {GOAL_RATIO:.2f}x of a "
            "end to end: " + "; ".join(verdicts))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="source clip length (default 12)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per variant (default 1)")
    parser.add_argument("--only", help="the variants to run, by key, e.g. g,r (default: all; the first is the baseline)")
    return parser.parse_args()


def main() -> None:
    global VARIANTS
    args = parse_args()
    if args.only:
        VARIANTS = tuple(variant for variant in VARIANTS if variant.key in args.only.split(","))
    console = Console(width=CONSOLE_WIDTH)
    print_machine(console)
    for variant in VARIANTS:
        console.print(f"  {variant.key}. {variant.name}: {variant.includes}")
    with tempfile.TemporaryDirectory(prefix="render-overhead-") as tmp:
        workdir = Path(tmp)
        source = workdir / "source.mp4"
        console.print(f"synthesising a {args.seconds:g} s {SHAPE} source ...")
        synthesize(SHAPES[SHAPE], source, Fraction(args.seconds))
        GRAPH.append(planned_graph(source, workdir / "g", workdir / "g-files"))
        console.print(f"running {len(VARIANTS)} variants, {args.repeat} interleaved round(s) ...")
        server, _ = ensure_server(workdir / "prefect-server", port=free_port())
        os.environ.pop(SERVER_MODE_ENV, None)
        os.environ[SERVER_HOME_ENV] = str(server.home)
        try:
            runs = time_variants(source, workdir, args.repeat, console)
        finally:
            stop_server(server.home)
        warnings = compare_outputs(workdir)
        hashing_s = hash_seconds(source, workdir / "c")
    title = (f"{' + '.join(PRESETS)} from a {args.seconds:g} s {SHAPE} clip, "
             f"median of {args.repeat}")
    console.print(results_table(runs, title))
    for warning in warnings:
        console.print(warning, style="bold red", highlight=False)
    if not warnings:
        console.print("outputs probe alike across variants (codec, profile, pix_fmt, size, frames, "
                      "rate, colour tags, audio format)")
    console.print(goal_line(runs))
    console.print(breakdown_table(runs))
    library_import_s = import_seconds("pipeline.jobs.finish, pipeline.model.job")
    cli_import_s = import_seconds("postprod.cli, flows.finish_job")
    console.print(f"rest = start-up, imports, Prefect, hashing, manifest. Of it: sha256 of source + outputs "
                  f"{hashing_s:.2f} s; interpreter start-up + imports: library {library_import_s:.2f} s, "
                  f"CLI with Prefect {cli_import_s:.2f} s")


if __name__ == "__main__":
    main()
