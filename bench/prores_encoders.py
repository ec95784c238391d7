"""Benchmark ffmpeg's two ProRes encoders for postprod's "ProRes 422 HQ 1080p25" broadcast master.

postprod upscales text-to-video clips (Sora 2 delivers 1280x720 H.264) to 1920x1080 and masters them
as ProRes 422 HQ, 10-bit 4:2:2 in .mov. ffmpeg ships two encoders that can write that: ``prores_ks``
and ``prores_aw``. This script decides which one should be the default by running the same
hand-written command through each (only the encoder name differs) and measuring:

* speed: median wall-clock seconds over ``--repeat`` runs, the encoders interleaved so that machine
  noise (thermal state, page cache, other load) falls on both alike;
* quality: PSNR (average and worst frame) and SSIM of each master against a lossless reference, the
  source put through the identical lanczos scale chain, so only the ProRes encoding is measured;
* size: the master's bitrate in Mb/s;
* conformance: the profile and pixel format PyAV reads back from each master ("HQ", yuv422p10le).

The source is synthesised like a Sora 2 clip: 1280x720, 24 fps, H.264 yuv420p (libx264 crf 16),
with moving detail (testsrc2 blended with a zooming Mandelbrot, plus temporal grain) so that the
encoders have real texture to spend bits on.

Run from the repository root::

    PYTHONPATH=. python bench/prores_encoders.py --seconds 12 --repeat 3
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import av
from rich.console import Console
from rich.table import Table

from pipeline.media.runner import ffmpeg_executable, ffmpeg_version

ENCODERS = ("prores_ks", "prores_aw")
"""The first is the baseline that speed ratios are given against."""

SOURCE_SIZE = "1280x720"
SOURCE_FPS = 24
MASTER_PIX_FMT = "yuv422p10le"
PRORES_HQ_PROFILE = "3"
SCALE_CHAIN = f"scale=1920:1080:flags=lanczos,format={MASTER_PIX_FMT}"
"""Shared by the encode and the quality reference, so both see bit-identical upscaled frames."""
CONSOLE_WIDTH = 132
"""Wide enough for the table unwrapped, also when stdout is a pipe or a log file (rich assumes 80)."""


@dataclass(frozen=True)
class Quality:
    """How close a master is to the lossless reference."""

    psnr_avg_db: float
    psnr_min_db: float
    """PSNR of the worst frame."""
    ssim_all: float


@dataclass(frozen=True)
class Probe:
    """What PyAV reads back from a master."""

    profile: str
    pix_fmt: str
    duration_s: float


@dataclass(frozen=True)
class Result:
    """Everything measured for one encoder; one row of the table."""

    encoder: str
    median_wall_s: float
    bitrate_mbps: float
    quality: Quality
    probe: Probe


def ffmpeg(args: list[str], cwd: Path | None = None) -> str:
    """Run ffmpeg with an argument list, fail loudly, and return its stderr (where filter stats go)."""
    argv = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-nostats", "-y", *args]
    completed = subprocess.run(
        argv, capture_output=True, text=True, errors="replace", check=False, cwd=cwd
    )
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.splitlines()[-20:])
        raise RuntimeError(f"ffmpeg failed ({completed.returncode}): {argv}\n{tail}")
    return completed.stderr


def synthesise_source(path: Path, seconds: float) -> None:
    """Write a Sora-2-like clip: 720p24 H.264 yuv420p with moving, detailed, grainy content."""
    lavfi = f"s={SOURCE_SIZE}:r={SOURCE_FPS}"
    ffmpeg([
        "-f", "lavfi", "-i", f"testsrc2={lavfi}",
        "-f", "lavfi", "-i", f"mandelbrot={lavfi}:maxiter=256",
        "-filter_complex",
        "[0]format=yuv420p[pattern];[1]format=yuv420p[fractal];"
        "[pattern][fractal]blend=all_mode=average,noise=alls=10:allf=t+u[v]",
        "-map", "[v]", "-t", str(seconds),
        "-c:v", "libx264", "-crf", "16", "-pix_fmt", "yuv420p",
        str(path),
    ])  # fmt: skip


def master_args(source: Path, encoder: str, output: Path) -> list[str]:
    """The hand-written master command; identical for every encoder but the encoder's name."""
    return [
        "-i", str(source),
        "-vf", SCALE_CHAIN,
        "-c:v", encoder, "-profile:v", PRORES_HQ_PROFILE, "-pix_fmt", MASTER_PIX_FMT,
        "-an", str(output),
    ]  # fmt: skip


def encode_timed(source: Path, encoder: str, output: Path) -> float:
    """Encode one master and return the wall-clock seconds it took."""
    started = time.perf_counter()
    ffmpeg(master_args(source, encoder, output))
    return time.perf_counter() - started


def time_encoders(source: Path, workdir: Path, repeat: int) -> dict[str, float]:
    """Median wall seconds per encoder, rounds interleaved and each round's order rotated."""
    timings: dict[str, list[float]] = {encoder: [] for encoder in ENCODERS}
    for round_index in range(repeat):
        shift = round_index % len(ENCODERS)
        for encoder in ENCODERS[shift:] + ENCODERS[:shift]:
            seconds = encode_timed(source, encoder, workdir / f"{encoder}.mov")
            timings[encoder].append(seconds)
            print(f"  round {round_index + 1}/{repeat}  {encoder:<10} {seconds:6.2f} s")
    return {encoder: statistics.median(runs) for encoder, runs in timings.items()}


def measure_quality(source: Path, master: Path, psnr_log: Path) -> Quality:
    """PSNR and SSIM of ``master`` against the source scaled by :data:`SCALE_CHAIN`, in one ffmpeg run.

    ffmpeg runs in the log's folder so the psnr filter's ``stats_file`` (per-frame PSNR, for the
    worst frame) can be named without filter-graph escaping.
    """
    graph = (
        f"[0:v]{SCALE_CHAIN},split[ref_psnr][ref_ssim];"
        f"[1:v]format={MASTER_PIX_FMT},split[enc_psnr][enc_ssim];"
        f"[enc_psnr][ref_psnr]psnr=stats_file={psnr_log.name}[psnr_out];"
        "[enc_ssim][ref_ssim]ssim[ssim_out]"
    )
    stderr = ffmpeg([
        "-i", str(source), "-i", str(master), "-filter_complex", graph,
        "-map", "[psnr_out]", "-f", "null", "-",
        "-map", "[ssim_out]", "-f", "null", "-",
    ], cwd=psnr_log.parent)  # fmt: skip
    psnr_avg = re.search(r"PSNR .*? average:(\S+)", stderr)
    ssim_all = re.search(r"SSIM .*? All:(\S+)", stderr)
    if psnr_avg is None or ssim_all is None:
        raise RuntimeError(f"no PSNR/SSIM summary in ffmpeg's stderr:\n{stderr[-2000:]}")
    per_frame = re.findall(r"psnr_avg:(\S+)", psnr_log.read_text())
    return Quality(float(psnr_avg[1]), min(map(float, per_frame)), float(ssim_all[1]))


def probe(master: Path) -> Probe:
    """Profile, pixel format and duration of the master's video stream, read with PyAV."""
    with av.open(str(master)) as container:
        stream = container.streams.video[0]
        duration_s = float(stream.duration * stream.time_base)
        return Probe(stream.codec_context.profile, stream.codec_context.pix_fmt, duration_s)


def evaluate(source: Path, workdir: Path, medians: dict[str, float]) -> list[Result]:
    """Quality, bitrate and probe of each encoder's last master."""
    results = []
    for encoder in ENCODERS:
        master = workdir / f"{encoder}.mov"
        facts = probe(master)
        quality = measure_quality(source, master, workdir / f"{encoder}.psnr.log")
        bitrate_mbps = master.stat().st_size * 8 / facts.duration_s / 1e6
        results.append(Result(encoder, medians[encoder], bitrate_mbps, quality, facts))
    return results


def render_table(results: list[Result], seconds: float, repeat: int) -> Table:
    baseline_s = results[0].median_wall_s
    table = Table(
        title=f"ProRes 422 HQ 1080p masters of a {seconds:g} s 720p24 clip, median of {repeat}"
    )
    table.add_column("encoder")
    for column in ("median wall s", f"speed vs {ENCODERS[0]}", "bitrate Mb/s",
                   "PSNR avg dB", "PSNR min dB", "SSIM All"):  # fmt: skip
        table.add_column(column, justify="right")
    table.add_column("probed profile, pix_fmt")
    for r in results:
        table.add_row(
            r.encoder,
            f"{r.median_wall_s:.2f}",
            f"{baseline_s / r.median_wall_s:.2f}x",
            f"{r.bitrate_mbps:.1f}",
            f"{r.quality.psnr_avg_db:.2f}",
            f"{r.quality.psnr_min_db:.2f}",
            f"{r.quality.ssim_all:.5f}",
            f"{r.probe.profile}, {r.probe.pix_fmt}",
        )
    return table


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="source clip length (default 12)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per encoder (default 3)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    console = Console(width=CONSOLE_WIDTH)
    console.print(f"ffmpeg {ffmpeg_version()} at {ffmpeg_executable()}")
    with tempfile.TemporaryDirectory(prefix="prores-bench-") as tmp:
        workdir = Path(tmp)
        source = workdir / "source.mp4"
        console.print(f"synthesising {args.seconds:g} s {SOURCE_SIZE} {SOURCE_FPS} fps source ...")
        synthesise_source(source, args.seconds)
        console.print(f"encoding with {', '.join(ENCODERS)}, {args.repeat} interleaved rounds ...")
        medians = time_encoders(source, workdir, args.repeat)
        console.print("measuring PSNR/SSIM against the lossless upscaled reference ...")
        results = evaluate(source, workdir, medians)
    console.print(render_table(results, args.seconds, args.repeat))


if __name__ == "__main__":
    main()
