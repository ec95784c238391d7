"""The demo: three generator-shaped shots, synthesised here, and a job that finishes them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import yaml

from pipeline.media.synth import SHAPES, synthesize

DEMO_SHOTS = (
    # (shape, file name, in, out): a Sora 2 wide with 96 kHz sound, a silent Kling close-up at 30 fps,
    # a Sora 2 Pro 1792x1024 shot with sound.
    ("sora2-1280x720-24", "rooftop.mp4", None, None),
    ("kling-1920x1080-30", "skater.mp4", "12f", 3.5),
    ("sora2pro-1792x1024-24", "sunset.mp4", None, "00:00:03:12"),
)
DEMO_SHOT_SECONDS = Fraction(4)
DEMO_DELIVERABLES = ("broadcast-prores-hq-1080p25", "web-h264-1080p", "social-9x16")


def write_demo_job(folder: Path, console=None) -> Path:
    """Synthesise the demo clips into ``folder`` (once) and write ``demo-job.yaml`` beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    for shape_name, file_name, in_point, out_point in DEMO_SHOTS:
        clip = folder / file_name
        if not clip.exists():
            if console is not None:
                console.print(f"synthesising {shape_name} clip {clip}")
            synthesize(SHAPES[shape_name], clip, DEMO_SHOT_SECONDS)
        shot = {"source": file_name}
        if in_point is not None:
            shot["in"] = in_point
        if out_point is not None:
            shot["out"] = out_point
        shots.append(shot)
    job = {
        "version": 1,
        "name": "demo-spot",
        "shots": shots,
        "deliverables": [{"preset": preset} for preset in DEMO_DELIVERABLES],
    }
    job_file = folder / "demo-job.yaml"
    job_file.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
    return job_file
