"""Shared fixtures: synthesised generator-shaped clips with known ground truth, a log guard, and the
loudness plan's ffmpeg runs counted."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.jobs import loudness_plan
from pipeline.media.runner import run_ffmpeg
from pipeline.media.synth import SHAPES, ClipContent, ClipShape, synthesize

MATRIX_CLIP_SECONDS = Fraction(1, 2)
"""Short enough to finish every shape into every preset inside the CI budget."""


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def make_clip(clip_dir):
    """Synthesise (once per session) a clip of a named or given shape, duration and content."""
    made: dict[tuple, Path] = {}

    def make(
        shape: str | ClipShape,
        seconds: Fraction = MATRIX_CLIP_SECONDS,
        content: ClipContent = ClipContent(),
        **shape_changes,
    ) -> Path:
        base = SHAPES[shape] if isinstance(shape, str) else shape
        clip_shape = ClipShape(**{**base.__dict__, **shape_changes})
        key = (clip_shape, seconds, content)
        if key not in made:
            stem = f"{clip_shape.name}-{len(made)}"
            made[key] = synthesize(clip_shape, clip_dir / f"{stem}.mp4", Fraction(seconds), content=content)
        return made[key]

    return make


@pytest.fixture(scope="session")
def make_colour_clip(clip_dir):
    """A solid-colour clip (lossless H.264 4:4:4, so pixel values survive) with a 440 Hz tone."""

    def make(colour: str, seconds: Fraction = Fraction(2), size: str = "160x90", rate: int = 24) -> Path:
        path = clip_dir / f"colour-{colour.strip('#')}-{size}-{rate}-{float(seconds)}.mp4"
        if not path.exists():
            run_ffmpeg([
                "-f", "lavfi", "-i", f"color=c={colour}:s={size}:r={rate}:d={float(seconds)}",
                "-f", "lavfi", "-i", f"sine=f=440:r=48000:d={float(seconds)}",
                "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", "-c:a", "aac", str(path),
            ])
        return path

    return make


@pytest.fixture
def loudness_runs(monkeypatch) -> list:
    """Every ffmpeg run of the loudness plan."""
    runs = []
    original = loudness_plan.run_ffmpeg

    def counted(args, **kwargs):
        runs.append(args)
        return original(args, **kwargs)

    monkeypatch.setattr(loudness_plan, "run_ffmpeg", counted)
    return runs


@pytest.fixture(autouse=True)
def fail_on_error_logs(request, caplog):
    """A test that logs at ERROR fails, unless marked ``expected_error_logs``: silent failures do not pass."""
    yield
    if request.node.get_closest_marker("expected_error_logs"):
        return
    errors = [record for record in caplog.get_records("call") if record.levelno >= logging.ERROR]
    if errors:
        pytest.fail("ERROR logged: " + "; ".join(record.getMessage() for record in errors))


@pytest.fixture(autouse=True)
def analysis_cache_per_test(tmp_path_factory, monkeypatch):
    """Each test analyses into a cache of its own: no test reads another's results, and the suite
    never writes into the user's ~/.cache."""
    monkeypatch.setenv("POSTPROD_CACHE_DIR", str(tmp_path_factory.mktemp("analysis-cache")))


@pytest.fixture(autouse=True)
def prefect_temporary_server(monkeypatch):
    """Commands run in tests use Prefect's temporary server, which ends with the process, not the
    background server a user's commands share (tests/test_server.py starts and stops one itself)."""
    monkeypatch.setenv("POSTPROD_PREFECT_SERVER", "temporary")
