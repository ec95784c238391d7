"""A night of Sora 2 shaped clips through ``postprod batch`` against hand-written ffmpeg commands making
the same deliverables, the decodes of each source counted, and the per-command overhead of the flow.

Each clip is 1280x720 24 fps H.264 with 96 kHz AAC (``pipeline.media.synth``'s ``sora2-1280x720-24``,
flashes and beeps so the sync check has something to measure), finished into ``web-h264-1080p`` and
``social-9x16`` with the job defaults: sync check, loudness to the presets' target, verification, QC,
editorial exports and a manifest. The hand-written side is two ffmpeg commands per clip with the same
scaling, crop, encoders and settings, and no checks: what the outputs cost to encode.

1. **Batch.** ``postprod batch`` at concurrency 1 and at the machine's render slots, each on a cold
   analysis cache, against the hand-written commands run that many at a time, half of them just
   before postprod's run and half just after (so a drift of the machine's speed falls on both sides
   alike). CPU seconds are user + system of the whole process tree (``os.wait4``) plus what the
   Prefect server spent meanwhile.
2. **Rerun with one preset changed** (``social-9x16`` at another CRF): every job renders again. Each
   open of a source is counted (PyAV ``av.open`` and ffmpeg ``-i``, by the postprod module that asked),
   so the table shows the decodes per source of the first run and of the rerun; analyses should come
   from the cache.
3. **Per-command overhead.** ``postprod finish`` of a 1 s 320x180 clip into ``review-540p``, on
   postprod's background Prefect server once it runs, against the same command with ``--no-prefect``,
   the two run alternately so that the machine's load falls on both alike (after one warm-up run
   each, which also fills the analysis cache: the runs measured analyse nothing); and the first
   command, which starts the server. CPU seconds are the command's process tree and the server's
   apart. ``--overhead`` runs this section alone (a minute or two).

Every child runs with a Prefect server this script starts in a temporary folder and stops at the end.

Run from the repository root::

    python bench/batch.py [--clips 20 --seconds 8]     # the full night (an hour on 2 busy cores)
    python bench/batch.py --quick                       # 4 clips of 4 s
    python bench/batch.py --overhead [--runs 5]         # the per-command overhead alone
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import psutil
import yaml
from rich.console import Console
from rich.table import Table

from flows.server import SERVER_HOME_ENV, SERVER_MODE_ENV, ensure_server, free_port, stop_server
from machine import print_machine
from pipeline.media.probe import probe
from pipeline.media.runner import ffmpeg_executable
from pipeline.media.synth import SHAPES, ClipContent, ClipShape, synthesize
from pipeline.model.presets import BUILTIN_PRESETS_DIR
from pipeline.service.resources import default_render_slots

PRESETS = ("web-h264-1080p", "social-9x16")
CHANGED_PRESET, CHANGED_CRF = "social-9x16", 21
COLOUR = "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv"
SCALER = "flags=lanczos+accurate_rnd+full_chroma_int"
HAND_VIDEO = {
    "web-h264-1080p": (f"scale=1920:1080:{SCALER},format=yuv420p,setsar=1,{COLOUR}", "18", (1920, 1080)),
    "social-9x16": (f"crop=ih*9/16:ih,scale=1080:1920:{SCALER},format=yuv420p,setsar=1,{COLOUR}", "20", (1080, 1920)),
}
"""Per preset: the hand-written video filter (what the preset's ``fit`` does to a 16:9 source), CRF, size."""
COMMAND_RUNS = 5
"""Per-command overhead: runs of each variant after a warm-up; the table gives medians."""
OVERHEAD_VARIANTS = {"on the background server": [], "--no-prefect": ["--no-prefect"]}

COUNTING_CHILD = """
import json, subprocess, sys, traceback
import av
log_path, watched, argv = sys.argv[1], sys.argv[2], sys.argv[3:]

def asker():
    for frame in reversed(traceback.extract_stack()[:-2]):
        if "/pipeline/" in frame.filename and not frame.filename.endswith("media/runner.py"):
            return frame.filename.rsplit("/pipeline/", 1)[1].removesuffix(".py").replace("/", ".")
    return "other"

def record(path, how):
    if str(path).startswith(watched):
        with open(log_path, "a") as log:
            log.write(json.dumps({"source": str(path), "module": asker(), "how": how}) + "\\n")

plain_open = av.open
def counting_open(path, *args, **kwargs):
    record(path, "pyav")
    return plain_open(path, *args, **kwargs)
av.open = counting_open

plain_init = subprocess.Popen.__init__
def counting_init(self, args, *rest, **kwargs):
    if isinstance(args, list) and "-i" in args:
        for index, arg in enumerate(args[:-1]):
            if arg == "-i":
                record(args[index + 1], "ffmpeg")
    plain_init(self, args, *rest, **kwargs)
subprocess.Popen.__init__ = counting_init

from postprod.cli import main
sys.exit(main(argv))
"""
"""Runs ``postprod`` with every open of a file under ``watched`` logged with the module that opened it."""


def _run(argv: list[str], env: dict[str, str], server: psutil.Process | None = None,
         parallel: int = 1, ok_codes: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """Run the commands in ``argv`` (a list of argument lists) ``parallel`` at a time from one Python
    child; wall seconds, and CPU seconds of the child's tree plus what ``server`` spent meanwhile."""
    script = (
        "import subprocess, sys, json\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"with ThreadPoolExecutor({parallel}) as pool:\n"
        "    codes = list(pool.map(lambda a: subprocess.run(a, **quiet).returncode, json.loads(sys.argv[1])))\n"
        "sys.exit(max(codes))\n"
    )
    server_before = sum(server.cpu_times()[:2]) if server else 0.0
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", script, json.dumps(argv)], env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    server_cpu = sum(server.cpu_times()[:2]) - server_before if server else 0.0
    code = os.waitstatus_to_exitcode(status)
    if code not in ok_codes:
        raise SystemExit(f"a run failed (exit {code}): {argv[0]}")
    return wall, usage.ru_utime + usage.ru_stime + server_cpu


def _clip(folder: Path, index: int, seconds: int) -> Path:
    """A Sora 2 shaped clip whose flashes and beeps fall on frames of their own: no two clips are the
    same file, so no clip's analyses come from another's in the content-keyed cache."""
    events = tuple(Fraction(second) + Fraction(index, 24) for second in range(1, seconds))
    return synthesize(SHAPES["sora2-1280x720-24"], folder / f"clip{index:02d}.mp4", Fraction(seconds),
                      content=ClipContent(event_times_s=events))


def _hand_written(source: Path, preset: str, target: Path) -> list[str]:
    video_filter, crf, _ = HAND_VIDEO[preset]
    return [
        ffmpeg_executable(), "-v", "error", "-y", "-i", str(source), "-vf", video_filter,
        "-c:v", "libx264", "-preset", "medium", "-crf", crf, "-profile:v", "high", "-g", "48", "-flags", "+cgop",
        "-c:a", "aac", "-b:a", "256k", "-ar", "48000", "-ac", "2", "-movflags", "+faststart", str(target),
    ]  # fmt: skip


def _check_output(path: Path, preset: str, frames: int) -> None:
    """Both sides must have made the same deliverable: size, codec, every frame, 48 kHz stereo AAC."""
    info = probe(path)
    video, audio = info.video, info.audio
    assert (video.codec, (video.display_width, video.display_height)) == ("h264", HAND_VIDEO[preset][2]), path
    assert video.frame_count == frames, (path, video.frame_count, frames)
    assert audio is not None and (audio.codec, audio.sample_rate, audio.channels) == ("aac", 48000, 2), path


def _batch(root: Path, name: str, sources: list[Path], env: dict[str, str], server: psutil.Process,
           concurrency: int, inbox: Path | None = None) -> tuple[float, float, tuple[int, int], Path]:
    """``postprod batch`` of ``sources`` (a new inbox unless given) with its opens logged: wall and CPU
    seconds, (analyses computed, from the cache) in its manifests, the log of opens."""
    if inbox is None:
        inbox = root / f"inbox-{name}"
        inbox.mkdir()
        (inbox / "_template.yaml").write_text(yaml.safe_dump({"deliverables": [{"preset": p} for p in PRESETS]}))
        for source in sources:
            os.link(source, inbox / source.name)
    out, log = root / f"out-{inbox.name}", root / f"opens-{name}.jsonl"
    argv = [sys.executable, "-c", COUNTING_CHILD, str(log), str(inbox), "batch", str(inbox), "--out", str(out),
            "--concurrency", str(concurrency), "--json"]
    wall, cpu = _run([argv], env, server, ok_codes=(0, 1))
    summary = json.loads((out / "batch-summary.json").read_text())
    assert summary["counts"]["succeeded"] == len(sources), summary["counts"]
    frames = probe(sources[0]).video.frame_count
    for manifest in out.glob("*/*.manifest.json"):
        for output in json.loads(manifest.read_text())["outputs"]:
            preset = next(p for p in PRESETS if Path(output["path"]).stem.endswith(p))
            _check_output(Path(output["path"]), preset, frames)
    return wall, cpu, _analyses_from_cache(out), log


def _around(hand_argv: list[list[str]], env: dict[str, str], parallel: int,
            batch: Callable[[], tuple]) -> tuple[tuple[float, float], tuple]:
    """The hand-written commands, half before ``batch()`` and half after, ``parallel`` at a time:
    (wall, CPU) of both halves together, and what ``batch()`` returned. The CPU seconds of this
    virtual machine drift with its host's load over minutes; timing the hand-written side on both
    sides of postprod's run cancels a steady drift instead of charging it to one side."""
    middle = len(hand_argv) // 2 // len(PRESETS) * len(PRESETS)
    before = _run(hand_argv[:middle], env, parallel=parallel)
    result = batch()
    after = _run(hand_argv[middle:], env, parallel=parallel)
    print(f"hand-written at concurrency {parallel}, CPU s of the half before / after postprod's run: "
          f"{before[1]:.1f} / {after[1]:.1f}", flush=True)
    return (before[0] + after[0], before[1] + after[1]), result


def _opens_per_source(log: Path, clips: int) -> Counter:
    """Opens of the sources by the module that asked, per source (averaged over the clips)."""
    opens = Counter()
    for line in log.read_text().splitlines() if log.exists() else []:
        entry = json.loads(line)
        opens[f"{entry['module']} ({entry['how']})"] += 1
    return Counter({key: count / clips for key, count in opens.items()})


def _analyses_from_cache(out: Path) -> tuple[int, int]:
    """(analyses computed, analyses read from the cache) over the batch's manifests."""
    records = [record for manifest in out.glob("*/*.manifest.json")
               for record in json.loads(manifest.read_text()).get("analyses", [])]
    return sum(not r["from_cache"] for r in records), sum(r["from_cache"] for r in records)


def _command_overhead(root: Path, env: dict[str, str], server: psutil.Process,
                      runs: int) -> dict[str, tuple[float, float, float]]:
    """Median wall, command CPU and server CPU seconds of ``postprod finish`` on a tiny clip, on the
    running server and without Prefect, the variants run alternately after a warm-up each."""
    clip = synthesize(ClipShape("tiny", 320, 180, Fraction(24)), root / "tiny" / "tiny.mp4", Fraction(1))
    base = [sys.executable, "-m", "postprod.cli", "finish", str(clip), "--preset", "review-540p", "--json"]
    measured: dict[str, list[tuple[float, float, float]]] = {variant: [] for variant in OVERHEAD_VARIANTS}
    for index in range(runs + 1):
        for variant, extra in OVERHEAD_VARIANTS.items():
            out = root / "tiny" / f"{variant[:4]}{index}"
            server_before = sum(server.cpu_times()[:2])
            wall, cpu = _run([[*base, "--out", str(out), *extra]], env)
            if index:  # the first of each warms the file and analysis caches
                measured[variant].append((wall, cpu, sum(server.cpu_times()[:2]) - server_before))
    return {variant: tuple(statistics.median(run[column] for run in results) for column in range(3))
            for variant, results in measured.items()}


def _first_command(root: Path, env: dict[str, str]) -> tuple[float, float]:
    """The first command of a session: it starts the background server (then stopped again)."""
    clip = root / "tiny" / "tiny.mp4"
    home = root / "first-server"
    first_env = {**env, SERVER_HOME_ENV: str(home)}
    try:
        return _run([[sys.executable, "-m", "postprod.cli", "finish", str(clip), "--preset", "review-540p",
                      "--json", "--out", str(root / "tiny" / "first")]], first_env)
    finally:
        stop_server(home)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="4 clips of 4 s")
    parser.add_argument("--overhead", action="store_true", help="only the per-command overhead")
    parser.add_argument("--runs", type=int, default=COMMAND_RUNS, help="per-command overhead: runs of each variant")
    args = parser.parse_args()
    clips, seconds = (4, 4) if args.quick else (args.clips, args.seconds)
    slots = default_render_slots()
    console = Console(width=160)
    print_machine(console)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        home = root / "prefect-server"
        server_record, _ = ensure_server(home, port=free_port())
        server = psutil.Process(server_record.pid)
        env = {key: value for key, value in os.environ.items() if key not in ("PREFECT_API_URL", SERVER_MODE_ENV)}
        env.update({SERVER_HOME_ENV: str(home), "POSTPROD_CACHE_DIR": str(root / "cache-1")})
        try:
            overhead = _command_overhead(root, env, server, args.runs)
            if args.overhead:
                _print_command_table(console, overhead, None, args.runs)
                return
            first = _first_command(root, env)
            with ThreadPoolExecutor(2) as pool:
                sources = list(pool.map(lambda i: _clip(root / "clips", i, seconds), range(clips)))

            hand_dir = root / "hand"
            hand_dir.mkdir()
            hand_argv = [_hand_written(source, preset, hand_dir / f"{source.stem}-{preset}.mp4")
                         for source in sources for preset in PRESETS]
            hand, batches = {}, {}
            for concurrency, name in sorted({1: "concurrency-1", slots: "slots"}.items()):
                env["POSTPROD_CACHE_DIR"] = str(root / f"cache-{name}")
                hand[concurrency], batches[concurrency] = _around(
                    hand_argv, env, concurrency, lambda: _batch(root, name, sources, env, server, concurrency))
            for source in sources:
                for preset in PRESETS:
                    _check_output(hand_dir / f"{source.stem}-{preset}.mp4", preset, seconds * 24)

            presets_dir = root / "presets"
            presets_dir.mkdir()
            changed = yaml.safe_load((BUILTIN_PRESETS_DIR / f"{CHANGED_PRESET}.yaml").read_text())
            changed["video"]["options"]["crf"] = CHANGED_CRF
            (presets_dir / f"{CHANGED_PRESET}.yaml").write_text(yaml.safe_dump(changed))
            rerun = _batch(root, "rerun", sources, {**env, "POSTPROD_PRESETS": str(presets_dir)}, server, slots,
                           inbox=root / "inbox-slots")
        finally:
            stop_server(home)

        _print_batch_table(console, clips, seconds, slots, batches, hand, rerun)
        _print_decode_table(console, clips, batches[slots], rerun)
        _print_command_table(console, overhead, first, args.runs)


def _print_batch_table(console: Console, clips: int, seconds: int, slots: int, batches: dict, hand: dict,
                       rerun: tuple) -> None:
    table = Table("run", "wall s", "clips/min", "CPU s", "hand-written wall s", "CPU s", "wall ratio", "CPU ratio",
                  title=f"{clips} clips of {seconds} s 1280x720 24 fps, 96 kHz AAC -> {' + '.join(PRESETS)} "
                        f"({slots} render slots)", title_justify="left")
    rows = [(f"postprod batch, concurrency {n}", batches[n][:2], hand[n]) for n in sorted(batches)]
    rows.append((f"rerun, {CHANGED_PRESET} CRF {CHANGED_CRF} (concurrency {slots})", rerun[:2], hand[slots]))
    for label, (wall, cpu), (hand_wall, hand_cpu) in rows:
        table.add_row(label, f"{wall:.1f}", f"{clips / wall * 60:.1f}", f"{cpu:.1f}", f"{hand_wall:.1f}",
                      f"{hand_cpu:.1f}", f"{wall / hand_wall:.2f}x", f"{cpu / hand_cpu:.2f}x")
    console.print(table)


def _print_decode_table(console: Console, clips: int, first: tuple, rerun: tuple) -> None:
    before, after = _opens_per_source(first[3], clips), _opens_per_source(rerun[3], clips)
    table = Table("module (how it reads the source)", "first run", "rerun, one preset changed",
                  title="opens of each source, per source", title_justify="left")
    for key in sorted(set(before) | set(after)):
        table.add_row(key, f"{before[key]:g}", f"{after[key]:g}")
    table.add_row("manifests: analyses computed / from the cache", "{} / {}".format(*first[2]),
                  "{} / {}".format(*rerun[2]))
    console.print(table)


def _print_command_table(console: Console, overhead: dict, first: tuple[float, float] | None, runs: int) -> None:
    table = Table("postprod finish, 1 s 320x180 clip -> review-540p", "wall s", "command CPU s", "server CPU s",
                  title=f"per-command overhead (median of {runs}; 1-min load average after: {os.getloadavg()[0]:.1f})",
                  title_justify="left")
    if first is not None:
        table.add_row("first command: starts the background server (CPU: both)", f"{first[0]:.2f}", f"{first[1]:.2f}",
                      "")
    for variant, (wall, cpu, server_cpu) in overhead.items():
        table.add_row(variant, f"{wall:.2f}", f"{cpu:.2f}", f"{server_cpu:.2f}")
    (wall, cpu, server_cpu), (bare_wall, bare_cpu, bare_server_cpu) = overhead.values()
    table.add_row("Prefect's cost per command after the first", f"{wall - bare_wall:.2f}", f"{cpu - bare_cpu:.2f}",
                  f"{server_cpu - bare_server_cpu:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
