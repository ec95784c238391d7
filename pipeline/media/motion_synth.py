"""Synthetic moving pictures with a known ground truth, for measuring interpolation, de-stutter and
upscaling: any instant of a scene can be rendered, so the frames a conversion must invent exist.

Scenes are textured (multi-scale smoothed noise with hard-edged shapes, in colour) and move the way
camera and generated footage does: a pan, a zoom, an object crossing a panning background.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from pipeline.media.runner import open_ffmpeg_pipe
from pipeline.model.timebase import format_rate

Scene = Literal["pan", "zoom", "object", "still"]
SCENES: tuple[Scene, ...] = ("pan", "zoom", "object")
"""The moving scenes a quality measurement runs over."""
PAN_SPEED = 0.25
"""Pan speed, in picture widths per second."""
ZOOM_PER_SECOND = 0.25
"""Zoom scene: magnification growth per second (1.0 -> 1.25 after one second)."""
OBJECT_SPEED = 0.6
"""Object scene: the object's speed across the picture, in picture widths per second."""


def texture(width: int, height: int, seed: int) -> np.ndarray:
    """An RGB uint8 texture: smoothed noise at several scales plus random hard-edged shapes."""
    rng = np.random.default_rng(seed)
    picture = np.zeros((height, width, 3), np.float32)
    for sigma, amplitude in ((24, 90), (8, 60), (2.5, 40), (0.8, 18)):
        noise = rng.standard_normal((height, width, 3)).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), sigma)
        picture += amplitude * smooth / (smooth.std() + 1e-6)
    picture += 128
    for _ in range(max(4, width * height // 6000)):
        colour = [float(c) for c in rng.uniform(20, 235, 3)]
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        size = int(rng.integers(3, max(4, width // 16)))
        if rng.random() < 0.5:
            cv2.circle(picture, centre, size, colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(picture, centre, (centre[0] + size, centre[1] + size // 2 + 2), colour, -1)
    return np.clip(picture, 0, 255).astype(np.uint8)


class SceneRenderer:
    """Renders one scene at any instant, the same texture every time (``seed``)."""

    def __init__(self, scene: Scene, width: int, height: int, seed: int = 7):
        self.scene, self.width, self.height = scene, width, height
        self._background = texture(width * 3, height * 2, seed)
        self._object = texture(width // 4, width // 4, seed + 1)
        yy, xx = np.mgrid[0:width // 4, 0:width // 4]
        radius = width // 8
        self._object_mask = ((xx - radius) ** 2 + (yy - radius) ** 2 <= radius**2).astype(np.float32)

    def frame(self, time_s: float) -> np.ndarray:
        """The RGB uint8 picture at ``time_s`` seconds."""
        width, height = self.width, self.height
        if self.scene == "zoom":
            zoom = 1.0 + ZOOM_PER_SECOND * time_s
            centre_x, centre_y = self._background.shape[1] / 2, self._background.shape[0] / 2
            matrix = np.float32([[1 / zoom, 0, centre_x - width / (2 * zoom)],
                                 [0, 1 / zoom, centre_y - height / (2 * zoom)]])
            return self._sample(matrix)
        offset = PAN_SPEED * width * time_s if self.scene in ("pan", "object") else 0.0
        picture = self._sample(np.float32([[1, 0, offset + width * 0.2], [0, 1, height * 0.3]]))
        if self.scene == "object":
            size = self._object.shape[0]
            x = width * 0.05 + OBJECT_SPEED * width * time_s
            y = height / 2 - size / 2 + height * 0.15 * np.sin(2 * np.pi * time_s)
            shift = np.float32([[1, 0, x], [0, 1, y]])
            sprite = cv2.warpAffine(self._object, shift, (width, height), flags=cv2.INTER_LINEAR)
            mask = cv2.warpAffine(self._object_mask, shift, (width, height), flags=cv2.INTER_LINEAR)[..., None]
            picture = (picture * (1 - mask) + sprite * mask + 0.5).astype(np.uint8)
        return picture

    def _sample(self, matrix: np.ndarray) -> np.ndarray:
        """The picture whose pixel (x, y) is the background at ``matrix @ (x, y, 1)``."""
        return cv2.warpAffine(self._background, matrix, (self.width, self.height),
                              flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)


def scene_frames(scene: Scene, width: int, height: int, rate: Fraction, count: int, seed: int = 7):
    """``count`` frames of ``scene`` at ``rate``, frame ``n`` showing instant ``n / rate``."""
    renderer = SceneRenderer(scene, width, height, seed)
    for number in range(count):
        yield renderer.frame(float(number / rate))


def add_noise(frames: Iterable[np.ndarray], sigma: float, seed: int = 3):
    """Each frame with fresh Gaussian noise of ``sigma`` 8-bit levels (sensor or generator grain)."""
    rng = np.random.default_rng(seed)
    for frame in frames:
        noisy = frame.astype(np.float32) + rng.normal(0, sigma, frame.shape).astype(np.float32)
        yield np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def write_clip(
    frames: Iterable[np.ndarray],
    path: Path,
    rate: Fraction,
    *,
    tone_hz: float | None = None,
    lossless: bool = True,
) -> Path:
    """Encode RGB uint8 frames as H.264 yuv420p (lossless by default), BT.709, at ``rate``.

    Args:
        frames: RGB uint8 pictures, all the same size.
        path: Output .mp4 or .mov.
        rate: Frames per second.
        tone_hz: Add a stereo sine at -12 dBFS of this frequency, as long as the picture (48 kHz AAC).
        lossless: ``-qp 0``; else CRF 18 (what a generator hands out).
    """
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-framerate", format_rate(rate), "-i", "pipe:0"]
    if tone_hz is not None:
        args += ["-f", "lavfi", "-i", f"sine=f={tone_hz}:r=48000", "-map", "0:v", "-map", "1:a",
                 "-af", "volume=-3dB,pan=stereo|c0=c0|c1=c0", "-shortest", "-c:a", "aac", "-b:a", "192k"]
    args += ["-vf", "scale=out_color_matrix=bt709:out_range=tv", "-c:v", "libx264", "-preset", "veryfast",
             *(["-qp", "0"] if lossless else ["-crf", "18"]), "-pix_fmt", "yuv420p",
             "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
             str(path)]
    with open_ffmpeg_pipe(args, stdin=True) as process:
        assert process.stdin is not None
        process.stdin.write(first.tobytes())
        for frame in frames:
            process.stdin.write(frame.tobytes())
    return path
