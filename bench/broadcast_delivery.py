"""Broadcast delivery on a real clip: every broadcast preset with the default leader and captions,
each output re-probed and measured (nothing is taken from the plan).

The clip is ``ai_infinitetalk_dubbing_a.mp4`` from the development clips (896x448 25 fps, speech).
For each deliverable it prints the wrapper, codec, profile, field order, start timecode, the audio
tracks with their RMS levels, which timecode the first slate frame and the first programme frame
carry (found by looking at the frames), and the caption files read back.

Run from the repository root::

    python bench/broadcast_delivery.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import av
import numpy as np

from pipeline.plan.caption_files import read_ebu_tt_d
from pipeline.model.captions import read_captions
from pipeline.jobs.finish import finish
from pipeline.model.job import parse_job
from pipeline.model.presets import TimecodeSpec
from pipeline.media.probe import probe
from pipeline.timeline.timecode_track import programme_start_frame, timecode_at

CLIP = Path(__file__).resolve().parent.parent.parent / "shared" / "devclips" / "ai_infinitetalk_dubbing_a.mp4"
PRESETS = ["xdcam-hd422-1080i25-mxf", "xdcam-hd422-1080p25-mxf", "dnxhr-hqx-1080p25-mxf",
           "broadcast-prores-hq-1080p25"]
CUES = [{"start": 0.5, "end": 3.0, "text": "A line of dialogue"}, {"start": 3.5, "end": 6.0, "text": "And a second\none"}]


def frame_kind(frame: av.VideoFrame) -> str:
    """``bars``, ``black``, ``slate`` or ``programme`` by measurement of a small RGB copy."""
    rgb = frame.reformat(width=192, height=108, format="rgb24").to_ndarray().astype(np.int16)
    luma = rgb.mean(axis=2)
    if luma.max() < 12:
        return "black"
    if 20 < np.median(luma) < 45 and np.median(rgb[..., 2] - rgb[..., 0]) > 10 and (luma > 150).mean() > 0.001:
        return "slate"
    if np.abs(rgb[5] - rgb[-5]).max() < 8 and luma[54].std() > 40:
        return "bars"
    return "programme"


def track_levels(path: str) -> list[str]:
    """Each audio stream as ``channels x codec, RMS dBFS of each channel`` over the programme part."""
    described = []
    with av.open(path) as container:
        for stream in container.streams.audio:
            chunks = []
            for frame in container.decode(stream):
                chunks.append(frame.to_ndarray().reshape(-1, stream.channels).T.astype(np.float64) / 2**31)
            container.seek(0)
            samples = np.concatenate(chunks, axis=1)[:, 30 * 48000:]
            levels = [10 * math.log10(np.mean(np.square(channel))) if channel.any() else -math.inf for channel in samples]
            described.append(f"{stream.channels}ch {stream.codec_context.name} "
                             + "/".join("silent" if math.isinf(level) else f"{level:.1f}" for level in levels))
    return described


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="broadcast-"))
    job = parse_job({
        "version": 1, "name": "spot", "shots": [{"source": str(CLIP)}],
        "slate": {"clock_number": "ABC/DEFG123/010", "title": "Dubbing test", "agency": "Agency & Co",
                  "advertiser": "Acme {Ltd}", "date": "2026-12-05"},
        "overlays": [{"kind": "captions", "deliverables": [], "cues": CUES}],
        "deliverables": [{"preset": name, "overrides": {"leader": {}}} for name in PRESETS],
    }, out)
    manifest = json.loads(finish(job, out).read_text())
    for output in manifest["outputs"]:
        info = probe(output["path"])
        video = info.video
        start = programme_start_frame(TimecodeSpec(start=info.timecode), video.frame_rate)
        firsts: dict[str, str] = {}
        with av.open(output["path"]) as container:
            for number, frame in enumerate(container.decode(video=0)):
                firsts.setdefault(frame_kind(frame), timecode_at(start + number, video.frame_rate, False))
        print(f"\n{output['preset']}: {Path(output['path']).name}")
        print(f"  wrapper {info.container}, {video.codec} {video.profile} {video.pix_fmt} "
              f"{video.display_width}x{video.display_height} {video.frame_rate} fps, field order {video.field_order}, "
              f"{video.frame_count} frames, timecode {info.timecode}")
        print(f"  audio tracks: {', '.join(track_levels(output['path']))}")
        print(f"  first frame of each kind: {firsts}")
        print(f"  QC {output['qc']['status']}, loudness {output['loudness'] and output['loudness'].get('gain_db')}")
        for entry in output["caption_files"]:
            path = Path(entry["path"])
            cues = (read_ebu_tt_d(path.read_text(encoding="utf-8"), str(path)) if entry["format"] == "ttml"
                    else [(cue.start_s, cue.end_s, cue.text) for cue in read_captions(path)])
            timed = [f"{timecode_at(start + round(s * video.frame_rate), video.frame_rate, False)}-"
                     f"{timecode_at(start + round(e * video.frame_rate), video.frame_rate, False)} {t!r}"
                     for s, e, t in cues]
            print(f"  {entry['format']}: {'; '.join(timed)}")
    print(f"\noutputs in {out}")


if __name__ == "__main__":
    main()
