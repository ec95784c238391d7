"""QC speed: what checking a deliverable costs after it is written, against ffmpeg's own detectors.

An 8 s Sora 2 shaped clip (pipeline.media.synth: 1280x720 24 fps, 96 kHz sound) is finished into
``web-h264-1080p`` at 1280x720 and at 1920x1080, and ``broadcast-prores-hq-1080p25``.

Part 1, verification and QC as ``finish`` runs them, per deliverable (medians of the rounds, the
trees interleaved): wall and CPU seconds (this process, all threads) of the renderer's verification
call and of QC's ``run_qc`` call (timed by wrapping them), and how often the output file was opened
with PyAV (a probe, plus one per decode pass; counted by wrapping ``av.open``). ``--baseline DIR`` runs the same job with the code of another tree (for example an
export of an older commit: ``git archive COMMIT | tar -x -C DIR``) for a before/after table.

Part 2, QC of a finished file on its own (``postprod qc``), rounds interleaved, medians reported:
a. ``pipeline.qc.checks.run_qc``: probe plus one decode of picture and sound feeding every check;
b. a hand-written ffmpeg command running ffmpeg's detectors side by side in one decode:
   ``blackdetect``, ``freezedetect`` and ``signalstats`` on the picture, ``silencedetect`` and
   ``ebur128=peak=true`` on the sound (output discarded): fewer checks, no flash or stutter;
c. the floor: PyAV decoding both streams and doing nothing.

The process (and the ``--baseline`` run) is pinned to ``--cores`` CPUs (2 by default).

    python bench/qc_speed.py --repeat 3 --baseline /tmp/postprod-before
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import av
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DELIVERABLES = (
    ("H.264 720p", {"preset": "web-h264-1080p", "overrides": {"video": {"width": 1280, "height": 720}}}),
    ("H.264 1080p", {"preset": "web-h264-1080p"}),
    ("ProRes HQ 1080p25", {"preset": "broadcast-prores-hq-1080p25"}),
)


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(action) -> tuple[float, float]:
    wall, cpu = time.monotonic(), _cpu_s()
    action()
    return time.monotonic() - wall, _cpu_s() - cpu


VERIFICATION_ENTRY_POINTS = ("verify_output", "find_mismatches")
"""What the renderer calls to verify an output: this tree's name, and the name before verification
and QC shared one decode (so ``--baseline`` can time an older tree)."""


def finish_and_count(folder: Path, seconds: int) -> dict:
    """Finish the bench job with the ``pipeline`` first on ``sys.path``. Per deliverable: its path,
    wall and CPU seconds (this process, all threads) of its verification and of its QC, and the
    PyAV opens of its partial and its final file (a probe, plus one per decode pass)."""
    import pipeline.jobs.finish
    import pipeline.render.renderer
    from pipeline.media.synth import SHAPES, synthesize
    from pipeline.model.job import parse_job

    opened: Counter[str] = Counter()
    spent: dict[tuple[str, str], list[float]] = {}
    real_open = av.open

    def counting_open(file, *args, **kwargs):
        opened[Path(file).name] += 1
        return real_open(file, *args, **kwargs)

    def timed(step: str, function):
        def call(path, *args, **kwargs):
            wall, cpu = time.monotonic(), time.process_time()
            result = function(path, *args, **kwargs)
            name = Path(path).name.removeprefix(".").removesuffix(".partial")
            spent[step, name] = [time.monotonic() - wall, time.process_time() - cpu]
            return result
        return call

    source = synthesize(SHAPES["sora2-1280x720-24"], folder / "source.mp4", Fraction(seconds))
    deliverables = [{**deliverable, "name": f"d{number}"} for number, (_, deliverable) in enumerate(DELIVERABLES)]
    job = parse_job({"version": 1, "name": "bench", "shots": [{"source": str(source)}],
                     "deliverables": deliverables}, folder)
    renderer = pipeline.render.renderer
    verify = next(name for name in VERIFICATION_ENTRY_POINTS if hasattr(renderer, name))
    with_patches = [(av, "open", counting_open), (renderer, verify, timed("verify", getattr(renderer, verify))),
                    (pipeline.jobs.finish, "run_qc", timed("qc", pipeline.jobs.finish.run_qc))]
    originals = [(module, name, getattr(module, name)) for module, name, _ in with_patches]
    for module, name, replacement in with_patches:
        setattr(module, name, replacement)
    try:
        manifest = json.loads(pipeline.jobs.finish.finish(job, folder / "out").read_text())
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
    outputs = {}
    for output in manifest["outputs"]:
        name = Path(output["path"]).name
        outputs[output["deliverable"]] = {
            "path": output["path"], "verify": spent["verify", name], "qc": spent["qc", name],
            "opens": [opened[f".{name}.partial"], opened[name]],
        }
    return outputs


def _finish_with(tree: Path, folder: Path, seconds: int) -> dict:
    """:func:`finish_and_count` in a child process with ``tree``'s code."""
    # This file is loaded by path: the tree may have a bench/qc_speed.py of its own.
    script = (f"import sys, json, importlib.util; sys.path.insert(0, {str(tree)!r}); "
              f"spec = importlib.util.spec_from_file_location('qc_speed_bench', {__file__!r}); "
              "bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench); "
              "from pathlib import Path; "
              f"print(json.dumps(bench.finish_and_count(Path({str(folder)!r}), {seconds})))")
    # The child inherits this process's CPU affinity.
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(tree)})
    if result.returncode:
        sys.exit(f"finishing with the code in {tree} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _ffmpeg_detectors(path: Path) -> None:
    from pipeline.media.runner import run_ffmpeg

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


def _verify_and_qc_table(runs: dict[str, list[dict]]) -> Table:
    """Medians over the rounds of each code's wall and CPU seconds; opens of the first round."""
    table = Table("deliverable", "code", "verify wall / CPU s", "QC wall / CPU s", "verify + QC wall / CPU s",
                  "opens of partial / final file")
    for number, (label, _) in enumerate(DELIVERABLES):
        for code, rounds in runs.items():
            outputs = [round_[f"d{number}"] for round_ in rounds]
            steps = {step: [output[step] for output in outputs] for step in ("verify", "qc")}
            steps["both"] = [[a + b for a, b in zip(*pair, strict=True)] for pair in zip(*steps.values(), strict=True)]
            cells = [" / ".join(f"{statistics.median(values):.2f}" for values in zip(*samples, strict=True))
                     for samples in steps.values()]
            table.add_row(label, code, *cells, " / ".join(map(str, outputs[0]["opens"])))
    return table


def _standalone_qc_table(outputs: dict, repeat: int, seconds: int) -> Table:
    from pipeline.model.presets import load_presets
    from pipeline.qc.checks import run_qc

    presets = load_presets()
    table = Table("deliverable", "variant", "wall s", "CPU s", "x realtime", "vs ffmpeg detectors")
    for number, (label, deliverable) in enumerate(DELIVERABLES):
        path = Path(outputs[f"d{number}"]["path"])
        preset = presets[deliverable["preset"]].with_overrides(deliverable.get("overrides", {}))
        variants = {
            "a. postprod QC (all checks, one decode)": lambda p=path, s=preset: run_qc(p, s),
            "b. ffmpeg blackdetect+freezedetect+signalstats+silencedetect+ebur128": lambda p=path: _ffmpeg_detectors(p),
            "c. floor: PyAV decode only": lambda p=path: _decode_only(p),
        }
        times: dict[str, list[tuple[float, float]]] = {key: [] for key in variants}
        for _ in range(repeat):
            for key, action in variants.items():
                times[key].append(_timed(action))
        ffmpeg_wall = statistics.median(wall for wall, _ in times[list(variants)[1]])
        for key, samples in times.items():
            wall = statistics.median(w for w, _ in samples)
            cpu = statistics.median(c for _, c in samples)
            table.add_row(label, key, f"{wall:.2f}", f"{cpu:.2f}", f"{seconds / wall:.1f}",
                          f"{wall / ffmpeg_wall:.2f}x")
    return table


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.machine import print_machine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--baseline", type=Path, help="a tree with older code to compare verification and QC with")
    args = parser.parse_args()
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    console = Console(width=150)
    print_machine(console)
    trees = {**({"before": args.baseline.resolve()} if args.baseline else {}), "this tree": ROOT}
    with tempfile.TemporaryDirectory() as scratch:
        runs: dict[str, list[dict]] = {code: [] for code in trees}
        for number in range(args.repeat):
            for code, tree in trees.items():
                folder = Path(scratch) / f"{code}-{number}"
                folder.mkdir()
                runs[code].append(_finish_with(tree, folder, args.seconds))
        console.print(_verify_and_qc_table(runs))
        console.print(_standalone_qc_table(runs["this tree"][-1], args.repeat, args.seconds))


if __name__ == "__main__":
    main()
