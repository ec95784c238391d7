"""Broadcast legaliser: a soft knee that brings luma and R'G'B' gamut inside EBU R 103.

What a finishing editor's safe-colour limiter does, as one 3D LUT over Y'CbCr code values:

- **Luma** is left alone between :data:`LUMA_BLACK_KNEE` and :data:`LUMA_WHITE_KNEE`; beyond them a
  ``tanh`` soft clip (slope 1 at the knee, so no visible corner) bends it towards
  :data:`LUMA_FLOOR` / :data:`LUMA_CEILING`, inside R 103's -1 % .. +103 %. Super-blacks and
  super-whites keep their gradation, compressed, instead of being flattened by a clamp.
- **Gamut**: for the legalised luma, each pixel's chroma excursion is measured against the room its
  R', G' and B' have before :data:`GAMUT_FLOOR` / :data:`GAMUT_CEILING` (a ratio, 1.0 = on the
  edge). Above :data:`CHROMA_KNEE` that ratio is soft-clipped the same way, and Cb and Cr are scaled
  down together: luma and hue are kept and only saturation gives way, the way a limiter avoids the
  hue shifts of clipping R', G' and B' one by one.

Every pixel inside nominal 0..100 % luma and R'G'B' passes through unchanged (the LUT is the
identity there, and tetrahedral interpolation reproduces a linear map exactly). ffmpeg's ``lut3d``
reads only RGB formats, so the Y'CbCr planes are relabelled (``mergeplanes``, no conversion) as G, B
and R around it.

The same :func:`legalise_ycbcr` builds the LUT, and :func:`touched_share` undoes its knees on a
legalised output to tell QC how many pixels it changed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.plan.workfiles import TextFile

LUMA_BLACK_KNEE = 0.0
"""Normalised luma (0 = black, 1 = nominal white) under which the black knee starts: nominal black,
so legal blacks are never lifted."""
LUMA_FLOOR = -0.005
"""Lowest luma the black knee reaches (R 103 allows -1 %; the rest is margin for the encoder)."""
LUMA_WHITE_KNEE = 1.0
"""Normalised luma over which the white knee starts: nominal white, so legal whites stay."""
LUMA_CEILING = 1.02
"""Highest luma the white knee reaches (R 103 allows 103 %; the rest is margin for the encoder)."""
GAMUT_FLOOR = -0.03
"""Lowest R', G', B' the chroma limiter aims for (R 103 allows -5 %; the margin is for 4:2:2
subsampling and the encoder, which ring a little past what the limiter leaves)."""
GAMUT_CEILING = 1.03
"""Highest R', G', B' the chroma limiter aims for (R 103 allows 105 %)."""
CHROMA_KNEE = 0.97
"""Share of the room to :data:`GAMUT_FLOOR` / :data:`GAMUT_CEILING` a pixel's chroma may use
untouched; beyond it saturation is soft-clipped. The most a colour inside 0..100 % R'G'B' uses is
0.969 (100 % blue, 100 % yellow), so every legal colour passes."""
LUT_SIZE = 65
"""Points per axis of the LUT: 16 ten-bit codes apart, fine enough that the knees' curvature is
interpolated to within a code or two."""
OPERATOR = "soft-knee luma + chroma limiter (3D LUT, tanh knees)"
"""How the manifest names the legaliser."""

_BT709 = (0.2126, 0.0722)
"""Kr, Kb of the BT.709 matrix every deliverable is encoded with."""


def _soft_clip(value: np.ndarray, knee: float, limit: float) -> np.ndarray:
    """``value`` unchanged up to ``knee``, then bent towards ``limit`` (above or below the knee)
    with slope 1 at the knee: ``knee + (limit - knee) * tanh((value - knee) / (limit - knee))``."""
    span = limit - knee
    beyond = (value - knee) / span > 0
    return np.where(beyond, knee + span * np.tanh((value - knee) / span), value)


def _chroma_ratio(luma: np.ndarray, blue: np.ndarray, red: np.ndarray) -> np.ndarray:
    """How much of the room to the gamut floor and ceiling the chroma uses, over R', G' and B'."""
    kr, kb = _BT709
    kg = 1 - kr - kb
    offsets = (
        2 * (1 - kr) * red,
        -(2 * kb * (1 - kb) * blue + 2 * kr * (1 - kr) * red) / kg,
        2 * (1 - kb) * blue,
    )
    headroom = np.maximum(GAMUT_CEILING - luma, 1e-6)
    footroom = np.maximum(luma - GAMUT_FLOOR, 1e-6)
    ratio = np.zeros_like(luma)
    for offset in offsets:
        ratio = np.maximum(ratio, np.where(offset > 0, offset / headroom, -offset / footroom))
    return ratio


def legalise_ycbcr(luma: np.ndarray, blue: np.ndarray, red: np.ndarray) -> tuple[np.ndarray, ...]:
    """The legaliser on normalised Y' (0..1 nominal) and Cb, Cr (-0.5..0.5 nominal) arrays."""
    luma = _soft_clip(_soft_clip(luma, LUMA_WHITE_KNEE, LUMA_CEILING), LUMA_BLACK_KNEE, LUMA_FLOOR)
    ratio = _chroma_ratio(luma, blue, red)
    scale = np.where(ratio > CHROMA_KNEE, _soft_clip(ratio, CHROMA_KNEE, 1.0) / np.maximum(ratio, 1e-9), 1.0)
    return luma, blue * scale, red * scale


def _unclip(value: np.ndarray, knee: float, limit: float) -> np.ndarray:
    """The inverse of :func:`_soft_clip`: what went into the knee to come out as ``value``."""
    span = limit - knee
    inside = np.clip((value - knee) / span, 0.0, 1.0 - 1e-6)
    return np.where((value - knee) / span > 0, knee + span * np.arctanh(inside), value)


TOUCH_MIN = 1 / 876
"""A pixel counts as changed when the legaliser moved its luma or chroma by a 10-bit code or more
(luma spans 876 codes, chroma 896)."""


def touched_share(luma: np.ndarray, blue: np.ndarray, red: np.ndarray) -> float:
    """Share of pixels of a legalised picture (normalised as :func:`legalise_ycbcr` takes them) that
    the legaliser changed by :data:`TOUCH_MIN` or more, found by undoing each knee (each maps onto
    itself, so what lies in a knee was bent by it, and by how much is known)."""
    if not luma.size:
        return 0.0
    luma_before = _unclip(_unclip(luma, LUMA_WHITE_KNEE, LUMA_CEILING), LUMA_BLACK_KNEE, LUMA_FLOOR)
    ratio = _chroma_ratio(luma, blue, red)
    ratio_before = _unclip(ratio, CHROMA_KNEE, 1.0)
    chroma_change = np.maximum(np.abs(blue), np.abs(red)) * (ratio_before / np.maximum(ratio, 1e-9) - 1)
    changed = (np.abs(luma_before - luma) >= TOUCH_MIN) | (chroma_change >= TOUCH_MIN)
    return float(changed.mean())


def _from_codes(codes: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised luma and chroma of code values (0..1 of the full code range), limited range."""
    levels = codes * ((1 << depth) - 1) / (1 << (depth - 8))
    return (levels - 16) / 219, (levels - 128) / 224


def _to_codes(luma: np.ndarray, chroma: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    scale = (1 << (depth - 8)) / ((1 << depth) - 1)
    return np.clip((luma * 219 + 16) * scale, 0, 1), np.clip((chroma * 224 + 128) * scale, 0, 1)


@lru_cache(maxsize=4)
def cube_lut(depth: int, size: int = LUT_SIZE) -> str:
    """The legaliser as a ``.cube`` 3D LUT over Y'CbCr codes of ``depth`` bits, relabelled as
    R = Cr, G = Y', B = Cb (the planes :func:`legalise` hands ``lut3d``). Kept per depth: its 274,625
    lines take about a third of a second to write."""
    grid = np.linspace(0.0, 1.0, size)
    # .cube order: red changes fastest, then green, then blue.
    cb_codes, y_codes, cr_codes = np.meshgrid(grid, grid, grid, indexing="ij")
    luma, _ = _from_codes(y_codes, depth)
    _, blue = _from_codes(cb_codes, depth)
    _, red = _from_codes(cr_codes, depth)
    luma, blue, red = legalise_ycbcr(luma, blue, red)
    y_out, _ = _to_codes(luma, luma, depth)
    _, cb_out = _to_codes(blue, blue, depth)
    _, cr_out = _to_codes(red, red, depth)
    table = np.stack([cr_out.ravel(), y_out.ravel(), cb_out.ravel()], axis=1)
    # One %-format over the whole table: several times faster than formatting row by row.
    lines = ("%.6f %.6f %.6f\n" * len(table)) % tuple(table.ravel())
    return f"TITLE \"postprod legaliser, {depth}-bit Y'CbCr\"\nLUT_3D_SIZE {size}\n{lines}"


def lut_file(path: Path, depth: int) -> TextFile:
    """The LUT for ``depth``-bit pictures, to write at ``path`` before the render."""
    return TextFile(path, cube_lut(depth))


_PLANAR_444 = {8: ("yuv444p", "gbrp"), 10: ("yuv444p10le", "gbrp10le"), 12: ("yuv444p12le", "gbrp12le")}


def bit_depth(pix_fmt: str) -> int:
    """Bits per sample of a planar Y'CbCr format name (``yuv422p10le`` -> 10)."""
    for depth in (10, 12):
        if f"p{depth}" in pix_fmt:
            return depth
    return 8


def legalise(stream, pix_fmt: str, lut_path: Path):
    """``stream`` through the legaliser LUT at ``lut_path`` (see :func:`lut_file`), in the 4:4:4
    format of ``pix_fmt``'s depth; the caller subsamples to the encoder's format afterwards."""
    yuv, gbr = _PLANAR_444[bit_depth(pix_fmt)]
    # Plane i of the output is plane i of the input: Y' -> G, Cb -> B, Cr -> R, values untouched.
    relabel = {"map1p": 1, "map2p": 2}
    return (
        stream.filter("format", yuv)
        .filter("mergeplanes", format=gbr, **relabel)
        .filter("lut3d", file=str(lut_path), interp="tetrahedral")
        .filter("mergeplanes", format=yuv, **relabel)
    )
