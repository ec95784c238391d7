"""Per-frame measures of a finished file's picture, taken as it decodes once for verification and QC.

Each frame is reduced once to a small grey image (dark share, detail, difference from the previous
frame, flash transitions) and a sparse sample of its planes (legal levels, gamut, what the broadcast
legaliser changed); a dozen evenly spaced frames become the contact sheet. QC's checks judge the
series (:mod:`pipeline.qc.picture_checks`); nothing here decides what is a fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from pipeline.analysis.stutter import psnr_db
from pipeline.media.output_decode import PictureFrame
from pipeline.plan.legalise import touched_share

ANALYSIS_WIDTH_PX = 160
"""Width of the grey image black, freeze, stutter and flash are judged on."""
BLACK_PIXEL_LEVEL = 16 + 0.10 * 219
"""A pixel darker than this (8-bit luma, 10 % of the legal range) counts as black (as ffmpeg's blackdetect)."""
LEGAL_LUMA = (14, 241)
"""Legal 8-bit luma: EBU R 103's tolerance of -1 % to +103 % around BT.709's nominal 16-235 (black
16 - 0.01 x 219, white 235 + 0.03 x 219), which leaves room for the overshoot of a scaler's filter
at sharp edges; scaled for 10 and 12 bits."""
GAMUT_RANGE = (-0.05, 1.05)
"""EBU R 103's tolerance for the R, G and B signals a Y'CbCr picture decodes to (BT.709 matrix):
-5 % to +105 %. Checking colours this way, rather than Cb and Cr code values, is what a gamut meter
does: chroma rings past 16-240 at the edges of a scaled saturated colour without leaving gamut."""
DISPLAY_PEAK_CD_M2 = 200.0
"""Flash analysis assumes a display of this peak luminance with a BT.1886 (2.4) gamma."""
FLASH_STEP_CD_M2 = 20.0
"""A flash transition is a luminance change of at least this much ..."""
FLASH_DARK_CD_M2 = 160.0
"""... where the darker state is below this (Ofcom, ITU-R BT.1702)."""
THUMBNAILS = 12
"""Frames in the contact sheet, evenly spaced."""
THUMBNAIL_WIDTH_PX = 240
"""Width of each contact-sheet frame."""


@dataclass(frozen=True, eq=False)
class PictureMeasures:
    """One value per measured frame (the leader left out), in display order."""

    times_s: tuple[Fraction, ...]
    """Each frame's time from the first measured frame, seconds."""
    dark_share: np.ndarray
    """Share of the frame's analysis pixels under :data:`BLACK_PIXEL_LEVEL`."""
    detail: np.ndarray
    """Standard deviation of the analysis luma, 8-bit levels."""
    mean_diff: np.ndarray
    """Mean absolute difference from the previous frame, 8-bit levels (inf for the first)."""
    max_diff: np.ndarray
    """Largest absolute difference from the previous frame (inf for the first)."""
    psnr_db: np.ndarray
    """PSNR against the previous frame, dB (0 for the first)."""
    illegal_luma: np.ndarray
    """Share of 2x2-averaged luma samples outside :data:`LEGAL_LUMA`."""
    out_of_gamut: np.ndarray
    """Share of pixels whose R'G'B' falls outside :data:`GAMUT_RANGE`."""
    flash_area: np.ndarray
    """Share of the picture completing a flash transition in this frame."""
    legalised: np.ndarray | None
    """Share of pixels the broadcast legaliser changed by a 10-bit code or more; None when not asked."""
    full_range: bool
    """The file is tagged full range (limited-range limits do not apply)."""
    thumbnails: tuple[tuple[float, bytes], ...]
    """Contact sheet: (time in seconds, JPEG bytes)."""

    @property
    def frame_count(self) -> int:
        """Frames measured."""
        return len(self.times_s)


class PictureMeter:
    """Measures frames one by one; :meth:`result` once the decode is over."""

    def __init__(self, duration_s: Fraction, *, full_range: bool, skip_frames: int = 0, legalised: bool = False):
        """Args:
            duration_s: Picture duration after the skipped frames (spaces the contact sheet).
            full_range: The file is tagged full range.
            skip_frames: Frames of leader before the programme, decoded but not measured.
            legalised: Also measure how much of each frame the broadcast legaliser changed.
        """
        self._skip = skip_frames
        self._full_range = full_range
        self._legalised = legalised
        self._thumbnail_times = [duration_s * (2 * index + 1) / (2 * THUMBNAILS) for index in range(THUMBNAILS)]
        self._flash = _FlashTracker()
        self._previous: np.ndarray | None = None
        self._start: Fraction | None = None
        self._series: dict[str, list[float]] = {name: [] for name in _SERIES}
        self._times: list[Fraction] = []
        self._thumbnails: list[tuple[float, bytes]] = []

    def add(self, frame: PictureFrame) -> None:
        """Measure the next decoded frame."""
        if self._skip:
            self._skip -= 1
            return
        if self._start is None:
            self._start = frame.time
        at = frame.time - self._start
        luma = frame.planes[0]
        grey = _small_grey(luma, frame.depth)
        series = self._series
        self._times.append(at)
        series["dark_share"].append(float(np.mean(grey <= BLACK_PIXEL_LEVEL)))
        series["detail"].append(float(grey.std()))
        if self._previous is None:
            series["mean_diff"].append(float("inf"))
            series["max_diff"].append(float("inf"))
            series["psnr_db"].append(0.0)
        else:
            difference = cv2.absdiff(grey, self._previous)
            series["mean_diff"].append(float(difference.mean()))
            series["max_diff"].append(float(difference.max()))
            series["psnr_db"].append(psnr_db(difference))
        self._previous = grey
        series["illegal_luma"].append(_outside_share(luma, *LEGAL_LUMA, frame.depth))
        ycbcr = _normalised_ycbcr(frame.planes, frame.depth)
        series["out_of_gamut"].append(_out_of_gamut_share(ycbcr, _matrix_weights(frame)))
        if self._legalised:
            series["legalised"].append(touched_share(*ycbcr))
        series["flash_area"].append(self._flash.update(_luminance(grey)))
        if self._thumbnail_times and at >= self._thumbnail_times[0]:
            self._thumbnail_times.pop(0)
            self._thumbnails.append((float(at), frame.jpeg(THUMBNAIL_WIDTH_PX)))

    def result(self) -> PictureMeasures:
        """Every frame's measures."""
        arrays = {name: np.array(values, np.float64) for name, values in self._series.items()}
        legalised = arrays.pop("legalised")
        return PictureMeasures(
            times_s=tuple(self._times), **arrays, legalised=legalised if self._legalised else None,
            full_range=self._full_range, thumbnails=tuple(self._thumbnails),
        )


_SERIES = ("dark_share", "detail", "mean_diff", "max_diff", "psnr_db", "illegal_luma", "out_of_gamut",
           "flash_area", "legalised")


class _FlashTracker:
    """Per analysis pixel: the luminance extreme since the last transition and the direction of travel.

    A transition is a move of at least :data:`FLASH_STEP_CD_M2` against the direction of travel (or
    either way, at the start) from that extreme, with the darker state under :data:`FLASH_DARK_CD_M2`.
    """

    def __init__(self) -> None:
        self._extreme: np.ndarray | None = None
        self._direction: np.ndarray | None = None

    def update(self, luminance: np.ndarray) -> float:
        """Share of the picture completing a transition in this frame."""
        if self._extreme is None:
            self._extreme = luminance.copy()
            self._direction = np.zeros(luminance.shape, np.int8)
            return 0.0
        extreme, direction = self._extreme, self._direction
        step = luminance - extreme
        darker_dark = np.minimum(luminance, extreme) < FLASH_DARK_CD_M2
        rising_turn = (direction <= 0) & (step >= FLASH_STEP_CD_M2) & darker_dark
        falling_turn = (direction >= 0) & (-step >= FLASH_STEP_CD_M2) & darker_dark
        turned = rising_turn | falling_turn
        direction[rising_turn] = 1
        direction[falling_turn] = -1
        # Keep following the extreme in the direction of travel.
        follow = turned | ((direction > 0) & (step > 0)) | ((direction < 0) & (step < 0))
        extreme[follow] = luminance[follow]
        return float(turned.mean())


def _luminance(grey8: np.ndarray) -> np.ndarray:
    """Display luminance in cd/m2 of 8-bit limited-range luma."""
    signal_level = np.clip((grey8 - 16.0) / 219.0, 0.0, 1.0)
    return DISPLAY_PEAK_CD_M2 * signal_level**2.4


def _small_grey(luma: np.ndarray, depth: int) -> np.ndarray:
    """Luma at analysis width as float32 8-bit levels."""
    height = max(2, round(ANALYSIS_WIDTH_PX * luma.shape[0] / luma.shape[1]))
    step = max(1, luma.shape[1] // (4 * ANALYSIS_WIDTH_PX))
    small = cv2.resize(luma[::step, ::step], (ANALYSIS_WIDTH_PX, height), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / (1 << (depth - 8))


def _outside_share(plane: np.ndarray, low: int, high: int, depth: int) -> float:
    """Share of 2x2-averaged samples outside [low, high] (8-bit levels, scaled to ``depth``).

    Averaging is the low-pass a level meter applies: scaling and lossy coding ring a few samples
    past a legal edge, which no monitor shows and no delivery spec rejects.
    """
    smoothed = cv2.resize(plane, (max(1, plane.shape[1] // 2), max(1, plane.shape[0] // 2)),
                          interpolation=cv2.INTER_AREA)
    shift = depth - 8
    inside = cv2.inRange(smoothed, low << shift, ((high + 1) << shift) - 1)
    return 1.0 - cv2.countNonZero(inside) / inside.size


_LUMA_WEIGHTS = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114), 9: (0.2627, 0.0593)}
"""Kr and Kb by AVColorSpace: BT.709, BT.470BG and SMPTE 170M (BT.601), BT.2020."""


def _matrix_weights(frame: PictureFrame) -> tuple[float, float]:
    """Kr, Kb of the frame's tagged matrix; untagged, BT.709 from 1280 pixels wide, else BT.601
    (what players assume, and :func:`pipeline.plan.conform.source_color_matrix` too)."""
    tagged = _LUMA_WEIGHTS.get(frame.matrix)
    if tagged is not None:
        return tagged
    height, width = frame.planes[0].shape
    return _LUMA_WEIGHTS[1] if max(width, height) >= 1280 else _LUMA_WEIGHTS[6]


def _normalised_ycbcr(planes: tuple[np.ndarray, ...], depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y' (0..1 nominal), Cb and Cr (-0.5..0.5 nominal) at half the chroma resolution (the luma
    check's 2x2 averaging)."""
    chroma_height, chroma_width = planes[1].shape
    size = (max(1, chroma_width // 2), max(1, chroma_height // 2))
    levels = float(1 << (depth - 8))
    luma, blue, red = (
        cv2.resize(plane, size, interpolation=cv2.INTER_AREA).astype(np.float32) / levels for plane in planes
    )
    return (luma - 16) / 219, (blue - 128) / 224, (red - 128) / 224


def _out_of_gamut_share(ycbcr: tuple[np.ndarray, np.ndarray, np.ndarray], weights: tuple[float, float]) -> float:
    """Share of pixels whose R'G'B' (``weights``: the matrix's Kr, Kb) falls outside :data:`GAMUT_RANGE`."""
    luma, blue, red = ycbcr
    kr, kb = weights
    kg = 1 - kr - kb
    r = luma + 2 * (1 - kr) * red
    b = luma + 2 * (1 - kb) * blue
    g = luma - (2 * kb * (1 - kb) * blue + 2 * kr * (1 - kr) * red) / kg
    low, high = GAMUT_RANGE
    outside = (np.minimum(np.minimum(r, g), b) < low) | (np.maximum(np.maximum(r, g), b) > high)
    return float(outside.mean())
