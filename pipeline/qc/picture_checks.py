"""QC's picture checks: black, freeze, stutter, legal levels and flash risk, judged on the per-frame
measures of the one decode (:mod:`pipeline.render.picture_measures`).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from pipeline.analysis.stutter import COPY_RATIO, repeated_frames
from pipeline.qc.report import Check, Fault, fault_status, true_runs
from pipeline.render.picture_measures import (
    BLACK_PIXEL_LEVEL,
    FLASH_DARK_CD_M2,
    FLASH_STEP_CD_M2,
    GAMUT_RANGE,
    LEGAL_LUMA,
    PictureMeasures,
)

BLACK_PICTURE_SHARE = 0.98
"""A frame is black when this share of its pixels is."""
BLACK_MIN_S = 0.5
"""Black shorter than this is a transition, not a fault."""
FREEZE_MEAN_DIFF = 0.5
"""Two frames are the same picture when their mean absolute difference is under this (8-bit levels,
at analysis size) ..."""
FREEZE_MAX_DIFF = 6.0
"""... and no analysis pixel differs by more than this (so a small moving object is motion)."""
FREEZE_MIN_S = 1.0
"""A picture held this long or longer is a freeze."""
STUTTER_MERGE_S = 0.5
"""Repeated frames closer than this are reported as one stutter fault."""
STUTTER_DETAIL_MIN = 4.0
"""A repeated frame is a stutter only if it has detail (luma standard deviation, 8-bit levels): two
frames of a flat colour (a flash, a fade's end) are alike without anything having stopped moving."""
ILLEGAL_SHARE_MAX = 0.01
"""A frame fails the levels check when more than this share of its (averaged) samples is outside."""
FLASH_AREA_SHARE = 0.25
"""A transition counts when more than this share of the screen makes it in the same frame."""
FLASHES_PER_S_MAX = 3
"""More flashes than this in any one second fail (Ofcom: a flash is a pair of opposing transitions)."""

def picture_checks(picture: PictureMeasures, frame_rate: Fraction) -> list[Check]:
    """Black, freeze, stutter, levels and flash, in report order."""
    return [check(picture, frame_rate) for check in (_black, _freeze, _stutter, _levels, _flash)]


def _black_frames(picture: PictureMeasures) -> np.ndarray:
    """True for the frames that are black."""
    return picture.dark_share >= BLACK_PICTURE_SHARE


def _frame_faults(runs: list[tuple[int, int]], frame_rate: Fraction) -> tuple[Fault, ...]:
    rate = float(frame_rate)
    return tuple(Fault(first / rate, last / rate) for first, last in runs)


def _black(picture: PictureMeasures, frame_rate: Fraction) -> Check:
    minimum = round(BLACK_MIN_S * float(frame_rate))
    runs = [run for run in true_runs(_black_frames(picture)) if run[1] - run[0] >= max(1, minimum)]
    faults = _frame_faults(runs, frame_rate)
    total = sum(last - first for first, last in runs) / float(frame_rate)
    return Check(
        "black", fault_status(faults, "warn"), round(total, 3), "seconds of black",
        f"no black picture of {BLACK_MIN_S} s or more ({BLACK_PICTURE_SHARE:.0%} of pixels under "
        f"luma {BLACK_PIXEL_LEVEL:.0f})",
        f"{len(faults)} stretch(es) of black" if faults else "",
        faults,
    )


def _same_picture(picture: PictureMeasures) -> np.ndarray:
    """True for frames that repeat their predecessor (the first frame repeats nothing)."""
    return (picture.mean_diff <= FREEZE_MEAN_DIFF) & (picture.max_diff <= FREEZE_MAX_DIFF)


def _freezetrue_runs(picture: PictureMeasures, frame_rate: Fraction) -> list[tuple[int, int]]:
    """Held pictures of FREEZE_MIN_S or more, black excluded: (first frame shown, end)."""
    held = _same_picture(picture) & ~_black_frames(picture)
    minimum = round(FREEZE_MIN_S * float(frame_rate))
    # A run of repeats starts one frame earlier: the frame that is repeated.
    return [(first - 1, last) for first, last in true_runs(held) if last - first + 1 >= minimum]


def _freeze(picture: PictureMeasures, frame_rate: Fraction) -> Check:
    runs = _freezetrue_runs(picture, frame_rate)
    faults = _frame_faults(runs, frame_rate)
    longest = max((last - first for first, last in runs), default=0) / float(frame_rate)
    return Check(
        "freeze", fault_status(faults, "warn"), round(longest, 3), "longest freeze, seconds",
        f"no picture held {FREEZE_MIN_S} s or more", f"{len(faults)} freeze(s)" if faults else "", faults,
    )


def _stutter(picture: PictureMeasures, frame_rate: Fraction) -> Check:
    """Single or short runs of repeated frames between frames that move (the definition de-stutter
    uses, :func:`pipeline.analysis.stutter.repeated_frames`), outside freezes and flat pictures."""
    frozen = np.zeros(len(picture.mean_diff), bool)
    for first, last in _freezetrue_runs(picture, frame_rate):
        frozen[first:last] = True
    repeats = [index for index in repeated_frames(picture.mean_diff, picture.psnr_db)
               if not frozen[index] and picture.detail[index] >= STUTTER_DETAIL_MIN]
    rate = float(frame_rate)
    faults: list[Fault] = []
    for index in repeats:
        start, end = index / rate, (index + 1) / rate
        if faults and start - faults[-1].end_s < STUTTER_MERGE_S:
            faults[-1] = Fault(faults[-1].start_s, end)
        else:
            faults.append(Fault(start, end))
    return Check(
        "stutter", fault_status(tuple(faults), "warn"), len(repeats), "repeated frames in moving picture",
        f"no frame repeating its predecessor (under {COPY_RATIO:.0%} of the change either side of it)",
        f"{len(repeats)} repeated frame(s)" if repeats else "", tuple(faults),
    )


def _levels(picture: PictureMeasures, frame_rate: Fraction) -> Check:
    luma, gamut = picture.illegal_luma, picture.out_of_gamut
    limit = (f"at most {ILLEGAL_SHARE_MAX:.0%} of a frame outside luma {LEGAL_LUMA[0]}-{LEGAL_LUMA[1]} "
             f"(8-bit) or R'G'B' {GAMUT_RANGE[0]:.0%} to {GAMUT_RANGE[1]:.0%} (EBU R 103)")
    worst = float(max(luma.max(initial=0), gamut.max(initial=0)))
    if picture.full_range:
        return Check("levels", "pass", round(worst, 4), "largest share outside", limit,
                     "full-range file: limited-range limits do not apply")
    bad = (luma > ILLEGAL_SHARE_MAX) | (gamut > ILLEGAL_SHARE_MAX)
    faults = _frame_faults(true_runs(bad), frame_rate)
    detail = ""
    if faults:
        detail = (f"{int(bad.sum())} frame(s); worst {luma.max():.1%} of luma outside the legal range, "
                  f"{gamut.max():.1%} of pixels out of gamut")
    return Check("levels", fault_status(faults, "fail"), round(worst, 4), "largest share outside", limit, detail, faults)


def _flash(picture: PictureMeasures, frame_rate: Fraction) -> Check:
    """Transitions of over a quarter of the screen, counted in every one-second window."""
    transitions = picture.flash_area > FLASH_AREA_SHARE
    window = max(1, round(float(frame_rate)))
    counts = np.convolve(transitions.astype(int), np.ones(window, int))[: len(transitions)]
    flashes_per_s = counts / 2
    too_many = flashes_per_s > FLASHES_PER_S_MAX
    rate = float(frame_rate)
    faults: list[Fault] = []
    for index in np.flatnonzero(too_many):
        # From the first to the last transition of the window that has too many.
        in_window = np.flatnonzero(transitions[max(0, index - window + 1) : index + 1]) + max(0, index - window + 1)
        start, end = float(in_window[0] / rate), float((in_window[-1] + 1) / rate)
        if faults and start <= faults[-1].end_s:
            faults[-1] = Fault(faults[-1].start_s, end)
        else:
            faults.append(Fault(start, end))
    worst = float(flashes_per_s.max(initial=0))
    return Check(
        "flash", fault_status(tuple(faults), "fail"), worst, "most flashes in one second",
        f"at most {FLASHES_PER_S_MAX} flashes a second over more than {FLASH_AREA_SHARE:.0%} of the screen "
        f"(Ofcom / ITU-R BT.1702: {FLASH_STEP_CD_M2:.0f} cd/m2 transitions, darker state under "
        f"{FLASH_DARK_CD_M2:.0f} cd/m2; red flashes are not assessed)",
        f"up to {worst:g} flashes in one second" if faults else "", tuple(faults),
    )
