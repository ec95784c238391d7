"""Crop first, then scale: the picture and CPU cost of 9:16 crops before and after the change.

Renders the same jobs with two checkouts of postprod (``--code`` points at the checkout to run, so
the "before" side can be a snapshot of the earlier commit) and compares them: the PSNR of the
"after" outputs against the "before" ones (ffmpeg's ``psnr`` filter, Y/U/V averaged over all
frames), and each render's CPU seconds (``os.wait4`` of ``postprod finish --no-prefect``: probing,
analyses, the render and its verification, with children).

The jobs: a synthetic 1280x720 clip (``testsrc2`` under a square moving across it) and real devclips,
each into ``social-9x16`` (centre crop) and ``reels-9x16`` (smart crop).

Run from the repository root::

    python bench/crop_first.py render --code /tmp/before --out /tmp/crop/before
    python bench/crop_first.py render --code . --out /tmp/crop/after
    python bench/crop_first.py compare /tmp/crop/before /tmp/crop/after
    python bench/crop_first.py filters --code /tmp/before    # and --code . : the graph's CPU alone
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg

DEVCLIPS = Path(__file__).resolve().parents[1] / ".." / "shared" / "devclips"
CLIPS = ("synthetic_square_720p.mp4", "real_vggsound_whale_shark.mp4", "speech_face_2.mp4")
PRESETS = ("social-9x16", "reels-9x16")
SYNTHETIC_SECONDS = 4


def _synthetic(path: Path) -> None:
    """A 1280x720 24 fps clip: a detailed moving test picture with a square sliding left to right."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=s=1280x720:r=24:d={SYNTHETIC_SECONDS}",
                    "-f", "lavfi", "-i", "color=c=red:s=120x120:r=24",
                    "-f", "lavfi", "-i", f"sine=f=440:d={SYNTHETIC_SECONDS}",
                    "-filter_complex", "[0][1]overlay=x='100+250*t':y=300:shortest=1", "-shortest",
                    "-c:v", "libx264", "-crf", "16", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path)],
                   check=True)


def _source(name: str, work: Path) -> Path:
    if name.startswith("synthetic"):
        path = work / name
        if not path.exists():
            _synthetic(path)
        return path
    return DEVCLIPS / name


def render(code: Path, out: Path, clips: tuple[str, ...]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="crop-first-"))
    timings_file = out / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    env = {**os.environ, "PYTHONPATH": str(code.resolve())}
    for clip in clips:
        for preset in PRESETS:
            target = out / f"{Path(clip).stem}.{preset}"
            command = [sys.executable, "-m", "postprod.cli", "finish", str(_source(clip, work)), "--preset", preset,
                       "--out", str(target), "--no-prefect"]
            started = time.monotonic()
            process = subprocess.Popen(command, env=env, cwd=code, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(process.pid, 0)
            if status != 0:
                raise SystemExit(f"{clip} {preset}: postprod finish failed ({status})")
            timings[target.name] = {"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": time.monotonic() - started}
            print(target.name, timings[target.name], flush=True)
    timings_file.write_text(json.dumps(timings, indent=1))


_FILTERS_ONLY = """
import sys
from fractions import Fraction
import ffmpeg
from pipeline.media.probe import probe
from pipeline.plan.conform import PictureFormat, conform_video
from pipeline.timeline.sequence import ShotSpan
clip = sys.argv[1]
video = probe(clip).video
frames = video.frame_count
span = ShotSpan(source_start_frame=0, frame_count=frames, timeline_start_frame=0, audio_source_start_sample=0,
                audio_timeline_start_sample=0, sample_count=0)
target = PictureFormat(1080, 1920, video.planning_rate, "yuv420p", "crop")
picture = conform_video(ffmpeg.input(clip).video, video, span, target)
print(" ".join(ffmpeg.output(picture, "-", f="null").get_args()))
"""


def filters_only(code: Path, clips: tuple[str, ...], repeat: int) -> None:
    """CPU seconds of ffmpeg decoding each clip and running its ``social-9x16`` conform graph (centre
    crop to 1080x1920) into the null muxer: the scaling without the encoder, best of ``repeat``."""
    work = Path(tempfile.mkdtemp(prefix="crop-first-"))
    env = {**os.environ, "PYTHONPATH": str(code.resolve())}
    for clip in clips:
        source = _source(clip, work)
        printed = subprocess.run([sys.executable, "-c", _FILTERS_ONLY, str(source)], env=env, cwd=code,
                                 capture_output=True, text=True, check=True).stdout
        args = printed.split()
        graph = args[args.index("-filter_complex") + 1]
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-threads", "1", "-filter_threads", "1",
                   "-i", str(source), "-filter_complex", graph, "-map", args[args.index("-map") + 1], "-f", "null", "-"]
        best = math.inf
        for _ in range(repeat):
            process = subprocess.Popen(command)
            _, status, usage = os.wait4(process.pid, 0)
            if status != 0:
                raise SystemExit(f"{clip}: ffmpeg failed ({status})")
            best = min(best, usage.ru_utime + usage.ru_stime)
        print(f"{clip}: filters only, CPU {best:.2f} s", flush=True)


def _psnr(before: Path, after: Path) -> float:
    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "info", "-i", str(after), "-i", str(before),
                             "-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"], capture_output=True, text=True, check=True)
    return float(re.findall(r"average:([0-9.]+|inf)", result.stderr)[-1])


def compare(before: Path, after: Path) -> None:
    cpu_before = json.loads((before / "timings.json").read_text())
    cpu_after = json.loads((after / "timings.json").read_text())
    print("| clip, preset | PSNR after vs before (dB) | CPU before (s) | CPU after (s) | after / before |")
    print("|---|---|---|---|---|")
    for name, timing in cpu_before.items():
        (old,) = (before / name).glob("**/*.mp4")
        (new,) = (after / name).glob("**/*.mp4")
        ratio = cpu_after[name]["cpu_s"] / timing["cpu_s"]
        print(f"| {name} | {_psnr(old, new):.1f} | {timing['cpu_s']:.1f} | {cpu_after[name]['cpu_s']:.1f} | {ratio:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render_command = commands.add_parser("render")
    render_command.add_argument("--code", type=Path, required=True, help="the postprod checkout to run")
    render_command.add_argument("--out", type=Path, required=True)
    render_command.add_argument("--clips", nargs="+", default=CLIPS, help="of: " + ", ".join(CLIPS))
    filters_command = commands.add_parser("filters")
    filters_command.add_argument("--code", type=Path, required=True, help="the postprod checkout to run")
    filters_command.add_argument("--clips", nargs="+", default=CLIPS, help="of: " + ", ".join(CLIPS))
    filters_command.add_argument("--repeat", type=int, default=3)
    compare_command = commands.add_parser("compare")
    compare_command.add_argument("before", type=Path)
    compare_command.add_argument("after", type=Path)
    arguments = parser.parse_args()
    if arguments.command == "render":
        render(arguments.code, arguments.out, tuple(arguments.clips))
    elif arguments.command == "filters":
        filters_only(arguments.code, tuple(arguments.clips), arguments.repeat)
    else:
        compare(arguments.before, arguments.after)


if __name__ == "__main__":
    main()
