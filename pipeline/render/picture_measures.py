"""Per-frame measures of a finished file's picture, taken as it decodes once for verification and QC.

Each frame is averaged down once, in steps (:func:`_reduce`): 2x2 luma for the legal levels, 4x4 luma
areas for gamut and what the broadcast legaliser changed, a small grey image for dark share, detail,
difference from the previous frame and flash transitions; a dozen evenly spaced
frames become the contact sheet. QC's checks judge the series (:mod:`pipeline.qc.picture_checks`);
nothing here decides what is a fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import cv2
import numpy as np

from pipeline.analysis.stutter import psnr_db
from pipeline.media.output_decode import PictureFrame
from pipeline.plan.legalise import (CHROMA_KNEE, GAMUT_CEILING, GAMUT_FLOOR, LUMA_BLACK_KNEE, LUMA_WHITE_KNEE,
                                    touched_share)

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
GAMUT_CHROMA_BITS = 10
"""Chroma precision of the gamut tables: deeper chroma keeps its top bits (a 12-bit table would hold
16 million pairs; the two bits dropped move a colour by under 0.12 % of the range)."""
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
    """Share of the picture (in 4x4 luma areas, averaged) whose R'G'B' falls outside :data:`GAMUT_RANGE`."""
    flash_area: np.ndarray
    """Share of the picture completing a flash transition in this frame."""
    legalised: np.ndarray | None
    """Share of the picture (4x4 luma areas) the broadcast legaliser changed by a 10-bit code or more;
    None when not asked."""
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
        reduced = _reduce(frame.planes, frame.depth)
        grey = reduced.grey
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
        series["illegal_luma"].append(_outside_share(reduced.luma, *LEGAL_LUMA, frame.depth))
        series["out_of_gamut"].append(_out_of_gamut_share(reduced.ycbcr, _matrix_weights(frame), frame.depth))
        if self._legalised:
            series["legalised"].append(_legalised_share(reduced.ycbcr, frame.depth))
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


@dataclass(frozen=True, eq=False)
class _ReducedPicture:
    """One frame reduced once for every measure; code values of the frame's own depth."""

    luma: np.ndarray
    """Luma, 2x2 area averages (the levels check)."""
    ycbcr: tuple[np.ndarray, np.ndarray, np.ndarray]
    """Y', Cb, Cr over 4x4 luma areas, averaged (the gamut check, the legaliser's share)."""
    grey: np.ndarray
    """Luma at :data:`ANALYSIS_WIDTH_PX`, float32 8-bit levels (black, detail, difference, flash)."""


def _reduce(planes: tuple[np.ndarray, np.ndarray, np.ndarray], depth: int) -> _ReducedPicture:
    """The frame's planes averaged down in steps, each picture made from the previous one.

    Levels and gamut are judged on area averages, not on single samples: EBU R 103 (v3.0, 2020)
    measures signal levels after a low-pass (spatial) filter, so that the transient overshoots a
    scaler or a codec leaves at sharp edges are ignored, and tolerates excursions over less than
    1 % of the picture. A 2x2 average is that filter for luma; colours are judged over 4x4 luma
    areas (2x2 of 4:2:0 chroma, 2x4 of 4:2:2), the same picture area whatever the subsampling, which
    is also what makes the gamut check cheap.
    """
    luma, blue, red = planes
    halved = _area(luma, _half(luma))
    quarter = _half(halved)
    gamut_luma = _area(halved, quarter)
    ycbcr = (gamut_luma, _area(blue, quarter), _area(red, quarter))
    # From the smallest average still as wide as the grey: an area resize by a fraction is costly
    # on a large picture (1080x1920 in one step: 4.6 ms a frame, from 270x480: 0.26 ms).
    source = next((plane for plane in (gamut_luma, halved) if plane.shape[1] >= ANALYSIS_WIDTH_PX), luma)
    height = max(2, round(ANALYSIS_WIDTH_PX * luma.shape[0] / luma.shape[1]))
    grey = _area(source, (ANALYSIS_WIDTH_PX, height)).astype(np.float32)
    if depth > 8:
        grey /= 1 << (depth - 8)
    return _ReducedPicture(halved, ycbcr, grey)


def _half(plane: np.ndarray) -> tuple[int, int]:
    """Half the plane's (width, height), at least one pixel."""
    height, width = plane.shape
    return max(1, width // 2), max(1, height // 2)


def _area(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The plane area-averaged to ``size`` (width, height); the plane itself when it has that size.

    OpenCV's area resize is fast only for one whole factor on both sides (4:2:2 chroma to a
    quarter of the luma raster, 2 across and 4 down, costs 0.85 ms a 1080p frame in one resize,
    0.06 ms in halvings): other sizes are reached by halving each side that is at least twice its
    target (a last odd row or column dropped), then one area resize for what is left.
    """
    width, height = size
    while plane.shape != (height, width):
        rows, columns = plane.shape
        if columns % width == 0 and rows % height == 0 and columns // width == rows // height:
            return cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
        across, down = columns >= 2 * width, rows >= 2 * height
        if across and down:
            plane = cv2.resize(plane[: rows // 2 * 2, : columns // 2 * 2], (columns // 2, rows // 2),
                               interpolation=cv2.INTER_AREA)
        elif down:
            plane = cv2.addWeighted(plane[0 : rows // 2 * 2 : 2], 0.5, plane[1 : rows // 2 * 2 : 2], 0.5, 0)
        elif across:
            plane = cv2.addWeighted(np.ascontiguousarray(plane[:, 0 : columns // 2 * 2 : 2]), 0.5,
                                    np.ascontiguousarray(plane[:, 1 : columns // 2 * 2 : 2]), 0.5, 0)
        else:
            return cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
    return plane


def _outside_share(smoothed: np.ndarray, low: int, high: int, depth: int) -> float:
    """Share of (2x2-averaged) samples outside [low, high] (8-bit levels, scaled to ``depth``)."""
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


def _out_of_gamut_share(ycbcr: tuple[np.ndarray, np.ndarray, np.ndarray], weights: tuple[float, float],
                        depth: int) -> float:
    """Share of pixels (Y', Cb, Cr code values; ``weights``: the matrix's Kr, Kb) whose R'G'B' falls
    outside :data:`GAMUT_RANGE`, read from the luma range each chroma pair allows
    (:func:`_gamut_luma_bounds`): integer look-ups and compares, no colour conversion per pixel."""
    outside = _outside_luma_bounds(ycbcr, _gamut_luma_bounds(weights, depth), depth)
    return cv2.countNonZero(outside) / outside.size


def _outside_luma_bounds(ycbcr: tuple[np.ndarray, np.ndarray, np.ndarray], bounds: tuple[np.ndarray, np.ndarray],
                         depth: int) -> np.ndarray:
    """255 where a pixel's luma code lies outside the interval its chroma pair is given in ``bounds``
    (lowest and highest luma per pair, indexed as :func:`_chroma_grid` lays the pairs out), else 0."""
    luma, blue, red = ycbcr
    chroma_bits = min(depth, GAMUT_CHROMA_BITS)
    drop = depth - chroma_bits
    pairs = ((blue.astype(np.int32) >> drop) << chroma_bits) | (red.astype(np.int32) >> drop)
    lowest, highest = bounds
    codes = luma.astype(lowest.dtype)
    return cv2.bitwise_or(cv2.compare(codes, lowest.take(pairs), cv2.CMP_LT),
                          cv2.compare(codes, highest.take(pairs), cv2.CMP_GT))


def _chroma_grid(depth: int, corner: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """Normalised Cb and Cr (-0.5..0.5 nominal) of every chroma pair of a gamut table, Cb major: the
    pair's codes kept to :data:`GAMUT_CHROMA_BITS`, plus ``corner`` codes of the bits dropped."""
    chroma_bits = min(depth, GAMUT_CHROMA_BITS)
    codes = np.arange(1 << chroma_bits) << (depth - chroma_bits)
    levels = 1 << (depth - 8)
    blue, red = ((codes + extra) / levels for extra in corner)
    return np.meshgrid((blue - 128) / 224, (red - 128) / 224, indexing="ij")


def _rgb_offsets(weights: tuple[float, float], blue: np.ndarray, red: np.ndarray) -> np.ndarray:
    """What R', G' and B' add to Y' for normalised Cb and Cr (matrix Kr, Kb = ``weights``), stacked."""
    kr, kb = weights
    kg = 1 - kr - kb
    return np.stack([2 * (1 - kr) * red, -(2 * kb * (1 - kb) * blue + 2 * kr * (1 - kr) * red) / kg,
                     2 * (1 - kb) * blue])


def _luma_code_bounds(lowest: np.ndarray, highest: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised luma bounds as luma codes of ``depth`` bits (lowest rounded up, highest down)."""
    levels = 1 << (depth - 8)
    top = 1 << depth
    lowest = np.clip(np.ceil((lowest * 219 + 16) * levels), 0, top)
    highest = np.clip(np.floor((highest * 219 + 16) * levels), -1, top)
    codes = np.int16 if depth < 15 else np.int32
    return lowest.astype(codes).ravel(), highest.astype(codes).ravel()


@lru_cache(maxsize=8)
def _gamut_luma_bounds(weights: tuple[float, float], depth: int) -> tuple[np.ndarray, np.ndarray]:
    """For every Cb, Cr pair (at :data:`GAMUT_CHROMA_BITS` at most, Cb major): the lowest and highest
    luma code of ``depth`` bits whose R'G'B' lies inside :data:`GAMUT_RANGE`.

    Each of R', G', B' is Y' plus a sum of Cb and Cr terms, so a chroma pair allows one interval of
    Y'; a pixel is out of gamut exactly when its Y' lies outside its pair's interval.
    """
    offsets = _rgb_offsets(weights, *_chroma_grid(depth))
    low, high = GAMUT_RANGE
    return _luma_code_bounds(low - offsets.min(axis=0), high - offsets.max(axis=0), depth)


def _legalised_share(ycbcr: tuple[np.ndarray, np.ndarray, np.ndarray], depth: int) -> float:
    """:func:`~pipeline.plan.legalise.touched_share` of the 4x4 areas, worked out only for the areas
    the legaliser could have changed (:func:`_legaliser_untouched_bounds`): the same share, at about
    a third of the cost on a typical picture, most of whose colours sit inside both knees."""
    candidates = np.flatnonzero(_outside_luma_bounds(ycbcr, _legaliser_untouched_bounds(depth), depth))
    if not candidates.size:
        return 0.0
    picked = tuple(plane.reshape(-1)[candidates] for plane in ycbcr)
    return touched_share(*_normalised_ycbcr(picked, depth)) * candidates.size / ycbcr[0].size


@lru_cache(maxsize=4)
def _legaliser_untouched_bounds(depth: int) -> tuple[np.ndarray, np.ndarray]:
    """For every Cb, Cr pair (as :func:`_gamut_luma_bounds`): luma codes of ``depth`` bits that the
    broadcast legaliser passes unchanged with that chroma, one code in from the edges.

    The legaliser (BT.709) leaves luma alone between its knees, and chroma while its ratio to the
    room before the gamut floor and ceiling stays under :data:`~pipeline.plan.legalise.CHROMA_KNEE`:
    ``max(up / (ceiling - Y'), down / (Y' - floor)) <= knee`` for the pair's largest rise ``up`` and
    fall ``down`` of R', G', B' over Y', an interval of Y'. Where chroma bits are dropped, the rise
    and fall are the largest over the codes a pair stands for (they are linear in Cb and Cr, so at
    a corner). The code kept in from each edge absorbs rounding: pixels outside are only candidates,
    measured exactly.
    """
    drop = depth - min(depth, GAMUT_CHROMA_BITS)
    last = (1 << drop) - 1
    rise = fall = np.zeros(())
    for corner in ((0, 0), (0, last), (last, 0), (last, last)):
        offsets = _rgb_offsets(_LUMA_WEIGHTS[1], *_chroma_grid(depth, corner))
        rise, fall = np.maximum(rise, offsets.max(axis=0)), np.maximum(fall, -offsets.min(axis=0))
    lowest = np.maximum(LUMA_BLACK_KNEE, GAMUT_FLOOR + fall / CHROMA_KNEE)
    highest = np.minimum(LUMA_WHITE_KNEE, GAMUT_CEILING - rise / CHROMA_KNEE)
    lowest_code, highest_code = _luma_code_bounds(lowest, highest, depth)
    return lowest_code + 1, highest_code - 1


def _normalised_ycbcr(ycbcr: tuple[np.ndarray, np.ndarray, np.ndarray],
                      depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y' (0..1 nominal), Cb and Cr (-0.5..0.5 nominal) of code values of ``depth`` bits."""
    levels = float(1 << (depth - 8))
    luma, blue, red = (plane.astype(np.float32) / levels for plane in ycbcr)
    return (luma - 16) / 219, (blue - 128) / 224, (red - 128) / 224
