"""De-stutter: repeated frames in a moving picture are found exactly (a still shot with grain is
not flagged), and rebuilding them evens the motion out and beats blending against the true frames."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

from pipeline.jobs.finish import finish
from pipeline.model.job import parse_job
from pipeline.media.motion_synth import SceneRenderer, add_noise, write_clip
from pipeline.media.probe import probe
from pipeline.prestage.stutter import detect_stutter
from tests.measure import frames_rgb, psnr

RATE = Fraction(30)
FRAMES = 45
PAN_PX_PER_FRAME = 0.25 * 320 / 30  # motion_synth.PAN_SPEED picture widths per second


def _truth() -> list[np.ndarray]:
    renderer = SceneRenderer("pan", 320, 180)
    return [renderer.frame(number / float(RATE)) for number in range(FRAMES)]


def _stuttered(truth: list[np.ndarray]) -> list[np.ndarray]:
    """Every third frame repeats its predecessor, as a generator's stutter does."""
    return [truth[number - 1] if number % 3 == 2 else truth[number] for number in range(FRAMES)]


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _shift(earlier: np.ndarray, later: np.ndarray) -> float:
    """Horizontal pan between two frames in pixels (the texture moves left as the view pans right)."""
    return -cv2.phaseCorrelate(_grey(earlier), _grey(later))[0][0]


def test_repeats_are_found_exactly_and_a_grainy_still_shot_is_left_alone(tmp_path):
    stuttered = write_clip(_stuttered(_truth()), tmp_path / "stutter.mp4", RATE)
    report = detect_stutter(stuttered)
    assert report.frame_count == FRAMES
    # Frame 44 repeats 43 but nothing moves after it: nothing to interpolate towards.
    assert report.repeats == tuple(range(2, FRAMES - 1, 3))
    still = SceneRenderer("still", 320, 180).frame(0.0)
    grainy = write_clip(add_noise([still] * 30, sigma=3.0), tmp_path / "still.mp4", RATE)
    assert detect_stutter(grainy).repeats == ()


def test_destutter_evens_the_motion_and_beats_blending(tmp_path):
    truth = _truth()
    source = write_clip(_stuttered(truth), tmp_path / "stutter2.mp4", RATE, tone_hz=440)
    job = parse_job({
        "version": 1, "name": "smooth", "shots": [{"source": str(source)}],
        "deliverables": [{"preset": "master-prores-4444"}], "enhance": {"destutter": True},
    }, tmp_path)
    finish(job, tmp_path / "out")
    output = next((tmp_path / "out").glob("*.mov"))
    assert probe(output).video.frame_count == FRAMES and probe(output).video.frame_rate == RATE
    frames = frames_rgb(output)
    shifts = np.array([_shift(frames[n - 1], frames[n]) for n in range(1, FRAMES - 1)])
    # The pan speed as the same instrument reads it between untouched neighbours of the output
    # (frames 3k and 3k + 1); phase correlation reads this texture a few per cent off nominal.
    pan_speed = np.mean(shifts[0::3])
    assert abs(pan_speed - PAN_PX_PER_FRAME) < 0.1 * PAN_PX_PER_FRAME
    assert np.all(np.abs(shifts - pan_speed) <= 0.1 * pan_speed), np.round(shifts, 2)
    rebuilt = range(2, FRAMES - 1, 3)
    # Luma: the true frames were never through 4:2:0, the output was.
    flow_psnr = np.mean([psnr(_grey(frames[n]), _grey(truth[n])) for n in rebuilt])
    blend_psnr = np.mean([psnr((_grey(truth[n - 1]) + _grey(truth[n + 1])) / 2, _grey(truth[n])) for n in rebuilt])
    assert flow_psnr > blend_psnr + 3, (flow_psnr, blend_psnr)
