"""``--no-prefect``: the same job steps in the calling process, with no Prefect server or flow run."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

from pipeline.media.probe import probe


def test_finish_without_prefect_verifies_the_deliverable_and_never_loads_prefect(make_colour_clip, tmp_path):
    clip = make_colour_clip("#406080", seconds=Fraction(1), size="160x90", rate=24)
    script = (
        "import sys; from postprod.cli import main; "
        f"code = main(['finish', {str(clip)!r}, '--preset', 'review-540p', '--out', {str(tmp_path)!r}, "
        "'--no-prefect', '--json']); "
        "print('PREFECT LOADED' if 'prefect' in sys.modules else 'no prefect', file=sys.stderr); sys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("no prefect")
    manifest = json.loads(done.stdout)
    output = manifest["outputs"][0]
    info = probe(tmp_path / output["path"].rsplit("/", 1)[-1])
    assert (info.video.codec, info.video.display_width, info.video.display_height) == ("h264", 960, 540)
    assert info.video.frame_count == 24 and info.audio.sample_rate == 48000
    assert output["qc"]["status"] in ("pass", "warn")
