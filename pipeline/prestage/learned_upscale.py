"""The ``learned`` upscaler: an ONNX super-resolution model the user supplies, run tile by tile.

Agencies plug in the model they license (Real-ESRGAN, SwinIR and similar exports). The convention is
the common one of those exports: one float32 input ``(1, 3, H, W)`` of RGB in 0..1, one output
``(1, 3, s*H, s*W)`` with ``s`` the model's scale. ONNX Runtime runs it on the CPU by default and
on a GPU when its CUDA provider is installed and sees one. Frames are cut into overlapping tiles so
memory stays bounded at any picture size; each tile's overlap is cut away after upscaling, so seams
see the same context as the tile's interior.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from pipeline.errors import JobError
from pipeline.media.frames import Frame

TILE_PX = 256
"""Side of each tile's core, in input pixels."""
OVERLAP_PX = 16
"""Context added on each side of a tile and cut away after upscaling, in input pixels."""


class OnnxUpscaler:
    """One loaded super-resolution model.

    Args:
        model_path: The ``.onnx`` file.
        tile_px: Side of each tile's core, input pixels.
        overlap_px: Context around each tile, input pixels.

    Raises:
        JobError: the file is missing, is not an ONNX model, or does not take one RGB image.
    """

    def __init__(self, model_path: Path, tile_px: int = TILE_PX, overlap_px: int = OVERLAP_PX):
        import onnxruntime

        if not Path(model_path).is_file():
            raise JobError(f"enhance.model: {model_path}: no such file")
        available = onnxruntime.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            self._session = onnxruntime.InferenceSession(str(model_path), providers=providers)
        except Exception as error:  # onnxruntime raises its own untyped errors for bad files
            raise JobError(f"enhance.model: {model_path}: not a usable ONNX model ({error})") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[1] != 3:
            raise JobError(
                f"enhance.model: {model_path}: expected one input of shape (1, 3, H, W) (RGB), "
                f"got {[i.shape for i in inputs]}"
            )
        self._input_name = inputs[0].name
        self.model_path = Path(model_path)
        self.tile_px, self.overlap_px = tile_px, overlap_px
        probe = self._run(np.zeros((1, 3, 8, 8), np.float32))
        self.scale = probe.shape[2] // 8
        if self.scale < 1 or probe.shape[1] != 3 or probe.shape[3] != 8 * self.scale:
            raise JobError(f"enhance.model: {model_path}: output {probe.shape} is not a 3-channel upscale")

    @property
    def providers(self) -> list[str]:
        """Execution providers in use, best first."""
        return self._session.get_providers()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input_name: batch})[0]

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        """An RGB uint8 ``(H, W, 3)`` picture upscaled by :attr:`scale`, tile by tile."""
        height, width = rgb.shape[:2]
        scale, overlap = self.scale, self.overlap_px
        padded = np.pad(rgb, ((overlap, overlap), (overlap, overlap), (0, 0)), mode="reflect")
        result = np.empty((height * scale, width * scale, 3), np.uint8)
        for top in range(0, height, self.tile_px):
            for left in range(0, width, self.tile_px):
                core_h, core_w = min(self.tile_px, height - top), min(self.tile_px, width - left)
                tile = padded[top : top + core_h + 2 * overlap, left : left + core_w + 2 * overlap]
                batch = np.ascontiguousarray(tile.transpose(2, 0, 1)[None], np.float32) / 255.0
                output = self._run(batch)[0].transpose(1, 2, 0)
                core = output[overlap * scale : (overlap + core_h) * scale, overlap * scale : (overlap + core_w) * scale]
                result[top * scale : (top + core_h) * scale, left * scale : (left + core_w) * scale] = (
                    np.clip(core * 255.0 + 0.5, 0, 255).astype(np.uint8)
                )
        return result

    def frames(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """Each RGB frame (one ``(H, W, 3)`` plane) upscaled."""
        for frame in frames:
            yield (self.upscale(frame[0]),)
