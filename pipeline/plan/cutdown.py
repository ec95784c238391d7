"""Duration cut-downs: a 6, 15 or 30 second version of a longer sequence, to the frame.

The sequence is split into *units*: the job's shots, further split at the cuts the analysis found
inside them. Units are ranked by how much happens in them (mean motion of their analysed samples)
and kept whole, best first, while they fit. What is left is filled with a window trimmed from the
best remaining unit, placed where both its ends fall on quiet points of the sound (low level at the
cut itself, not within :data:`~pipeline.analysis.sound_activity.WORD_GUARD_S` after a sound starts nor just before one) and, among
equally quiet places, nearest the unit's middle. When no single window of that length has two
quiet ends (its length is fixed, so its ends keep one distance apart), the remainder is split
between two windows from two units, which frees that distance. Kept material plays in sequence
order, joined by cuts; the result is a new job whose shots add up to exactly the target's frame
count at the deliverable's rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from pipeline.errors import JobError
from pipeline.model.job import Deliverable, Job, Shot
from pipeline.media.probe import MediaInfo
from pipeline.analysis.reframe import ReframeAnalysis
from pipeline.timeline.sequence import shot_bounds_s
from pipeline.model.timebase import parse_time, seconds_text, seconds_to_frames
from pipeline.analysis.sound_activity import SILENCE_DB, SoundActivity
from pipeline.plan.caption_timing import overlay_cues
from pipeline.model.overlay_schema import InlineCue, Overlay

MIN_SEGMENT_S = Fraction(1)
"""A trimmed piece shorter than this is a flash frame, not a shot: avoided where possible."""


@dataclass(frozen=True)
class Unit:
    """A stretch of one job shot between cuts, at the cut-down's frame rate."""

    shot: int
    """Index of the job shot it belongs to."""
    source: Path
    """The shot's source."""
    first_frame: int
    """First source frame (counted at the cut-down's rate from the source's first frame)."""
    frame_count: int
    """Length in frames."""
    activity: float
    """Mean motion of the analysed samples inside, 8-bit levels."""
    starts_shot: bool = True
    """Its first frame is the shot's first: a cut the edit already has. False at a picture cut found
    inside the shot, where the shot's sound goes on across."""
    ends_shot: bool = True
    """Its end is the shot's end (else a picture cut inside the shot)."""


@dataclass(frozen=True)
class Piece:
    """A kept stretch of source in the cut-down."""

    unit: Unit
    """The unit it comes from."""
    first_frame: int
    """First source frame, at the cut-down's rate."""
    frame_count: int
    """Length in frames."""

    @property
    def whole(self) -> bool:
        """True when the whole unit is kept (both ends on shot boundaries)."""
        return (self.first_frame, self.frame_count) == (self.unit.first_frame, self.unit.frame_count)


def units_of(job: Job, media: dict[Path, MediaInfo], analyses: dict[Path, ReframeAnalysis],
             frame_rate: Fraction) -> list[Unit]:
    """The job's shots split at the cuts found inside them, in sequence order."""
    units = []
    for number, shot in enumerate(job.shots):
        in_s, out_s = shot_bounds_s(shot, media[shot.source], f"shots.{number}")
        start, end = seconds_to_frames(in_s, frame_rate), seconds_to_frames(out_s, frame_rate)
        analysis = analyses.get(shot.source)
        cuts = []
        if analysis is not None:
            cuts = [frame for frame in (seconds_to_frames(Fraction(t).limit_denominator(100000), frame_rate)
                                        for t in analysis.cut_times_s) if start < frame < end]
        edges = [start, *cuts, end]
        for first, last in zip(edges[:-1], edges[1:]):
            activity = 0.0
            if analysis is not None and len(analysis.sample_times_s):
                inside = (analysis.sample_times_s >= first / float(frame_rate)) & (
                    analysis.sample_times_s < last / float(frame_rate))
                activity = float(analysis.activity[inside].mean()) if inside.any() else 0.0
            units.append(Unit(number, shot.source, first, last - first, activity,
                              starts_shot=first == start, ends_shot=last == end))
    return units


def choose_pieces(units: list[Unit], target_frames: int, frame_rate: Fraction,
                  sounds: dict[Path, SoundActivity | None]) -> list[Piece]:
    """Pieces adding up to exactly ``target_frames``, in sequence order.

    Raises:
        JobError: the units are shorter than the target altogether.
    """
    total = sum(unit.frame_count for unit in units)
    if total < target_frames:
        raise JobError(f"the sequence has {total} frames, fewer than the {target_frames} of the cut-down")
    min_frames = max(1, seconds_to_frames(MIN_SEGMENT_S, frame_rate))
    ranked = sorted(range(len(units)), key=lambda index: -units[index].activity)
    edge_costs = [_edge_costs(unit, frame_rate, sounds.get(unit.source)) for unit in units]
    kept: list[int] = []
    remaining = target_frames
    for index in ranked:
        length = units[index].frame_count
        if _cuts_a_sound(units[index], frame_rate, sounds.get(units[index].source)):
            continue
        if length <= remaining and (remaining - length == 0 or remaining - length >= min_frames):
            kept.append(index)
            remaining -= length
    pieces = {index: Piece(units[index], units[index].first_frame, units[index].frame_count) for index in kept}
    while remaining:
        free = [index for index in ranked if index not in pieces]
        hosts = [index for index in free if units[index].frame_count >= remaining]
        if hosts and (remaining >= min_frames or not kept):
            # The host whose best window cuts the sound least; the more active one among equals.
            cost, host, start = _best_host(units, hosts, remaining, edge_costs)
            pieces[host] = Piece(units[host], start, remaining)
            if cost > SILENCE_DB:
                split = _best_split(units, free, remaining, min_frames, edge_costs)
                if split is not None and split[0] < cost:
                    del pieces[host]
                    pieces.update({index: Piece(units[index], first, length) for index, first, length in split[1]})
            remaining = 0
        elif kept:
            # Give back the least active whole unit: its frames and the remainder make a piece long
            # enough to be a shot, or fit a longer unit.
            dropped = kept.pop()
            del pieces[dropped]
            remaining += units[dropped].frame_count
        else:
            # No single unit can hold the rest: fill with trimmed pieces, best first.
            for index in free:
                if not remaining:
                    break
                length = min(remaining, units[index].frame_count)
                _, start = _best_window(units[index], length, edge_costs[index])
                pieces[index] = Piece(units[index], start, length)
                remaining -= length
    return [pieces[index] for index in sorted(pieces)]


def _cuts_a_sound(unit: Unit, frame_rate: Fraction, sound: SoundActivity | None) -> bool:
    """Whether keeping ``unit`` whole puts a cut into its source's sound near an onset: at an edge
    that is a picture cut inside the shot (the shot's own edges are cuts the edit already has)."""
    if sound is None:
        return False
    edges = []
    if not unit.starts_shot:
        edges.append(unit.first_frame)
    if not unit.ends_shot:
        edges.append(unit.first_frame + unit.frame_count)
    return any(sound.near_onset(frame / float(frame_rate)) for frame in edges)


def _edge_costs(unit: Unit, frame_rate: Fraction, sound: SoundActivity | None) -> np.ndarray:
    """The cost of a cut before each frame of ``unit`` and after its last, dB, shape (frames + 1,).

    The shot's own edges are cuts the edit already has: they cost the sound nothing more. Every
    other edge, a picture cut inside the shot included, trims the shot's sound.
    """
    costs = np.full(unit.frame_count + 1, SILENCE_DB)
    if sound is not None:
        rate = float(frame_rate)
        first = 1 if unit.starts_shot else 0
        last = unit.frame_count if unit.ends_shot else unit.frame_count + 1
        costs[first:last] = [sound.cut_cost_db((unit.first_frame + offset) / rate) for offset in range(first, last)]
    return costs


def _best_window(unit: Unit, length: int, edge_costs: np.ndarray) -> tuple[float, int]:
    """The ``length``-frame window of ``unit`` whose ends cut the sound least: its cost (the worse
    end, rounded to 3 dB so near-equals count as equal) and first frame.

    Among the quietest windows (within 1 dB of the best), the most central keeps the middle of the
    action, which generators put there.
    """
    worst = np.maximum(edge_costs[: unit.frame_count - length + 1], edge_costs[length:])
    candidates = np.flatnonzero(worst <= worst.min() + 1.0)
    middle = (unit.frame_count - length) / 2
    offset = int(candidates[np.argmin(np.abs(candidates - middle))])
    return 3 * round(float(worst.min()) / 3), unit.first_frame + offset


def _best_host(units: list[Unit], hosts: list[int], length: int,
               edge_costs: list[np.ndarray]) -> tuple[float, int, int]:
    """(cost, unit index, first frame) of the quietest ``length``-frame window among ``hosts``
    (ranked best first, which breaks ties)."""
    windows = [(*_best_window(units[index], length, edge_costs[index]), index) for index in hosts]
    cost, start, host = min(windows, key=lambda window: (window[0], hosts.index(window[2])))
    return cost, host, start


def _best_split(units: list[Unit], free: list[int], length: int, min_frames: int,
                edge_costs: list[np.ndarray]) -> tuple[float, list[tuple[int, int, int]]] | None:
    """``length`` frames as two windows of at least ``min_frames`` from two of the ``free`` units
    (ranked best first): the split whose worse window cuts the sound least, as (cost, [(unit index,
    first frame, frames), ...]); None when no two units can hold it."""
    best: tuple[float, list[tuple[int, int, int]]] | None = None
    windows: dict[tuple[int, int], tuple[float, int]] = {}

    def window(index: int, frames: int) -> tuple[float, int]:
        if (index, frames) not in windows:
            windows[index, frames] = _best_window(units[index], frames, edge_costs[index])
        return windows[index, frames]

    for first_length in range(min_frames, length - min_frames + 1):
        for one in free:
            if units[one].frame_count < first_length:
                continue
            for two in free:
                if two == one or units[two].frame_count < length - first_length:
                    continue
                cost_one, start_one = window(one, first_length)
                cost_two, start_two = window(two, length - first_length)
                cost = max(cost_one, cost_two)
                if best is None or cost < best[0]:
                    best = (cost, [(one, start_one, first_length), (two, start_two, length - first_length)])
                    if cost <= SILENCE_DB:
                        return best
    return best


def cutdown_job(
    job: Job, deliverable: Deliverable, pieces: list[Piece], frame_rate: Fraction,
    sequence_rate: Fraction, sequence_s: Fraction, piece_starts_s: list[Fraction] | None = None,
) -> tuple[Job, list[str]]:
    """A job of the kept pieces joined by cuts, with ``deliverable`` as its only deliverable, and a
    note for each overlay the cut-down cannot carry (see :func:`cutdown_overlays`). With
    ``piece_starts_s`` (where each piece starts in the whole sequence, seconds), captions follow the
    pieces.

    In and out points are written as seconds exact to the nanosecond on the cut-down's frame grid,
    so every piece converts back to exactly its frames. The cut-down counts frames in the job at the
    whole sequence's rate (``sequence_rate``), whatever its first piece's source.
    """
    shots = []
    for piece in pieces:
        original = job.shots[piece.unit.shot]
        shots.append(Shot.model_validate({
            "source": original.source,
            "in": seconds_text(Fraction(piece.first_frame) / frame_rate),
            "out": seconds_text(Fraction(piece.first_frame + piece.frame_count) / frame_rate),
            "fill": original.fill,
        }))
    cut_s = Fraction(sum(piece.frame_count for piece in pieces)) / frame_rate
    kept = None if piece_starts_s is None else [
        (start, Fraction(piece.frame_count) / frame_rate) for start, piece in zip(piece_starts_s, pieces, strict=True)]
    overlays, notes = cutdown_overlays(job, cut_s, sequence_s, sequence_rate, kept)
    return job.model_copy(update={
        "shots": shots,
        "deliverables": [deliverable],
        "overlays": overlays,
        "sequence": job.sequence.model_copy(update={"frame_rate": sequence_rate}),
    }), notes


def cutdown_overlays(job: Job, cut_s: Fraction, sequence_s: Fraction, sequence_rate: Fraction,
                     pieces_s: list[tuple[Fraction, Fraction]] | None = None) -> tuple[list, list[str]]:
    """The job's overlays re-timed for a cut-down ``cut_s`` long, and a note for each one dropped.

    An end card moves to the cut-down's end, keeping its length; other layers keep their times,
    cut short at the cut-down's end. Captions follow the dialogue: given ``pieces_s`` (each kept
    piece's start in the whole sequence and its length, seconds, in cut-down order), each cue keeps
    the part of it inside a kept piece, moved to where that piece plays (see :func:`cutdown_cues`);
    without it they are dropped. Layers timed from a shot (the shot may be gone or trimmed) and
    layers that start after the cut-down ends are dropped.
    """
    kept, notes = [], []
    for number, overlay in enumerate(job.overlays):
        label = f"overlays.{number} ({overlay.kind})"
        if overlay.kind == "captions" and pieces_s is not None and overlay.shot is None:
            cues = cutdown_cues(overlay, f"overlays.{number}", sequence_rate, pieces_s)
            if cues:
                kept.append(overlay.model_copy(update={
                    "captions": None, "cues": cues, "start": 0, "end": seconds_text(cut_s), "duration": None}))
            else:
                notes.append(f"{label} left out of the cut-down: none of its cues falls in a kept piece")
            continue
        if overlay.kind == "captions" or overlay.shot is not None:
            reason = "captions follow the whole programme" if overlay.kind == "captions" else "it is timed from a shot"
            notes.append(f"{label} left out of the cut-down: {reason}")
            continue
        start_s = parse_time(overlay.start, sequence_rate)
        if overlay.end is not None:
            end_s = parse_time(overlay.end, sequence_rate)
        elif overlay.duration is not None:
            end_s = start_s + parse_time(overlay.duration, sequence_rate)
        else:
            end_s = sequence_s
        if overlay.kind == "end_card":
            start_s, end_s = max(Fraction(0), cut_s - (end_s - start_s)), cut_s
        elif start_s >= cut_s:
            notes.append(f"{label} left out of the cut-down: it starts at {float(start_s):.3f} s, after its "
                         f"{float(cut_s):.3f} s")
            continue
        kept.append(overlay.model_copy(update={
            "start": seconds_text(start_s), "end": seconds_text(min(end_s, cut_s)), "duration": None,
        }))
    return kept, notes


def cutdown_cues(overlay: Overlay, where: str, sequence_rate: Fraction,
                 pieces_s: list[tuple[Fraction, Fraction]]) -> list[InlineCue]:
    """A captions overlay's cues in cut-down time: the part of each cue inside each kept piece
    (start in the sequence, length; seconds), placed where the piece plays in the cut-down.

    Raises:
        JobError: the overlay's caption file is broken.
    """
    origin = parse_time(overlay.start, sequence_rate)
    end = parse_time(overlay.end, sequence_rate) if overlay.end is not None else None
    if end is None and overlay.duration is not None:
        end = origin + parse_time(overlay.duration, sequence_rate)
    cues = []
    for cue in overlay_cues(overlay, where):
        first, last = origin + cue.start_s, origin + cue.end_s
        if end is not None:
            last = min(last, end)
        played = Fraction(0)
        for start, length in pieces_s:
            inside_first, inside_last = max(first, start), min(last, start + length)
            # A sliver under one frame would show on no frame.
            if inside_last - inside_first >= 1 / sequence_rate:
                cues.append(InlineCue(start=seconds_text(played + inside_first - start),
                                      end=seconds_text(played + inside_last - start), text=cue.text))
            played += length
    return cues
