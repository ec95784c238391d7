"""What content credentials cost: signing and validating a 1080p deliverable, beside its encode.

A Sora 2 shaped clip (1280x720 24 fps, synthesised by ``pipeline.media.synth``) is finished into
``web-h264-1080p`` (MP4) and ``broadcast-prores-hq-1080p25`` (MOV) by the planner's own ffmpeg
command; each output is then signed the way a render signs it (the C2PA manifest embedded in a
rewritten copy, then read back and validated) and, separately, into a sidecar. The encode is the
reference: the table gives each signing's wall time and its ratio to that encode. The certificate
chain is made for the run (``tests/certificates.py``).

Run from the repository root::

    python bench/provenance.py --seconds 12 --repeat 3
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from rich.console import Console
from rich.table import Table

from machine import print_machine
from pipeline.media.content_credentials import sign, signing_config
from pipeline.jobs.analyses import probe_sources
from pipeline.model.job import parse_job
from pipeline.media.runner import run_ffmpeg
from pipeline.plan.facts import JobFacts
from pipeline.plan.planner import plan_job
from pipeline.model.presets import load_presets
from pipeline.media.synth import SHAPES, synthesize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.certificates import make_chain  # noqa: E402  (test helper, from the repository root)

SHAPE = "sora2-1280x720-24"
PRESETS = ("web-h264-1080p", "broadcast-prores-hq-1080p25")


def _timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    console = Console(width=120)
    print_machine(console)
    table = Table(title=f"{options.seconds} s {SHAPE}, median of {options.repeat}")
    for column in ("deliverable", "size MiB", "encode s", "embed + validate s", "ratio", "sidecar s", "ratio"):
        table.add_column(column)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        chain = make_chain(folder / "chain")
        config = signing_config({"POSTPROD_C2PA_CERT": str(chain.chain), "POSTPROD_C2PA_KEY": str(chain.key),
                                 "POSTPROD_C2PA_TRUST": str(chain.root)})
        clip = synthesize(SHAPES[SHAPE], folder / "clip.mp4", Fraction(options.seconds))
        for preset in PRESETS:
            job = parse_job({"version": 1, "name": "bench", "shots": [{"source": str(clip)}],
                             "deliverables": [{"preset": preset}]}, folder)
            render_plan = plan_job(job, JobFacts(probe_sources(job)), load_presets(), folder).renders[0]
            output = render_plan.outputs[0]
            encode = [_timed(lambda: run_ffmpeg(list(render_plan.args))) for _ in range(options.repeat)]
            encoded = output.partial_path.with_name(f"encoded{output.path.suffix}")
            shutil.move(output.partial_path, encoded)
            embedded, sidecar = [], []
            for _ in range(options.repeat):
                for mode, samples in (("embed", embedded), ("sidecar", sidecar)):
                    shutil.copyfile(encoded, output.partial_path)
                    plan = replace(output.provenance, credentials=mode)
                    samples.append(_timed(lambda: sign(output.partial_path, output.path, plan, config)))
                    for leftover in folder.glob("*.c2pa*"):
                        leftover.unlink()
                    for leftover in folder.glob(".*.c2pa.*.partial"):
                        leftover.unlink()
            encode_s = statistics.median(encode)
            embed_s, sidecar_s = statistics.median(embedded), statistics.median(sidecar)
            table.add_row(preset, f"{encoded.stat().st_size / 2**20:.1f}", f"{encode_s:.2f}", f"{embed_s:.3f}",
                          f"{embed_s / encode_s:.3f}", f"{sidecar_s:.3f}", f"{sidecar_s / encode_s:.3f}")
    console.print(table)


if __name__ == "__main__":
    main()
