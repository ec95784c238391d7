"""What a stutter is: a frame that repeats (or nearly repeats) its predecessor while the picture
around it moves. De-stutter (:mod:`pipeline.prestage.stutter`) rebuilds such frames in a source; QC's
stutter check reports them in a deliverable; both find them with :func:`repeated_frames`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

COPY_RATIO = 0.45
"""A frame repeats its predecessor when their mean absolute difference is at most this share of the
difference of each moving pair either side. Tuned on half the development clips with repeats
inserted: 0.3 to 0.5 find the same 98 % of them with no false hit on real motion; the higher end
keeps a repeat next to a slowly moving pair (a talking head between words) ..."""
COPY_PSNR_DB = 40.0
"""... and the two are at least this alike (PSNR of the analysed luma): a near copy, not motion that
slowed down for a few frames between two fast ones."""
MIN_MOVING_DIFFERENCE = 0.15
"""Mean absolute difference (8-bit levels) a pair must reach to count as moving: below it a repeat
would be invisible (a talking head between words differs by 0.2 at QC's 160 px analysis width)."""
MAX_MOVING_DIFFERENCE = 40.0
"""... and may reach at most: a larger one is a cut or a flash, which says nothing of the motion
(the fastest development clip, an 8 fps gallop, differs by 33 between frames)."""
MAX_RUN = 6
"""Longest run of repeats rebuilt; a longer hold is a freeze, left as it is."""
IDENTICAL_PSNR_DB = 100.0
"""PSNR given to two identical frames."""


def psnr_db(difference: np.ndarray) -> float:
    """PSNR of two 8-bit pictures from their absolute difference, dB."""
    mean_square = float(np.mean(np.square(difference, dtype=np.float32)))
    return IDENTICAL_PSNR_DB if mean_square == 0 else min(IDENTICAL_PSNR_DB, 10 * np.log10(255**2 / mean_square))


def repeated_frames(differences: Sequence[float], psnrs_db: Sequence[float]) -> tuple[int, ...]:
    """Indices of the frames that repeat their predecessor while the picture around them moves.

    Args:
        differences: Per frame, its mean absolute 8-bit luma difference from its predecessor (the
            first frame's value is not read).
        psnrs_db: Per frame, its PSNR against its predecessor (the first frame's is not read).

    A run of up to :data:`MAX_RUN` frames counts when each of them is a near copy of its
    predecessor (:data:`COPY_PSNR_DB`) differing by at most :data:`COPY_RATIO` of both the pair
    before the run and the pair after it, and both of those move (between
    :data:`MIN_MOVING_DIFFERENCE` and :data:`MAX_MOVING_DIFFERENCE`).
    """

    def moves(difference: float) -> bool:
        return MIN_MOVING_DIFFERENCE <= difference <= MAX_MOVING_DIFFERENCE

    repeats: list[int] = []
    index = 2
    while index < len(differences):
        before = differences[index - 1]
        if not moves(before) or differences[index] > COPY_RATIO * before:
            index += 1
            continue
        end = index
        while end + 1 < len(differences) and end + 1 - index < MAX_RUN and differences[end + 1] <= COPY_RATIO * before:
            end += 1
        if end + 1 < len(differences):
            after = differences[end + 1]
            limit = COPY_RATIO * min(before, after)
            if moves(after) and all(differences[run] <= limit and psnrs_db[run] >= COPY_PSNR_DB
                                    for run in range(index, end + 1)):
                repeats.extend(range(index, end + 1))
                index = end + 2
                continue
        index += 1
    return tuple(repeats)
