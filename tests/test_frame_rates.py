"""Frame rates through containers with coarse timestamps: a constant-rate WebM or Matroska file
(millisecond timestamps) is read at its true rate, real variable-rate phone clips stay variable, and a
15 fps MKV converted by optical flow has its frames at the right instants."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pipeline.jobs.analyses import probe_sources
from pipeline.jobs.sequence import plan_with_analysis
from pipeline.model.job import parse_job
from pipeline.media.runner import run_ffmpeg
from pipeline.media.motion_synth import PAN_SPEED, SceneRenderer, write_clip
from pipeline.model.presets import load_presets
from pipeline.media.probe import probe
from pipeline.render.renderer import render
from pipeline.plan.facts import JobFacts
from tests.measure import frames_rgb, psnr

DEVCLIPS = Path("../shared/devclips")
needs_devclips = pytest.mark.skipif(not DEVCLIPS.is_dir(), reason="../shared/devclips is absent")

RATES = ("15", "24000/1001", "24", "30000/1001", "30", "50", "60")
CONTAINERS = {
    "webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k"],
    "mkv": ["-c:v", "libx264", "-preset", "ultrafast"],
}
SECONDS = 2


@pytest.fixture(scope="module")
def real_clip_at(tmp_path_factory):
    """Two seconds of real camera footage re-timed to a rate and written to WebM or MKV."""
    folder = tmp_path_factory.mktemp("rates")

    def make(rate: str, container: str) -> Path:
        path = folder / f"face-{rate.replace('/', '_')}.{container}"
        run_ffmpeg(["-i", str(DEVCLIPS / "speech_face_2.mp4"), "-t", str(SECONDS), "-vf", f"scale=128:-2,fps={rate}",
                    *CONTAINERS[container], "-an", str(path)])
        return path

    return make


@needs_devclips
@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("rate", RATES)
def test_constant_rate_in_millisecond_container_reads_at_its_true_rate(real_clip_at, rate, container):
    path = real_clip_at(rate, container)
    with av.open(str(path)) as container:
        assert container.streams.video[0].time_base == Fraction(1, 1000)  # the coarse grid under test
    video = probe(path).video
    assert video.frame_rate == Fraction(rate), (path.name, video.frame_rate)
    assert not video.variable_frame_rate
    assert video.frame_count == round(SECONDS * Fraction(rate))


@needs_devclips
@pytest.mark.parametrize("name", ["phone_slow_motion_240fps.mp4", "hdr_hdr10_1080p_vfr.mp4"])
def test_real_variable_rate_clips_stay_variable(name):
    assert probe(DEVCLIPS / name).video.variable_frame_rate


def test_15_fps_mkv_through_flow_has_frames_at_the_right_instants(tmp_path):
    renderer = SceneRenderer("pan", 320, 180)
    source_frames = [renderer.frame(n / 15) for n in range(30)]
    mp4 = write_clip(source_frames, tmp_path / "pan15.mp4", Fraction(15), tone_hz=440)
    mkv = tmp_path / "pan15.mkv"
    run_ffmpeg(["-i", str(mp4), "-c", "copy", str(mkv)])
    assert probe(mkv).video.frame_rate == 15
    job = parse_job({
        "version": 1, "name": "mkv15", "shots": [{"source": str(mkv)}],
        "deliverables": [{"preset": "master-prores-4444",
                          "overrides": {"video": {"frame_rate": 30, "rate_conversion": "flow"}}}],
    }, tmp_path)
    # Render only: the editorial exports cannot count 15 fps timecode (a separate limitation).
    plan = plan_with_analysis(job, JobFacts(probe_sources(job)), load_presets(), tmp_path / "out", measure_loudness=False)
    [output] = [rendered.plan.path for render_plan in plan.renders for rendered in render(render_plan)]
    info = probe(output).video
    assert info.frame_rate == 30 and info.frame_count == 60 and info.duration_s == 2
    frames = frames_rgb(output)
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) for frame in frames]
    # Output frame 2k is source frame k; every output step pans half a source step.
    source_grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) for frame in frames_rgb(mkv)]
    assert min(psnr(grey[2 * k], source_grey[k]) for k in range(29)) > 40
    shifts = np.array([-cv2.phaseCorrelate(grey[n - 1], grey[n])[0][0] for n in range(1, 58)])
    half_step = PAN_SPEED * 320 / 30
    assert np.all(np.abs(shifts - half_step) <= 0.15 * half_step), np.round(shifts, 2)
