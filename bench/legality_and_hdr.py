"""Measurements behind docs/broadcast-legality.md and docs/hdr.md.

Legaliser: a testsrc2 pattern with luma pushed 25 % of the nominal range darker (super-blacks, colours
out of gamut) and a dip to white / to black between two grey clips, finished into
``broadcast-prores-hq-1080p25`` at 320x180 with the legaliser on and off; the dips also through plain
``xfade`` (what postprod rendered before). Reported per picture: 10-bit luma min/max, the share of
pixels with luma outside R 103's -1 %..103 % and with R'G'B' outside -5 %..105 % (per pixel, chroma
upsampled), the QC levels verdict and the share the manifest says the legaliser touched.

Tone mapping: the PQ and HLG devclips through each ``tonemap`` operator (and a matrix-only conversion)
at 480x270: luma percentiles, mean saturation and the share of clipped pixels.

Run from the repository root::

    python bench/legality_and_hdr.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.jobs.finish import finish  # noqa: E402
from pipeline.model.job import parse_job  # noqa: E402
from pipeline.media.runner import run_ffmpeg  # noqa: E402

DEVCLIPS = Path("../shared/devclips")
SMALL = {"width": 320, "height": 180}


def ycbcr(path: Path) -> np.ndarray:
    """Frames as (frames, 3, h, w) float 8-bit levels, chroma upsampled."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            deep = frame.format.components[0].bits > 8
            array = frame.reformat(format="yuv444p16le" if deep else "yuv444p").to_ndarray()
            if array.shape[0] != 3:
                array = np.moveaxis(array, -1, 0)
            frames.append(array.astype(np.float64) / (256 if deep else 1))
    return np.stack(frames)


def r103(frames: np.ndarray) -> dict[str, float]:
    luma, blue, red = (frames[:, 0] - 16) / 219, (frames[:, 1] - 128) / 224, (frames[:, 2] - 128) / 224
    kr, kb = 0.2126, 0.0722
    r = luma + 2 * (1 - kr) * red
    b = luma + 2 * (1 - kb) * blue
    g = luma - (2 * kb * (1 - kb) * blue + 2 * kr * (1 - kr) * red) / (1 - kr - kb)
    low, high = np.minimum(np.minimum(r, g), b), np.maximum(np.maximum(r, g), b)
    return {
        "luma10_min": float(frames[:, 0].min() * 4), "luma10_max": float(frames[:, 0].max() * 4),
        "luma_out_pct": 100 * float(((luma < -0.01) | (luma > 1.03)).mean()),
        "gamut_out_pct": 100 * float(((low < -0.05) | (high > 1.05)).mean()),
    }


def finished(work: Path, name: str, shots: list[dict], legalise: bool) -> tuple[Path, dict]:
    job = parse_job({"version": 1, "name": name, "shots": shots, "qc": {"policy": "warn"},
                     "deliverables": [{"preset": "broadcast-prores-hq-1080p25",
                                       "overrides": {"video": {**SMALL, "legalise": legalise}}}]}, work)
    entry = json.loads(finish(job, work / name).read_text())["outputs"][0]
    report = json.loads(Path(entry["qc"]["report"]).read_text())
    levels = next(check for check in report["checks"] if check["name"] == "levels")
    return Path(entry["path"]), {"qc_levels": levels["status"], "qc_worst_share": levels["value"],
                                 "touched": (entry["legalise"] or {}).get("touched_share")}


def legality(work: Path) -> None:
    pattern = work / "super_black.mkv"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=2,format=yuv444p,"
                "geq=lum='clip(lum(X,Y)-55,1,254)':cb='cb(X,Y)':cr='cr(X,Y)',"
                "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709",
                "-f", "lavfi", "-i", "sine=f=440:r=48000:d=2", "-c:v", "ffv1", "-c:a", "pcm_s16le", str(pattern)])
    greys = []
    for number in range(2):
        grey = work / f"grey{number}.mkv"
        run_ffmpeg(["-f", "lavfi", "-i", "color=c=gray:s=320x180:r=25:d=1,format=yuv444p",
                    "-f", "lavfi", "-i", "sine=f=440:r=48000:d=1", "-c:v", "ffv1", "-c:a", "pcm_s16le", str(grey)])
        greys.append(grey)
    rows = [("super-black source", r103(ycbcr(pattern)), {})]
    for legalise in (False, True):
        path, qc = finished(work, f"pattern_{legalise}", [{"source": str(pattern)}], legalise)
        rows.append((f"super-black, legalise {legalise}", r103(ycbcr(path)), qc))
    for transition in ("fadewhite", "fadeblack"):
        raw = work / f"xfade_{transition}.mkv"
        run_ffmpeg(["-i", str(greys[0]), "-i", str(greys[1]), "-filter_complex",
                    f"[0:v]format=yuv444p10le[a];[1:v]format=yuv444p10le[b];"
                    f"[a][b]xfade=transition={transition}:duration=0.4:offset=0.6,format=yuv422p10le",
                    "-c:v", "ffv1", str(raw)])
        rows.append((f"plain xfade {transition}", r103(ycbcr(raw)), {}))
        dip = "dip_to_white" if transition == "fadewhite" else "dip_to_black"
        path, qc = finished(work, dip, [{"source": str(greys[0]), "transition": {"type": dip, "frames": 10}},
                                        {"source": str(greys[1])}], False)
        rows.append((f"{dip}, legalise False", r103(ycbcr(path)), qc))
    print("| picture | 10-bit luma min..max | luma outside % | R'G'B' outside % | QC levels (worst frame share) | touched |")
    print("|---|---|---|---|---|---|")
    for name, levels, qc in rows:
        verdict = f"{qc['qc_levels']} ({qc['qc_worst_share']:.3f})" if qc else "-"
        touched = f"{qc['touched']:.1%}" if qc.get("touched") is not None else "-"
        print(f"| {name} | {levels['luma10_min']:.0f}..{levels['luma10_max']:.0f} | {levels['luma_out_pct']:.2f} "
              f"| {levels['gamut_out_pct']:.2f} | {verdict} | {touched} |")


def tone_mapping(work: Path) -> None:
    print("\n| clip | conversion | luma p1 | p50 | p99 | clipped % | mean saturation |")
    print("|---|---|---|---|---|---|---|")
    for clip, transfer in (("hdr_hdr10_1080p_vfr.mp4", "smpte2084"), ("hdr_hlg10_color_test_audio_first.mp4", "arib-std-b67")):
        chains = {"matrix only": "scale=480:270:in_color_matrix=bt2020:out_color_matrix=bt709"}
        for operator in ("hable", "mobius", "reinhard", "clip"):
            chains[operator] = (
                f"zscale=w=480:h=270:transferin={transfer}:primariesin=bt2020:matrixin=bt2020nc:transfer=linear:npl=100,"
                f"format=gbrpf32le,zscale=primaries=bt709,tonemap=tonemap={operator}:desat=0,"
                "zscale=transfer=bt709:matrix=bt709:range=limited"
            )
        for name, chain in chains.items():
            out = work / f"{clip}.{name.replace(' ', '_')}.mkv"
            run_ffmpeg(["-i", str(DEVCLIPS / clip), "-map", "0:v:0", "-vf", f"{chain},format=yuv444p10le",
                        "-c:v", "ffv1", "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
                        str(out)])
            with av.open(str(out)) as container:
                rgb = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(float)
            luma = rgb @ np.array([0.2126, 0.7152, 0.0722])
            high, low = rgb.max(axis=-1), rgb.min(axis=-1)
            saturation = np.where(high > 0, (high - low) / np.maximum(high, 1), 0).mean()
            print(f"| {clip} | {name} | {np.percentile(luma, 1):.1f} | {np.percentile(luma, 50):.1f} | "
                  f"{np.percentile(luma, 99):.1f} | {100 * (high >= 254).mean():.1f} | {saturation:.3f} |")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        legality(Path(folder))
        if DEVCLIPS.is_dir():
            tone_mapping(Path(folder))
