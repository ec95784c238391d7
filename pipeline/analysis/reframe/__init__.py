"""Content-aware reframing: what matters in each shot, and a camera path that keeps it in frame.

- :mod:`.analysis` (:func:`analyse`, once per source, fed by the source's one decode pass): shot
  boundaries, subjects per sample (:mod:`.faces`, :mod:`.subjects`), motion, burned-in bars
  (:mod:`.bars`).
- :mod:`.camera` (:func:`camera_path`, per source and crop size, pure arithmetic): a stationary or
  smoothly tracking crop per shot.
- :mod:`.framing` (:func:`framing_for`, :func:`crop_expressions`): how a deliverable frames a source,
  and the path as the ``crop`` filter's expressions of the frame number.
- :mod:`.strip` (:func:`write_debug_strip`): sampled frames with the framing drawn on them.

The names the rest of the pipeline uses are importable from this package.
"""

from pipeline.analysis.reframe.analysis import ReframeAnalysis, analyse
from pipeline.analysis.reframe.camera import CameraShot, CropPath, camera_path
from pipeline.analysis.reframe.faces import FaceDetector, face_model_path
from pipeline.analysis.reframe.framing import Framing, crop_expressions, framing_for
from pipeline.analysis.reframe.strip import write_debug_strip

__all__ = [
    "CameraShot", "CropPath", "FaceDetector", "Framing", "ReframeAnalysis", "analyse", "camera_path",
    "crop_expressions", "face_model_path", "framing_for", "write_debug_strip",
]
