"""How long sync analysis takes against the clip's own duration, and against the floor.

A 12 s Sora 2 shaped clip (1280x720 24 fps H.264 with 96 kHz AAC, synthesised by
``pipeline.media.synth`` with flash-and-beep events at irregular times and the sound 80 ms late, its
picture then re-encoded with x264's ``medium`` preset at CRF 18, B-frames and deblocking included,
as a generator delivers it rather than as the synthesiser's quick ``ultrafast`` encode) is
analysed four ways:

a. the floor: a hand-written ffmpeg command decoding the picture to 160 px grey frames on a pipe,
   which Python reads and drops (no analysis at all);
b. PyAV decoding every frame, nothing else (the decoder postprod uses);
c. ``pipeline.analysis.sync.measure_sync`` in this process, with its stages timed on their own:
   probe, container findings, picture events (decode, grey, block change, optical flow), sound
   onsets (decode, resample, spectral flux), mouth tracks (here no face: the detector every 24th
   frame) and speech activity;
d. ``postprod sync --json`` in a fresh process: interpreter start-up and imports included.

The process is pinned to ``--cores`` CPUs (2 by default, the CI machine's count) and every
variant's children inherit that. Rounds are interleaved; the table gives medians.

Goal: c in under a quarter of the clip's duration.

Then a real 720p talking clip (``--talking``, by default the LatentSync comparison clip from
``../shared/devclips/``, 1280x720 25 fps 8 s), where the events do not decide and the lip-sync
estimator answers or declines: ``measure_sync`` whole (one decode of the picture and one of the
sound feed the picture events, the sound onsets, the mouths and the speech activity, the face
tracker working in a thread of its own), and each of those four analyses alone, from a decode of
its own, the mouths both in a thread beside the decoder and in the decoder's thread (as they ran
before the shared pass). Same goal.

Every row gives wall seconds and CPU seconds (all threads of this process and of the child
processes it waited for). On a shared machine the wall time counts other people's work too and
the CPU seconds do not: the load average is printed with each table.

Run from the repository root::

    python bench/sync_speed.py --seconds 12 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
from rich.console import Console
from rich.table import Table

from pipeline.media.runner import ffmpeg_executable, ffmpeg_version, run_ffmpeg
from pipeline.analysis.onsets import ANALYSIS_WIDTH_PX, picture_events, sound_onsets
from pipeline.media.probe import probe
from pipeline.analysis.sync import container_findings, measure_sync
from pipeline.media.synth import SHAPES, ClipContent, synthesize
from pipeline.analysis.lipsync import follow_mouths, mouth_tracks, speech_activity

SHAPE = "sora2-1280x720-24"
GOAL_SHARE = 0.25
"""Analysis should take at most this share of the clip's duration."""
SOUND_LATE_MS = 80
EVENT_GAPS_S = ("0.7", "0.45", "0.9", "0.55", "1.1", "0.6", "0.8")
"""Gaps between flash-and-beep events, repeated through the clip: irregular, as real events are."""
CONSOLE_WIDTH = 120
TALKING_CLIP = Path("../shared/devclips/ai_latentsync_compare_1.mp4")


def event_times(seconds: Fraction, rate: Fraction) -> tuple[Fraction, ...]:
    """Flash-and-beep instants on frames, from 0.5 s to 0.5 s before the end."""
    times, at, gap = [], Fraction(1, 2), 0
    while at < seconds - Fraction(1, 2):
        times.append(Fraction(round(at * rate)) / rate)
        at += Fraction(EVENT_GAPS_S[gap % len(EVENT_GAPS_S)])
        gap += 1
    return tuple(times)


def ffmpeg_grey_pipe(clip: Path) -> None:
    """Variant a: decode to small grey frames with a hand-written ffmpeg command, read and drop."""
    argv = [ffmpeg_executable(), "-nostdin", "-loglevel", "error", "-i", str(clip), "-an",
            "-vf", f"scale={ANALYSIS_WIDTH_PX}:-2:flags=area,format=gray", "-f", "rawvideo", "pipe:1"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        while process.stdout.read(1 << 20):
            pass
    if process.returncode:
        raise RuntimeError(f"ffmpeg exited with {process.returncode}")


def pyav_decode(clip: Path) -> None:
    """Variant b: every frame decoded by PyAV, as postprod decodes them, and dropped."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass


def cli_sync(clip: Path) -> None:
    """Variant d: ``postprod sync --json`` in a fresh interpreter."""
    script = Path(sys.executable).with_name("postprod")
    subprocess.run([str(script), "sync", str(clip), "--json"], check=True, capture_output=True)


def mouth_tracks_in_one_thread(clip: Path, rotation: int) -> None:
    """The mouths as they were followed before the shared pass: in the decoder's thread."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        follow_mouths(container.decode(stream), rotation)


def cpu_seconds() -> float:
    """CPU time of this process's threads and of its children that ended, in seconds."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed(action: Callable[[], object], cpu: list[float] | None = None, caller_cpu: list[float] | None = None
          ) -> float:
    """Wall seconds ``action`` takes; its CPU seconds are appended to ``cpu``, those of the calling
    thread alone (not the face tracker's, the decoder's or OpenCV's threads) to ``caller_cpu``."""
    cpu_started, caller_started, started = cpu_seconds(), time.thread_time(), time.perf_counter()
    action()
    wall_s = time.perf_counter() - started
    if cpu is not None:
        cpu.append(cpu_seconds() - cpu_started)
    if caller_cpu is not None:
        caller_cpu.append(time.thread_time() - caller_started)
    return wall_s


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="clip length (default 12)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--cores", type=int, default=2, help="CPUs to pin the benchmark to (default 2)")
    parser.add_argument("--talking", type=Path, default=TALKING_CLIP,
                        help=f"a real talking clip to time as well (default {TALKING_CLIP}); skipped if absent")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    console = Console(width=CONSOLE_WIDTH)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    console.print(f"ffmpeg {ffmpeg_version()}; pinned to {cores} of {os.cpu_count()} CPU cores; "
                  f"1-min load average before: {os.getloadavg()[0]:.2f}", highlight=False)
    seconds = Fraction(args.seconds)
    shape = SHAPES[SHAPE]
    content = ClipContent(event_times_s=event_times(seconds, shape.frame_rate),
                          audio_shift_s=Fraction(SOUND_LATE_MS, 1000))
    with tempfile.TemporaryDirectory(prefix="sync-speed-") as tmp:
        synthesised = synthesize(shape, Path(tmp) / "synthesised.mp4", seconds, content=content)
        clip = Path(tmp) / "clip.mp4"
        run_ffmpeg(["-i", str(synthesised), "-c:v", "libx264", "-preset", "medium", "-crf", "18",
                    "-c:a", "copy", str(clip)])
        report = measure_sync(clip)  # warm-up: imports, OpenCV and FFmpeg initialisation
        console.print(f"{args.seconds:g} s {SHAPE} clip, {len(content.event_times_s)} events, sound "
                      f"{SOUND_LATE_MS} ms late: measured {report.offset_ms} ms, confidence "
                      f"{report.confidence:.2f}, {report.verdict}", highlight=False)
        rows: dict[str, list[float]] = {name: [] for name in (
            "a. floor: ffmpeg to 160 px grey (pipe)", "b. PyAV decode only",
            "c. measure_sync", "   probe", "   container findings", "   picture events", "   sound onsets",
            "   mouth tracks (no face: detection only)", "   speech activity",
            "d. postprod sync --json (fresh process)")}
        cpu: dict[str, list[float]] = {name: [] for name in rows}
        info = probe(clip)
        for _ in range(args.repeat):
            for name, action in (("a. floor: ffmpeg to 160 px grey (pipe)", lambda: ffmpeg_grey_pipe(clip)),
                                 ("b. PyAV decode only", lambda: pyav_decode(clip)),
                                 ("c. measure_sync", lambda: measure_sync(clip)),
                                 ("   probe", lambda: probe(clip)),
                                 ("   container findings", lambda: container_findings(info)),
                                 ("   picture events", lambda: picture_events(clip)),
                                 ("   sound onsets", lambda: sound_onsets(clip)),
                                 ("   mouth tracks (no face: detection only)", lambda: mouth_tracks(clip)),
                                 ("   speech activity", lambda: speech_activity(clip)),
                                 ("d. postprod sync --json (fresh process)", lambda: cli_sync(clip))):
                rows[name].append(timed(action, cpu[name]))
    floor_s = statistics.median(rows["a. floor: ffmpeg to 160 px grey (pipe)"])
    table = Table("variant", "wall s", "CPU s", "x clip duration", "x floor",
                  title=f"sync analysis of a {args.seconds:g} s 720p24 clip, median of {args.repeat}")
    for name, times in rows.items():
        wall_s = statistics.median(times)
        table.add_row(name, f"{wall_s:.2f}", f"{statistics.median(cpu[name]):.2f}", f"{wall_s / args.seconds:.3f}",
                      f"{wall_s / floor_s:.2f}")
    console.print(table)
    console.print("The stages under c are timed apart, each from a decode of its own (c decodes once). "
                  f"1-min load average: {os.getloadavg()[0]:.2f}", highlight=False)
    analysis_s = statistics.median(rows["c. measure_sync"])
    verdict = "met" if analysis_s <= GOAL_SHARE * args.seconds else "MISSED"
    console.print(f"goal: measure_sync <= {GOAL_SHARE:g} x clip duration "
                  f"({GOAL_SHARE * args.seconds:.2f} s): {analysis_s:.2f} s, "
                  f"{analysis_s / args.seconds:.3f} x, {verdict}")
    if args.talking.is_file():
        time_talking_clip(args.talking, args.repeat, console)
    else:
        console.print(f"{args.talking} is not here: the talking clip is not timed")


def time_talking_clip(clip: Path, repeat: int, console: Console) -> None:
    """measure_sync on a real talking clip, whole and by stage (the lip-sync path included)."""
    info = probe(clip)
    seconds = float(info.duration_s)
    report = measure_sync(clip, info)  # warm-up
    console.print(f"{clip.name}: {info.video.coded_width}x{info.video.coded_height} "
                  f"{float(info.video.frame_rate):g} fps {seconds:.1f} s; measured {report.offset_ms} ms by "
                  f"{report.method}, {report.verdict}", highlight=False)
    rotation = info.video.rotation % 360
    stages: dict[str, Callable[[], object]] = {
        "measure_sync (one decode, mouths in a thread)": lambda: measure_sync(clip, info),
        "   picture events alone": lambda: picture_events(clip),
        "   sound onsets alone": lambda: sound_onsets(clip),
        "   mouth tracks alone, in a thread": lambda: mouth_tracks(clip, rotation),
        "   mouth tracks alone, in the decoder's thread": lambda: mouth_tracks_in_one_thread(clip, rotation),
        "   speech activity alone": lambda: speech_activity(clip),
    }
    rows: dict[str, list[float]] = {name: [] for name in stages}
    cpu: dict[str, list[float]] = {name: [] for name in stages}
    caller_cpu: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(repeat):
        for name, action in stages.items():
            rows[name].append(timed(action, cpu[name], caller_cpu[name]))
    # On two free cores the wall time is at least half the CPU time, and at least the CPU time of
    # the busiest thread (the face tracker's where the mouths run in a thread).
    table = Table("stage", "wall s", "CPU s", "of it the calling thread", "x clip duration", "x realtime",
                  title=f"sync analysis of {clip.name}, median of {repeat}")
    for name, times in rows.items():
        wall_s = statistics.median(times)
        table.add_row(name, f"{wall_s:.2f}", f"{statistics.median(cpu[name]):.2f}",
                      f"{statistics.median(caller_cpu[name]):.2f}", f"{wall_s / seconds:.3f}", f"{seconds / wall_s:.1f}")
    console.print(table)
    console.print(f"1-min load average: {os.getloadavg()[0]:.2f}", highlight=False)
    analysis_s = statistics.median(rows["measure_sync (one decode, mouths in a thread)"])
    verdict = "met" if analysis_s <= GOAL_SHARE * seconds else "MISSED"
    console.print(f"goal: measure_sync <= {GOAL_SHARE:g} x clip duration ({GOAL_SHARE * seconds:.2f} s): "
                  f"{analysis_s:.2f} s, {seconds / analysis_s:.1f}x realtime, {verdict}")


if __name__ == "__main__":
    main()
