"""A job's cut-downs as jobs of their own (:mod:`pipeline.plan.cutdown`), chosen from the facts."""

from __future__ import annotations

import logging
from fractions import Fraction

from pipeline.errors import JobError
from pipeline.jobs.analyses import expanded
from pipeline.model.job import Job
from pipeline.model.presets import Preset
from pipeline.model.timebase import seconds_to_frames
from pipeline.plan.cutdown import choose_pieces, cutdown_job, units_of
from pipeline.plan.facts import JobFacts
from pipeline.plan.outputs import picture_format, resolve_preset
from pipeline.timeline.sequence import build_timeline, sequence_layout, sequence_rate

log = logging.getLogger(__name__)


def whole_programme(job: Job) -> Job:
    """``job`` with its whole-length deliverables only (its cut-downs left out)."""
    return job.model_copy(update={"deliverables": [d for d in expanded(job).deliverables if d.duration_s is None]})


def cutdown_programmes(job: Job, facts: JobFacts, presets: dict[str, Preset]) -> list[Job]:
    """One job per cut-down deliverable: the pieces of the sequence it keeps, chosen by the facts'
    reframing analysis (cuts, motion) and sound activity, adding up to its length to the frame.

    Raises:
        JobError: a cut-down longer than the sequence, or one that cannot be filled.
    """
    media = facts.media
    every = expanded(job)
    # Cut-downs re-time overlays against the whole sequence, counted at its own rate.
    edit_rate = sequence_rate(job, media)
    sequence_s = Fraction(sequence_layout(job, media).frame_count) / edit_rate
    programmes = []
    for index, deliverable in enumerate(every.deliverables):
        if deliverable.duration_s is None:
            continue
        rate = picture_format(resolve_preset(every, index, presets), media[job.shots[0].source]).frame_rate
        target = seconds_to_frames(Fraction(str(deliverable.duration_s)), rate)
        try:
            pieces = choose_pieces(units_of(job, media, facts.reframe, rate), target, rate, facts.sound_activity)
        except JobError as error:
            raise JobError(f"deliverables ({deliverable.label}): {error}") from None
        whole = build_timeline(job.shots, [media[shot.source] for shot in job.shots], rate, 48000, edit_rate)
        piece_starts = [Fraction(whole.spans[piece.unit.shot].timeline_start_frame + piece.first_frame
                                 - whole.spans[piece.unit.shot].source_start_frame) / rate for piece in pieces]
        cut, notes = cutdown_job(job, deliverable, pieces, rate, edit_rate, sequence_s, piece_starts)
        for note in notes:
            log.warning("%s: %s", deliverable.label, note)
        programmes.append(cut)
    return programmes
