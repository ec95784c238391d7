"""Batch throughput: 20 short loose clips through ``postprod batch`` at concurrency 1 and 2, against the
same encodes as hand-written ffmpeg commands run 1 and 2 at a time.

Each clip is 2 s of 1280x720 24 fps H.264 with AAC (``pipeline.media.synth``), finished into
``web-h264-1080p`` scaled to 640x360 by the inbox's ``_template.yaml``. ``postprod batch`` runs in a
child process on Prefect's temporary local server, so start-up, the server, probing, the sync and
loudness checks, verification, hashing and manifests are all in its time; the baseline is only the
encode. Peak memory is the largest sum of resident set sizes over the whole process tree, sampled
every 50 ms; CPU seconds come from ``os.wait4`` (children included) and hold up better than wall
time on a busy machine.

Run from the repository root::

    python bench/batch.py [--jobs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import psutil
import yaml
from rich.console import Console
from rich.table import Table

from machine import print_machine
from pipeline.media.runner import ffmpeg_executable
from pipeline.media.probe import probe
from pipeline.media.synth import ClipShape, synthesize

CLIP_SECONDS = Fraction(2)
SIZE = (640, 360)
TEMPLATE = {"deliverables": [{"preset": "web-h264-1080p",
                              "overrides": {"video": {"width": SIZE[0], "height": SIZE[1]}}}]}
SAMPLE_S = 0.05


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def _measure(argv_sets: list[list[str]], parallel: int, ok_codes: tuple[int, ...] = (0,)) -> tuple[float, float, int]:
    """Run the commands ``parallel`` at a time from one Python child; wall s, CPU s, peak tree RSS.

    The child exits with the largest exit code of its commands, which must be one of ``ok_codes``.
    """
    script = (
        "import subprocess, sys, json\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "argvs = json.loads(sys.argv[1])\n"
        f"with ThreadPoolExecutor({parallel}) as pool:\n"
        "    codes = list(pool.map(lambda a: subprocess.run(a, stdout=subprocess.DEVNULL).returncode, argvs))\n"
        "sys.exit(max(codes))\n"
    )
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", script, json.dumps(argv_sets)])
    peak = 0
    root = psutil.Process(child.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, _tree_rss(root))
            except psutil.NoSuchProcess:
                return
            time.sleep(SAMPLE_S)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    done.set()
    sampler.join()
    wall = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in ok_codes:
        raise SystemExit(f"a run failed (exit {code}): {argv_sets[0]}")
    return wall, usage.ru_utime + usage.ru_stime, peak


def _check_output(path: Path) -> None:
    """Both sides must have made the same deliverable: SIZE H.264 at 24 fps, every frame of the clip,
    with 48 kHz stereo AAC."""
    info = probe(path)
    video, audio = info.video, info.audio
    assert (video.codec, video.display_width, video.display_height) == ("h264", *SIZE), path
    assert video.frame_count == CLIP_SECONDS * 24, (path, video.frame_count)
    assert audio is not None and (audio.codec, audio.sample_rate, audio.channels) == ("aac", 48000, 2), path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    console = Console(width=200)
    print_machine(console)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        clips = root / "clips"
        with ThreadPoolExecutor(2) as pool:
            sources = list(pool.map(
                lambda i: synthesize(ClipShape(f"bench{i}", 1280, 720, Fraction(24)), clips / f"clip{i:02d}.mp4",
                                     CLIP_SECONDS),
                range(args.jobs)))
        rows = []
        for concurrency in (1, 2):
            inbox, out = root / f"inbox{concurrency}", root / f"out{concurrency}"
            inbox.mkdir()
            (inbox / "_template.yaml").write_text(yaml.safe_dump(TEMPLATE))
            for source in sources:
                os.link(source, inbox / source.name)
            postprod = [[sys.executable, "-m", "postprod.cli", "batch", str(inbox), "--out", str(out),
                         "--concurrency", str(concurrency), "--json"]]
            by_hand_dir = root / f"hand{concurrency}"
            by_hand_dir.mkdir()
            by_hand = [[
                ffmpeg_executable(), "-v", "error", "-y", "-i", str(source),
                "-vf", f"scale={SIZE[0]}:{SIZE[1]}:force_original_aspect_ratio=decrease:flags=lanczos,"
                       f"pad={SIZE[0]}:{SIZE[1]}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p",
                "-c:v", "libx264", "-preset", "medium", "-crf", "18", "-profile:v", "high", "-g", "48",
                "-flags", "+cgop", "-c:a", "aac", "-b:a", "256k", "-ar", "48000", "-ac", "2",
                "-movflags", "+faststart", str(by_hand_dir / f"{source.stem}.mp4"),
            ] for source in sources]
            hand = _measure(by_hand, concurrency)
            # postprod batch exits 1 when some item failed; the counts below then say which.
            ours = _measure(postprod, 1, ok_codes=(0, 1))
            summary = json.loads((out / "batch-summary.json").read_text())
            assert summary["counts"]["succeeded"] == args.jobs, summary["counts"]
            outputs = [Path(item["outputs"][0]) for item in summary["items"]]
            for output in [*outputs, *(by_hand_dir / f"{source.stem}.mp4" for source in sources)]:
                _check_output(output)
            rows.append((concurrency, ours, hand))
    table = Table("concurrency", "postprod batch wall s", "clips/min", "CPU s", "peak MiB",
                  "ffmpeg by hand wall s", "clips/min", "CPU s", "peak MiB", "wall ratio", "CPU ratio",
                  title=f"{args.jobs} jobs of {float(CLIP_SECONDS):g} s 1280x720 -> {SIZE[0]}x{SIZE[1]} H.264")
    for concurrency, (wall, cpu, peak), (hand_wall, hand_cpu, hand_peak) in rows:
        table.add_row(
            str(concurrency), f"{wall:.1f}", f"{args.jobs / wall * 60:.1f}", f"{cpu:.1f}", f"{peak / 2**20:.0f}",
            f"{hand_wall:.1f}", f"{args.jobs / hand_wall * 60:.1f}", f"{hand_cpu:.1f}", f"{hand_peak / 2**20:.0f}",
            f"{wall / hand_wall:.2f}x", f"{cpu / hand_cpu:.2f}x",
        )
    console.print(table)


if __name__ == "__main__":
    main()
