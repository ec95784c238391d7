"""What measuring a finished output costs: the one decode that verification and QC share, stage by stage.

The outputs are the batch's (``bench/batch.py``): a Sora 2 shaped source (1280x720 24 fps, 96 kHz AAC)
made into 1920x1080 and 1080x1920 H.264 with 48 kHz stereo AAC by the batch's hand-written ffmpeg
commands. Each is measured as a job measures it (:func:`pipeline.render.measure.measure_output`,
legaliser measures off, as in these presets).

1. **Total**: CPU seconds of the process (all threads: the decoder's, OpenCV's) and wall seconds of
   ``measure_output``, median of ``--repeat`` runs.
2. **Stages**: the same call with OpenCV on one thread and every measuring function wrapped; each
   stage's CPU is the calling thread's, its callees' wrapped stages taken out, so nothing counts
   twice. What is left of the process's CPU is the decode (its threads, the demux, the audio
   conversion). A stage a tree does not have is left out.
3. **Conformed media**: the same source as ProRes 422 LT 1920x1080 (``prores-lt-1080p``'s codec, what
   ``editorial.conformed_media`` writes), verified with its picture measured and, where the tree
   can, with its frames counted by demuxing (QC never reads conformed media); and measured as a
   broadcast deliverable is, with the share of each frame the broadcast legaliser changed.

Run from the repository root; ``--keep DIR`` reuses the source and outputs made there; an older
tree's code is timed with ``PYTHONPATH`` pointing at an export of it::

    python bench/output_measures.py [--seconds 8 --repeat 3 --keep /tmp/outputs]
    PYTHONPATH=/tmp/before python bench/output_measures.py --keep /tmp/outputs
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import cv2
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from batch import _clip, _hand_written  # noqa: E402

import pipeline.analysis.loudness as loudness  # noqa: E402
import pipeline.analysis.track_levels as track_levels  # noqa: E402
import pipeline.render.picture_measures as picture_measures  # noqa: E402
from pipeline.media.output_decode import PictureFrame  # noqa: E402
from pipeline.media.probe import probe  # noqa: E402
from pipeline.media.runner import ffmpeg_executable  # noqa: E402
from pipeline.render.measure import measure_output  # noqa: E402

OUTPUTS = (("H.264 1920x1080", "web-h264-1080p"), ("H.264 1080x1920", "social-9x16"))
STAGES = {
    "reduction (2x2 luma, 4x4 areas, grey)": (picture_measures, ("_reduce",)),
    "grey picture (black, detail, difference)": (picture_measures, ("_small_grey",)),
    "levels (luma range)": (picture_measures, ("_outside_share",)),
    "gamut (R'G'B')": (picture_measures, ("_out_of_gamut_share",)),
    "legaliser's share": (picture_measures, ("_legalised_share", "touched_share", "_normalised_ycbcr")),
    "flash tracking": (picture_measures, ("_luminance",)),
    "contact sheet": (PictureFrame, ("jpeg",)),
    "track levels, envelope": (track_levels.SoundMeter, ("feed",)),
    "loudness, true peak": (loudness.LoudnessMeter, ("feed",)),
}
"""Stage name: where its functions live and which. The names are this tree's and those of commit
8ec9cfd (``_small_grey``), so that an export of it can be timed with ``PYTHONPATH`` pointing there;
those a tree lacks are skipped. ``_normalised_ycbcr`` was a step of every gamut check in 8ec9cfd
(timed as the legaliser's there), of the legaliser's share since."""
LEGALISED_LABEL = "ProRes 422 LT 1920x1080, legaliser's share measured"
FLASH_TRACKER = ("_FlashTracker", "update")
PICTURE_METER = ("PictureMeter", "add")


class StageClock:
    """Thread CPU per stage, exclusive of the wrapped stages called inside it."""

    def __init__(self) -> None:
        self.spent: defaultdict[str, float] = defaultdict(float)
        self._stack: list[float] = []

    def wrap(self, stage: str, function):
        def timed(*args, **kwargs):
            started = time.thread_time()
            self._stack.append(0.0)
            try:
                return function(*args, **kwargs)
            finally:
                inner = self._stack.pop()
                own = time.thread_time() - started
                self.spent[stage] += own - inner
                if self._stack:
                    self._stack[-1] += own
        return timed


@contextmanager
def wrapped(clock: StageClock):
    """Every stage function of this tree timed by ``clock``, restored afterwards."""
    targets = [(stage, owner, name) for stage, (owner, names) in STAGES.items() for name in names
               if hasattr(owner, name)]
    targets.append(("flash tracking", getattr(picture_measures, FLASH_TRACKER[0]), FLASH_TRACKER[1]))
    targets.append(("per-frame bookkeeping", getattr(picture_measures, PICTURE_METER[0]), PICTURE_METER[1]))
    originals = [(owner, name, getattr(owner, name)) for _, owner, name in targets]
    for stage, owner, name in targets:
        setattr(owner, name, clock.wrap(stage, getattr(owner, name)))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _measure(path: Path, **options) -> tuple[float, float]:
    info = probe(path)
    wall, cpu = time.monotonic(), time.process_time()
    measure_output(path, info, (0,), **options)
    return time.process_time() - cpu, time.monotonic() - wall


def _stages(path: Path, **options) -> dict[str, float]:
    info = probe(path)
    clock = StageClock()
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with wrapped(clock):
            cpu = time.process_time()
            measure_output(path, info, (0,), **options)
            total = time.process_time() - cpu
    finally:
        cv2.setNumThreads(threads)
    return {"decode (demux, picture and sound decode, audio conversion)": total - sum(clock.spent.values()),
            **clock.spent, "total": total}


def _outputs(folder: Path, seconds: int) -> dict[str, Path]:
    source = folder / "clip00.mp4"
    if not source.exists():
        _clip(folder, 0, seconds)
    paths = {}
    for label, preset in OUTPUTS:
        path = folder / f"{preset}.mp4"
        if not path.exists():
            subprocess.run(_hand_written(source, preset, path), check=True)
        paths[label] = path
    return paths


def _conformed_media(folder: Path) -> Path:
    """The source as conformed media: ProRes 422 LT 1920x1080, 24-bit 48 kHz stereo PCM (as the preset)."""
    path = folder / "conformed.mov"
    if not path.exists():
        subprocess.run([
            ffmpeg_executable(), "-v", "error", "-y", "-i", str(folder / "clip00.mp4"),
            "-vf", "scale=1920:1080,format=yuv422p10le", "-c:v", "prores_aw", "-profile:v", "1",
            "-c:a", "pcm_s24le", "-ar", "48000", "-ac", "2", str(path),
        ], check=True)  # fmt: skip
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="make (or reuse) the source and outputs here")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = arguments.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        paths = _outputs(folder, arguments.seconds)
        conformed = _conformed_media(folder)
        # The broadcast presets also measure what their legaliser changed (the picture here is not
        # legalised: the cost is the measure's, most of whose areas sit inside the knees either way).
        measured = {**{label: (path, {}) for label, path in paths.items()},
                    LEGALISED_LABEL: (conformed, {"legalised": True})}
        console = Console()
        totals = Table(title="measure_output per output (median)")
        for column in ("output", "CPU s", "wall s"):
            totals.add_column(column)
        stages = {label: [_stages(path, **options) for _ in range(arguments.repeat)]
                  for label, (path, options) in measured.items()}
        for label, (path, options) in measured.items():
            runs = [_measure(path, **options) for _ in range(arguments.repeat)]
            totals.add_row(label, f"{statistics.median(r[0] for r in runs):.2f}",
                           f"{statistics.median(r[1] for r in runs):.2f}")
        console.print(totals)
        breakdown = Table(title="CPU s by stage (OpenCV on one thread; median)")
        breakdown.add_column("stage")
        for label in measured:
            breakdown.add_column(label)
        names = list(dict.fromkeys(name for runs in stages.values() for run in runs for name in run))
        names.append(names.pop(names.index("total")))
        for name in names:
            breakdown.add_row(name, *(f"{statistics.median(run.get(name, 0.0) for run in runs):.3f}"
                                      for runs in stages.values()))
        console.print(breakdown)
        media = Table(title="conformed media (ProRes 422 LT 1920x1080) verification, median")
        for column in ("picture", "CPU s", "wall s"):
            media.add_column(column)
        variants = [("decoded and measured", {})]
        if "picture" in inspect.signature(measure_output).parameters:
            variants.append(("counted by demuxing", {"picture": False}))
        for label, options in variants:
            runs = [_measure(conformed, **options) for _ in range(arguments.repeat)]
            media.add_row(label, f"{statistics.median(r[0] for r in runs):.2f}",
                          f"{statistics.median(r[1] for r in runs):.2f}")
        console.print(media)


if __name__ == "__main__":
    main()
