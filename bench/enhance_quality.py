"""Benchmark enhancement quality against ground truth: frame interpolation and upscaling.

Interpolation: synthetic 48 fps scenes with real motion (a pan, a zoom, an object crossing a panning
background; :mod:`pipeline.media.motion_synth`) are rendered, every other frame dropped (24 fps, lossless
H.264), and the dropped frames rebuilt at 48 fps by each mode: ``duplicate`` (ffmpeg ``fps``),
``blend`` (``framerate``), ``mci`` (``minterpolate`` with the same options postprod uses) and
``flow`` (postprod's streamed optical-flow interpolator, through the same intermediate path a job
uses). Luma PSNR and SSIM of the rebuilt frames against the true ones; speed as new frames per CPU
second (CPU time of this process and its ffmpeg children, steadier than wall time on a shared machine)
and per wall second.

Goals: flow >= blend + 8 dB, flow >= mci in PSNR, flow >= 2x mci's speed.

Upscale: 1080p frames downscaled to 720p (area), scaled back to 1080p by bicubic, lanczos (the
default), spline36 and lanczos with sharpening; luma PSNR and SSIM against the 1080p originals.
Goal: the default beats bicubic in both.

Run from the repository root::

    python bench/enhance_quality.py --size 1280x720 --seconds 1
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from machine import print_machine
from pipeline.plan.enhance import LANCZOS_FLAGS
from pipeline.prestage.enhance_stage import StageKey, make_intermediate
from pipeline.media.runner import run_ffmpeg
from pipeline.media.motion_synth import SCENES, scene_frames, write_clip
from pipeline.media.probe import probe

MCI = "minterpolate=fps=48:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1:scd=fdiff"
NATIVE_MODES = {"duplicate": "fps=48", "blend": "framerate=fps=48", "mci": MCI}
UPSCALERS = {
    "bicubic": "scale=1920:1080:flags=bicubic",
    "lanczos (default)": f"scale=1920:1080:flags={LANCZOS_FLAGS}",
    "spline36": "zscale=w=1920:h=1080:filter=spline36",
    "lanczos + sharpen 0.3": f"scale=1920:1080:flags={LANCZOS_FLAGS},unsharp=luma_msize_x=5:luma_msize_y=5:luma_amount=0.3",
    "lanczos + sharpen 0.6": f"scale=1920:1080:flags={LANCZOS_FLAGS},unsharp=luma_msize_x=5:luma_msize_y=5:luma_amount=0.6",
}


def lumas(path: Path) -> list[np.ndarray]:
    """Every frame's 8-bit luma plane."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else float(10 * np.log10(255**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03) of two luma planes."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(index.mean())


def cpu_seconds() -> float:
    """CPU seconds of this process and its waited-for children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(action) -> tuple[float, float]:
    cpu, wall = cpu_seconds(), time.monotonic()
    action()
    return cpu_seconds() - cpu, time.monotonic() - wall


def interpolation(work: Path, width: int, height: int, seconds: int) -> dict[str, dict[str, float]]:
    scores: dict[str, dict[str, list[float]]] = {}
    count = 48 * seconds + 1
    for scene in SCENES:
        truth_frames = list(scene_frames(scene, width, height, Fraction(48), count))
        truth_path = write_clip(truth_frames, work / f"{scene}-48.mp4", Fraction(48))
        source = write_clip(truth_frames[::2], work / f"{scene}-24.mp4", Fraction(24))
        truth = lumas(truth_path)
        outputs = {}
        for mode, graph in NATIVE_MODES.items():
            out = work / f"{scene}-{mode}.mkv"
            outputs[mode] = (out, *timed(lambda: run_ffmpeg(
                ["-threads", "2", "-i", str(source), "-vf", graph, "-c:v", "ffv1", str(out)])))
        out = work / f"{scene}-flow.mov"
        key = StageKey(source, Fraction(48), False, None)
        outputs["flow"] = (out, *timed(lambda: make_intermediate(key, probe(source), out)))
        new_frames = range(1, count - 1, 2)
        for mode, (path, cpu, wall) in outputs.items():
            rebuilt = lumas(path)
            entry = scores.setdefault(mode, {"psnr": [], "ssim": [], "cpu": [], "wall": [], "frames": []})
            usable = [k for k in new_frames if k < len(rebuilt)]
            entry["psnr"] += [psnr(rebuilt[k], truth[k]) for k in usable]
            entry["ssim"] += [ssim(rebuilt[k], truth[k]) for k in usable]
            entry["cpu"].append(cpu)
            entry["wall"].append(wall)
            entry["frames"].append(len(new_frames))
    return {mode: {"psnr": np.mean(v["psnr"]), "ssim": np.mean(v["ssim"]),
                   "fps_cpu": sum(v["frames"]) / sum(v["cpu"]), "fps_wall": sum(v["frames"]) / sum(v["wall"])}
            for mode, v in scores.items()}


def upscaling(work: Path, frames: int) -> dict[str, dict[str, float]]:
    truth_path = write_clip(scene_frames("object", 1920, 1080, Fraction(24), frames), work / "truth-1080.mp4",
                            Fraction(24))
    small = work / "down-720.mkv"
    run_ffmpeg(["-i", str(truth_path), "-vf", "scale=1280:720:flags=area", "-c:v", "ffv1", str(small)])
    truth = lumas(truth_path)
    results = {}
    for name, graph in UPSCALERS.items():
        out = work / f"up-{len(results)}.mkv"
        cpu, wall = timed(lambda: run_ffmpeg(["-threads", "2", "-i", str(small), "-vf", f"{graph},format=yuv420p",
                                              "-c:v", "ffv1", str(out)]))
        rebuilt = lumas(out)
        results[name] = {"psnr": np.mean([psnr(r, t) for r, t in zip(rebuilt, truth, strict=True)]),
                         "ssim": np.mean([ssim(r, t) for r, t in zip(rebuilt, truth, strict=True)]),
                         "fps_cpu": frames / cpu, "fps_wall": frames / wall}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720", help="interpolation raster, WxH")
    parser.add_argument("--seconds", type=int, default=1, help="seconds of each 48 fps scene")
    parser.add_argument("--upscale-frames", type=int, default=12)
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    console = Console(width=120)
    print_machine(console)
    cv2.setNumThreads(2)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        table = Table(title=f"Interpolation 24 -> 48 fps, {width}x{height}, {len(SCENES)} scenes "
                            f"({', '.join(SCENES)}), {args.seconds} s each")
        for column in ("mode", "PSNR dB", "SSIM", "new frames / CPU s", "new frames / wall s"):
            table.add_column(column, justify="right")
        rows = interpolation(work, width, height, args.seconds)
        for mode, row in rows.items():
            table.add_row(mode, f"{row['psnr']:.2f}", f"{row['ssim']:.4f}", f"{row['fps_cpu']:.2f}",
                          f"{row['fps_wall']:.2f}")
        console.print(table)
        flow, blend, mci = rows["flow"], rows["blend"], rows["mci"]
        console.print(f"flow - blend: {flow['psnr'] - blend['psnr']:+.2f} dB (goal >= +8); flow - mci: "
                      f"{flow['psnr'] - mci['psnr']:+.2f} dB (goal >= 0); flow speed / mci speed (CPU): "
                      f"{flow['fps_cpu'] / mci['fps_cpu']:.2f}x (goal >= 2)")
        table = Table(title=f"Upscale 1080p -> 720p (area) -> 1080p, {args.upscale_frames} frames")
        for column in ("scaler", "PSNR dB", "SSIM", "frames / CPU s", "frames / wall s"):
            table.add_column(column, justify="right")
        rows = upscaling(work, args.upscale_frames)
        for name, row in rows.items():
            table.add_row(name, f"{row['psnr']:.2f}", f"{row['ssim']:.4f}", f"{row['fps_cpu']:.1f}",
                          f"{row['fps_wall']:.1f}")
        console.print(table)
    console.print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
