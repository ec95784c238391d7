"""The levels and gamut measures read reduced pictures, and still see what a gamut meter sees.

Truth is computed here per pixel with the BT.709 / BT.601 / BT.2020 equations in float64, on
frames built in memory (no encode): random colours held over 4x4 luma blocks (so the 2x2 chroma
and 4x4 luma averages the meter takes are exact and every block is one verdict), at 8, 10 and 12
bits; and a 1080p picture with an out-of-gamut patch of 2 % of its area at odd offsets.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from pipeline.media.output_decode import PictureFrame
from pipeline.plan.legalise import touched_share
from pipeline.render.picture_measures import GAMUT_RANGE, PictureMeter
from pipeline.qc.picture_checks import ILLEGAL_SHARE_MAX

WEIGHTS = {1: (0.2126, 0.0722), 6: (0.299, 0.114), 9: (0.2627, 0.0593)}
"""Kr, Kb by the AVColorSpace the frame is tagged with."""


def _measure(planes: tuple[np.ndarray, np.ndarray, np.ndarray], depth: int, matrix: int):
    # A long duration puts the first contact-sheet frame late: the frame is never encoded as JPEG.
    meter = PictureMeter(Fraction(3600), full_range=False)
    meter.add(PictureFrame(Fraction(0), planes, depth, matrix, frame=None))
    return meter.result()


def _outside_share(luma, blue, red, depth: int, weights: tuple[float, float]) -> float:
    """Share of pixels whose R'G'B' leaves GAMUT_RANGE, converting each pixel in float64."""
    levels = 1 << (depth - 8)
    y, cb, cr = (luma / levels - 16) / 219, (blue / levels - 128) / 224, (red / levels - 128) / 224
    kr, kb = weights
    r = y + 2 * (1 - kr) * cr
    b = y + 2 * (1 - kb) * cb
    g = y - (2 * kb * (1 - kb) * cb + 2 * kr * (1 - kr) * cr) / (1 - kr - kb)
    low, high = GAMUT_RANGE
    rgb = np.stack([r, g, b])
    return float(((rgb.min(axis=0) < low) | (rgb.max(axis=0) > high)).mean())


@pytest.mark.parametrize("depth", [8, 10, 12])
@pytest.mark.parametrize("matrix", sorted(WEIGHTS))
def test_gamut_share_is_what_converting_every_pixel_finds(depth, matrix):
    rng = np.random.default_rng(depth * 10 + matrix)
    blocks = (96, 160)  # 4x4 luma blocks of a 640x384 4:2:0 picture
    top = 1 << depth
    # Colours around the gamut's edges: luma and chroma over their whole code range.
    luma_blocks, blue_blocks, red_blocks = (rng.integers(0, top, blocks) for _ in range(3))
    dtype = np.uint8 if depth == 8 else np.uint16
    luma = np.kron(luma_blocks, np.ones((4, 4), int)).astype(dtype)
    blue, red = (np.kron(plane, np.ones((2, 2), int)).astype(dtype) for plane in (blue_blocks, red_blocks))
    truth = _outside_share(luma_blocks, blue_blocks, red_blocks, depth, WEIGHTS[matrix])
    assert 0.2 < truth < 0.9, "the colours must straddle the gamut's edges"
    measured = _measure((luma, blue, red), depth, matrix).out_of_gamut[0]
    # Exact to 8 and 10 bits; 12-bit chroma is judged on its top 10 bits.
    assert measured == pytest.approx(truth, abs=0 if depth <= 10 else 0.002)


def test_an_out_of_gamut_patch_of_a_1080p_picture_is_measured_at_its_area():
    """2 % of the picture in a red no display can show (Y' 200, Cr 240: R' 1.63), its edges on odd
    pixels: the reduced meter measures its area to within its one-block border, and the levels
    check fails the frame; a one-pixel line of the same colour (a transient R 103 ignores) does not."""
    luma = np.full((1080, 1920), 126, np.uint8)
    blue, red = np.full((540, 960), 128, np.uint8), np.full((540, 960), 128, np.uint8)
    top, left, height, width = 101, 333, 207, 201  # 2.0 % of 1920x1080
    luma[top : top + height, left : left + width] = 200
    red[top // 2 : (top + height) // 2, left // 2 : (left + width) // 2] = 240
    area = height * width / luma.size
    measured = _measure((luma, blue, red), 8, 1)
    assert measured.out_of_gamut[0] == pytest.approx(area, rel=0.08)
    assert measured.out_of_gamut[0] > ILLEGAL_SHARE_MAX and measured.illegal_luma[0] == 0

    luma, red = np.full((1080, 1920), 126, np.uint8), np.full((540, 960), 128, np.uint8)
    luma[:, 777], red[:, 777 // 2] = 200, 240
    assert _measure((luma, blue, red), 8, 1).out_of_gamut[0] <= ILLEGAL_SHARE_MAX


@pytest.mark.parametrize("depth", [8, 10, 12])
def test_legalised_share_equals_undoing_the_knees_on_every_pixel(depth):
    """The legaliser's share is worked out on candidate areas only: the same share as on all of them,
    on colours around both knees (luma and chroma near their limits) and a legal majority."""
    rng = np.random.default_rng(depth)
    levels = 1 << (depth - 8)
    blocks = (96, 160)
    luma_blocks = rng.integers(10 * levels, 246 * levels, blocks)
    blue_blocks, red_blocks = (rng.integers(8 * levels, 248 * levels, blocks) for _ in range(2))
    # A legal majority: the first 60 % of rows keep mid grey chroma and mid luma.
    legal = slice(0, 58)
    luma_blocks[legal] = rng.integers(40 * levels, 200 * levels, luma_blocks[legal].shape)
    blue_blocks[legal], red_blocks[legal] = 128 * levels, 128 * levels
    dtype = np.uint8 if depth == 8 else np.uint16
    luma = np.kron(luma_blocks, np.ones((4, 4), int)).astype(dtype)
    blue, red = (np.kron(plane, np.ones((2, 2), int)).astype(dtype) for plane in (blue_blocks, red_blocks))
    normalised = ((luma_blocks / levels - 16) / 219, (blue_blocks / levels - 128) / 224,
                  (red_blocks / levels - 128) / 224)
    truth = touched_share(*(plane.astype(np.float32) for plane in normalised))
    assert 0.03 < truth < 0.4
    meter = PictureMeter(Fraction(3600), full_range=False, legalised=True)
    meter.add(PictureFrame(Fraction(0), (luma, blue, red), depth, 1, frame=None))
    assert meter.result().legalised[0] == pytest.approx(truth, abs=1e-9)
