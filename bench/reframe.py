"""Reframing cost: analysis speed against real time and against decoding alone, and the render cost
of a smart (per-frame expression) crop against a centre crop through the same pipeline and a
hand-written ffmpeg crop, with and without encoding (the encoder pays for a panning picture; the
crop expression itself is one segment's arithmetic per frame).

A 10 s 1280x720 24 fps clip: a textured square moving across a noisy background. CPU times (user +
system of this process and its children) are printed beside wall times: the machine is shared.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import av  # noqa: E402

from pipeline.media.runner import run_ffmpeg  # noqa: E402
from pipeline.media.probe import probe  # noqa: E402
from pipeline.analysis.reframe import analyse, camera_path  # noqa: E402

SECONDS, WIDTH, HEIGHT, RATE = 10, 1280, 720, 24
ROUNDS = 2
"""Each render runs this many times, interleaved with the others; the lowest CPU time counts."""


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(work):
    wall, cpu = time.perf_counter(), _cpu()
    result = work()
    return result, time.perf_counter() - wall, _cpu() - cpu


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-reframe-"))
    clip = folder / "clip.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", f"color=c=0x405060:s={WIDTH}x{HEIGHT}:r={RATE}:d={SECONDS},noise=alls=4:allf=t",
                "-f", "lavfi", "-i", f"testsrc2=s=128x128:r={RATE}:d={SECONDS}",
                "-filter_complex", f"[0][1]overlay=x='80+1000*(0.5-0.5*cos(PI*t/{SECONDS}))':y=296:shortest=1",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", str(clip)])
    media = probe(clip)

    def decode():
        with av.open(str(clip)) as container:
            container.streams.video[0].thread_type = "AUTO"
            for _ in container.decode(video=0):
                pass

    _, decode_wall, decode_cpu = timed(decode)
    analysis, analyse_wall, analyse_cpu = timed(lambda: analyse(clip, media))
    path, path_wall, _ = timed(lambda: camera_path(analysis, 9 / 16))
    print(f"{'step':40s} {'wall s':>8s} {'cpu s':>8s} {'x realtime':>11s}")
    print(f"{'decode only (PyAV, threads)':40s} {decode_wall:8.2f} {decode_cpu:8.2f} {SECONDS / decode_wall:11.1f}")
    print(f"{'analyse (cuts, faces, saliency, bars)':40s} {analyse_wall:8.2f} {analyse_cpu:8.2f} {SECONDS / analyse_wall:11.1f}")
    print(f"{'camera path 9:16':40s} {path_wall:8.3f}")

    from pipeline.jobs.sequence import plan_with_analysis
    from pipeline.plan.facts import JobFacts
    from pipeline.model.job import parse_job
    from pipeline.model.presets import load_presets

    renders = {}
    for fit in ("center", "smart"):
        job = parse_job({"version": 1, "name": f"b-{fit}", "shots": [{"source": str(clip)}],
                         "deliverables": [{"preset": "tiktok-9x16", "overrides": {"video": {"fit": fit}}}]}, folder)
        plan = plan_with_analysis(job, JobFacts({clip: media}, reframe={clip: analysis}), load_presets(),
                                  folder / "out", measure_loudness=False)
        args = list(plan.renders[0].args)
        renders[fit] = [*args[:-1], str(folder / f"{fit}.mp4")]
        # The same graph without encoding or writing: the filters' own cost.
        maps = args.index("-map")  # inputs, graph, then the picture and sound -map pairs
        renders[f"{fit}, filters only (no encode)"] = [*args[: maps + 4], "-f", "null", "-"]
        if fit == "smart":
            graph = args[args.index("-filter_complex") + 1]
            crop = next(part for part in graph.split(";") if "crop=" in part)
            print(f"smart crop filter: {len(crop)} characters, {crop.count('if(') + 1} straight segments")
    # Hand-written: scale to cover 1920 high, centre crop 1080 wide, same encoder settings, no sound.
    renders["hand-written ffmpeg crop"] = [
        "-i", str(clip), "-vf", "scale=3414:1920:flags=lanczos,crop=1080:1920:1166:0,format=yuv420p",
        "-c:v", "libx264", "-preset", "medium", "-crf", "20", "-profile:v", "high", "-g", "48",
        "-an", str(folder / "hand.mp4")]
    # Hand-written panning crop: x follows the subject's known path in closed form (centre at
    # 144 + 1000 * ease(t) source pixels, scaled by 1920/720), so the encoder sees a pan like smart's.
    pan_x = f"clip((144+1000*(0.5-0.5*cos(PI*t/{SECONDS})))*1920/{HEIGHT}-540\\,0\\,2334)"
    renders["hand-written ffmpeg panning crop"] = [
        "-i", str(clip), "-vf", f"scale=3414:1920:flags=lanczos,crop=1080:1920:{pan_x}:0,format=yuv420p",
        "-c:v", "libx264", "-preset", "medium", "-crf", "20", "-profile:v", "high", "-g", "48",
        "-an", str(folder / "hand-pan.mp4")]
    best: dict[str, tuple[float, float]] = {}
    for _ in range(ROUNDS):  # interleaved, best of ROUNDS: the machine is shared
        for name, args in renders.items():
            _, wall, cpu = timed(lambda a=args: run_ffmpeg(a))
            if name not in best or cpu < best[name][1]:
                best[name] = (wall, cpu)
    title = f"render 1080x1920 H.264 medium, best of {ROUNDS}"
    print(f"\n{title:44s} {'wall s':>8s} {'cpu s':>8s} {'cpu ratio':>10s}")
    for name, (wall, cpu) in best.items():
        base = best["center, filters only (no encode)" if "filters only" in name else "center"][1]
        print(f"{name:44s} {wall:8.2f} {cpu:8.2f} {cpu / base:10.3f}")
    print("cpu ratio: against center (the same pipeline with a fixed crop), filters only against filters only")
    panning = best["hand-written ffmpeg panning crop"][1]
    print(f"smart against the hand-written panning crop: {best['smart'][1] / panning:.3f}; panning's own cost "
          f"(hand-written panning / fixed crop): {panning / best['hand-written ffmpeg crop'][1]:.3f}")


if __name__ == "__main__":
    main()
