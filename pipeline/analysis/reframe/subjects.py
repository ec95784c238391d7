"""What stands out in a sampled frame: faces first, then regions salient by spectral residual and by
motion against the previous sample."""

from __future__ import annotations

import cv2
import numpy as np

SAMPLES_PER_SECOND = 8
"""Frames analysed for subjects per second of video (every frame is used for cuts)."""
ANALYSIS_LONG_SIDE_PX = 384
"""Long side of the picture analysed for subjects, in pixels."""
SALIENCY_WIDTH_PX = 64
"""Width of the spectral-residual saliency map (the method works on about 64 px)."""
MAX_SUBJECTS = 4
"""Subjects kept per sample."""
FACE_IMPORTANCE = 2.0
"""Importance added to a face's score: a face outranks any salient region (importance <= 1)."""
SUBJECT_THRESHOLD = 0.4
"""A pixel of the combined saliency/motion map belongs to a subject above this share of the map's peak."""
MIN_SUBJECT_SHARE = 0.15
"""Salient regions with less than this share of the largest region's mass are dropped."""
MAX_SUBJECT_AREA = 0.4
"""A salient region covering more than this share of the picture is background texture."""
MOTION_FLOOR = 4.0
"""Motion (mean absolute luma change of a pixel, 8-bit levels) that counts as fully moving."""


def spectral_residual_saliency(grey: np.ndarray) -> np.ndarray:
    """Saliency of a small greyscale image (Hou and Zhang's spectral residual), 0..1, same shape.

    What is left of the log amplitude spectrum after its local average is removed is what the image
    has that a typical image does not; transformed back with the original phase it marks the
    regions that stand out.
    """
    spectrum = np.fft.fft2(grey.astype(np.float32))
    log_amplitude = np.log(np.abs(spectrum) + 1e-6)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), 2.0)
    # A plain picture leaves a uniform floor (the spectrum's flat part): measure from it.
    floor, peak = float(np.median(saliency)), float(saliency.max())
    if peak <= floor * 1.05:
        return np.zeros_like(saliency)
    return np.clip((saliency - floor) / (peak - floor), 0.0, 1.0)


def salient_regions(saliency: np.ndarray, motion: np.ndarray) -> list[tuple[float, float, float, float, float]]:
    """Regions standing out by saliency and motion: (x0, y0, x1, y1, importance), shares of the map,
    importance 0..1 (the region's share of the total mass), most important first."""
    combined = 0.5 * saliency + 0.5 * motion
    peak = float(combined.max())
    if peak <= 0.05:
        return []
    mask = (combined >= SUBJECT_THRESHOLD * peak).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return []
    masses = np.bincount(labels.ravel(), weights=combined.ravel(), minlength=count)[1:]
    height, width = combined.shape
    total, largest = float(masses.sum()), float(masses.max())
    regions = []
    for label in np.argsort(-masses):
        if masses[label] < MIN_SUBJECT_SHARE * largest:
            break
        x, y, w, h, _ = stats[label + 1]
        if w * h > MAX_SUBJECT_AREA * width * height:
            continue  # texture spread over the picture, not a subject
        regions.append((x / width, y / height, (x + w) / width, (y + h) / height, float(masses[label] / total)))
    return regions

