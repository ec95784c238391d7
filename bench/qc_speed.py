"""QC speed: a 12 s 1080p deliverable checked from one decode, against ffmpeg's own detectors.

The deliverables are made by finishing a synthesised 12 s 1920x1080 24 fps clip (pipeline.media.synth: testsrc2 and a
tone) into ``web-h264-1080p`` (H.264 High, AAC) and ``broadcast-prores-hq-1080p25`` (ProRes 422 HQ
10-bit, PCM). Each is checked three ways, rounds interleaved, medians reported:

a. ``pipeline.qc.checks.run_qc``: probe plus one decode of picture and sound feeding every check
   (conformance, loudness and true peak, black, freeze, stutter, levels, flash, silence);
b. a hand-written ffmpeg command running ffmpeg's detectors side by side in one decode:
   ``blackdetect``, ``freezedetect`` and ``signalstats`` on the picture, ``silencedetect`` and
   ``ebur128=peak=true`` on the sound (output discarded): fewer checks, no flash or stutter;
c. the floor: PyAV decoding both streams and doing nothing.

The process is pinned to ``--cores`` CPUs (2 by default). Goal: a at least 2x realtime
(wall time at most half the clip's duration).

    python bench/qc_speed.py --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import print_machine  # noqa: E402
from pipeline.jobs.finish import finish  # noqa: E402
from pipeline.model.job import parse_job  # noqa: E402
from pipeline.media.runner import run_ffmpeg  # noqa: E402
from pipeline.model.presets import load_presets  # noqa: E402
from pipeline.qc.checks import run_qc  # noqa: E402
from pipeline.media.synth import SHAPES, synthesize  # noqa: E402

PRESETS = ("web-h264-1080p", "broadcast-prores-hq-1080p25")


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(action) -> tuple[float, float]:
    wall, cpu = time.monotonic(), _cpu_s()
    action()
    return time.monotonic() - wall, _cpu_s() - cpu


def _deliverables(folder: Path, seconds: int) -> dict[str, Path]:
    # A legal 1080p clip (pipeline.media.synth keeps testsrc2's colours in gamut) with a tone and a beep.
    source = synthesize(SHAPES["veo3-1920x1080-24"], folder / "source.mp4", Fraction(seconds))
    job = parse_job({"version": 1, "name": "bench", "shots": [{"source": str(source)}],
                     "deliverables": [{"preset": name} for name in PRESETS]}, folder)
    manifest = json.loads(finish(job, folder / "out").read_text())
    return {output["preset"]: Path(output["path"]) for output in manifest["outputs"]}


def _ffmpeg_detectors(path: Path) -> None:
    run_ffmpeg([
        "-i", str(path),
        "-filter_complex",
        "[0:v]blackdetect=d=0.5,freezedetect=d=1,signalstats,metadata=mode=print:file=-[v];"
        "[0:a]silencedetect=d=1,ebur128=peak=true[a]",
        "-map", "[v]", "-map", "[a]", "-f", "null", "-",
    ])  # fmt: skip


def _decode_only(path: Path) -> None:
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        for packet in container.demux(*container.streams.video[:1], *container.streams.audio[:1]):
            for _ in packet.decode():
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    console = Console(width=150)
    print_machine(console)
    presets = load_presets()
    with tempfile.TemporaryDirectory() as scratch:
        outputs = _deliverables(Path(scratch), args.seconds)
        table = Table("deliverable", "variant", "wall s", "CPU s", "x realtime", "vs ffmpeg detectors")
        for name, path in outputs.items():
            preset = presets[name]
            variants = {
                "a. postprod QC (all checks, one decode)": lambda p=path, s=preset: run_qc(p, s),
                "b. ffmpeg blackdetect+freezedetect+signalstats+silencedetect+ebur128": lambda p=path: _ffmpeg_detectors(p),
                "c. floor: PyAV decode only": lambda p=path: _decode_only(p),
            }
            times: dict[str, list[tuple[float, float]]] = {key: [] for key in variants}
            for _ in range(args.repeat):
                for key, action in variants.items():
                    times[key].append(_timed(action))
            ffmpeg_wall = statistics.median(wall for wall, _ in times[list(variants)[1]])
            for key, samples in times.items():
                wall = statistics.median(w for w, _ in samples)
                cpu = statistics.median(c for _, c in samples)
                table.add_row(name, key, f"{wall:.2f}", f"{cpu:.2f}", f"{args.seconds / wall:.1f}",
                              f"{wall / ffmpeg_wall:.2f}x")
        console.print(table)


if __name__ == "__main__":
    main()
