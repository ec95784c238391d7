"""Where the one source pass's CPU goes, part by part, as ``bench/batch.py`` asks for it.

Each clip is analysed as a batch job analyses its source (the sync check's picture events, sound
onsets, mouths and speech activity, the active area for a centre crop, the source's loudness at
48 kHz: :func:`pipeline.analysis.source_pass.analyse_source`, cache off), and the CPU time of each
part is read in the thread that runs it (``time.thread_time`` around each consumer's calls; the face
tracker's whole worker thread): the sound's resampling, each meter, the face tracker (with the
detector's and the face mesh's share, and how many frames each ran on), and the rest of the
process's CPU, which is FFmpeg's decoding threads and the demuxer.

Clips: the batch's own (an 8 s Sora 2 shaped 1280x720 24 fps clip with 96 kHz AAC and a
flash-and-beep event every second, no face, as ``bench/batch.py`` synthesises it) and development
clips from ``../shared/devclips/``, talking heads and not. One warm-up pass per clip (SciPy's
import, the models' first load), then the median of ``--repeat`` passes.

Run from the project root: ``.venv/bin/python bench/source_pass_cost.py [--repeat 3] [CLIP ...]``;
put another checkout first on ``PYTHONPATH`` to measure it (the parts are read through names both
share).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pipeline.analysis.lipsync as lipsync
import pipeline.analysis.source_pass as source_pass
import pipeline.media.source_decode as source_decode
from pipeline.analysis.onsets import PictureEventsMeter, SoundOnsetsMeter
from pipeline.analysis.reframe import FaceDetector
from pipeline.analysis.reframe.analysis import ActiveAreaMeter
from pipeline.analysis.source_loudness import SourceLoudnessMeter
from pipeline.media.probe import probe
from pipeline.media.synth import SHAPES, ClipContent, synthesize

DEVCLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "devclips"
CLIPS = ("ai_latentsync_compare_1.mp4", "speech_face_2.mp4", "ai_infinitetalk_compare_0.mp4",
         "real_vggsound_whale_shark.mp4")
NEEDS = source_pass.SourceNeeds(sync=True, active_area=True, loudness_rate=48000)
"""What a batch job with ``web-h264-1080p`` and ``social-9x16`` asks of its source."""
PARTS = ("decoding", "sound resampling", "picture events", "active area", "sound onsets", "speech activity",
         "source loudness", "face thread")

_cpu: Counter[str] = Counter()
_runs: Counter[str] = Counter()


def _timed(function, *parts: str):
    """``function`` with the CPU time of the thread calling it added to each of ``parts``."""
    @functools.wraps(function)
    def timed(*args, **kwargs):
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            for part in parts:
                _cpu[part] += time.thread_time() - started
                _runs[part] += 1
    return timed


def _instrument() -> None:
    for meter, part in ((PictureEventsMeter, "picture events"), (ActiveAreaMeter, "active area"),
                        (SoundOnsetsMeter, "sound onsets"), (SourceLoudnessMeter, "source loudness")):
        for method in ("add_picture", "result"):
            if hasattr(meter, method):
                setattr(meter, method, _timed(getattr(meter, method), part))
        if hasattr(meter, "add_sound"):
            # Called inside the sound feed: taken out of the resampling's share.
            meter.add_sound = _timed(meter.add_sound, part, "fed sound")
    source_decode._SoundFeed.add = _timed(source_decode._SoundFeed.add, "sound feed")
    source_pass.speech_level = _timed(source_pass.speech_level, "speech activity")
    lipsync.follow_mouths = _timed(lipsync.follow_mouths, "face thread")
    FaceDetector.detect = _timed(FaceDetector.detect, "detector")
    lipsync._FaceMesh.landmarks = _timed(lipsync._FaceMesh.landmarks, "face mesh")


def _batch_clip(folder: Path) -> Path:
    """The batch's clip number 3 (``bench/batch.py``'s ``_clip``)."""
    events = tuple(Fraction(second) + Fraction(3, 24) for second in range(1, 8))
    return synthesize(SHAPES["sora2-1280x720-24"], folder / "batch-clip03.mp4", Fraction(8),
                      content=ClipContent(event_times_s=events))


def _one_pass(path: Path) -> dict[str, float]:
    media = probe(path)
    _cpu.clear()
    _runs.clear()
    started = time.process_time()
    source_pass.analyse_source(path, media, NEEDS, lambda name, source, parameters, compute: compute())
    whole = time.process_time() - started
    parts = {part: _cpu[part] for part in PARTS if part not in ("decoding", "sound resampling")}
    parts["sound resampling"] = _cpu["sound feed"] - _cpu["fed sound"]
    parts["decoding"] = whole - sum(parts.values())
    return {**parts, "whole": whole, "detector": _cpu["detector"], "face mesh": _cpu["face mesh"],
            "detector runs": _runs["detector"], "mesh runs": _runs["face mesh"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="*", default=CLIPS, help="development clips (names in ../shared/devclips)")
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    _instrument()
    with tempfile.TemporaryDirectory() as scratch:
        paths = [_batch_clip(Path(scratch)), *(DEVCLIPS / name for name in arguments.clips)]
        print("CPU seconds per pass (medians); face thread: detector / mesh CPU s and the frames each ran on")
        print(f"{'clip':32s} {'whole':>6s} " + " ".join(f"{part[:10]:>10s}" for part in PARTS)
              + f" {'detector':>14s} {'mesh':>14s}")
        for path in paths:
            _one_pass(path)
            rounds = [_one_pass(path) for _ in range(arguments.repeat)]
            median = {key: statistics.median(row[key] for row in rounds) for key in rounds[0]}
            print(f"{path.name:32s} {median['whole']:6.2f} " + " ".join(f"{median[part]:10.3f}" for part in PARTS)
                  + f" {median['detector']:6.3f} ({median['detector runs']:3.0f})"
                  + f" {median['face mesh']:6.3f} ({median['mesh runs']:3.0f})")


if __name__ == "__main__":
    main()
