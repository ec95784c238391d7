"""Planning a job whose deliverables need the Python pre-stage (:mod:`pipeline.prestage.enhance_stage`).

The intermediates are made first, as a step of their own (:func:`make_intermediates`, for every
programme of a job at once: its whole-length deliverables and each cut-down), then planning reads
them (:func:`plan_enhanced_job`). Deliverables that need different intermediates of one source
(flow to 60 fps for one, to 25 for another, or none) are planned as separate groups over their own
sources. Intermediates are hidden files beside the outputs, listed in the plan's ``scratch_files``:
every render of a group reads them, so they are removed once the whole job is done or has failed,
never with one render.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipeline.media.probe import MediaInfo, probe
from pipeline.model.job import Job
from pipeline.model.presets import Preset
from pipeline.model.timebase import seconds_text
from pipeline.plan.facts import JobFacts
from pipeline.plan.outputs import JobPlan, picture_format, resolve_preset
from pipeline.plan.planner import plan_job
from pipeline.prestage.enhance_stage import StageKey, make_intermediate, stage_key
from pipeline.timeline.sequence import sequence_rate, shot_bounds_s



def _needs(job: Job, media: Mapping[Path, MediaInfo], presets: dict[str, Preset]) -> list[tuple[StageKey | None, ...]]:
    """For each deliverable, the intermediate each source needs (None: read as it is), in source order.

    Raises:
        JobError: a learned upscale without a model.
    """
    sources = list(dict.fromkeys(shot.source for shot in job.shots))
    first = media[job.shots[0].source]
    needs = []
    for index in range(len(job.deliverables)):
        picture = picture_format(resolve_preset(job, index, presets), first)
        needs.append(tuple(stage_key(picture.enhance, media[source], picture) for source in sources))
    return needs


def make_intermediates(programmes: list[Job], media: Mapping[Path, MediaInfo], presets: dict[str, Preset],
                       out_dir: Path) -> dict[StageKey, Path]:
    """Make every intermediate the ``programmes`` (a job's whole-length deliverables and its
    cut-downs) need, each once, beside the outputs: the frame-level work (optical flow, de-stutter,
    a learned upscale) happens here. If one fails, those already made are removed.

    Raises:
        FFmpegError: decoding or encoding failed.
        JobError: a learned upscale's model cannot be used.
    """
    keys = {key: None for programme in programmes for needs in _needs(programme, media, presets)
            for key in needs if key is not None}
    made: dict[StageKey, Path] = {}
    if not keys:
        return made
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for key in keys:
            made[key] = make_intermediate(key, media[key.source], out_dir / key.file_name(programmes[0].name))
    except BaseException:
        for path in made.values():
            path.unlink(missing_ok=True)
        raise
    return made


def plan_enhanced_job(
    job: Job,
    facts: JobFacts,
    presets: dict[str, Preset],
    out_dir: Path,
    intermediates: Mapping[StageKey, Path],
    *,
    one_process: bool = True,
) -> JobPlan:
    """:func:`pipeline.plan.planner.plan_job`, reading the intermediates a deliverable needs.

    Without ``flow``, ``destutter`` or ``learned`` anywhere this is exactly ``plan_job``. Otherwise
    each group of deliverables with the same needs is planned over its own sources, at the job's
    own sequence rate; the renders are returned together, the intermediates they read as the plan's
    ``scratch_files``.

    Args:
        job, facts, presets, out_dir, one_process: As for ``plan_job``.
        intermediates: The made intermediates by key (:func:`make_intermediates`), holding every one
            the job needs; what was measured of a source follows it into its intermediate.
    """
    media = facts.media
    sources = list(dict.fromkeys(shot.source for shot in job.shots))
    needs = _needs(job, media, presets)
    if not any(key for keys in needs for key in keys):
        return plan_job(job, facts, presets, out_dir, one_process=one_process)
    read: dict[Path, None] = {}
    renders = []
    groups: dict[tuple, list[int]] = {}
    for index, keys in enumerate(needs):
        groups.setdefault(keys, []).append(index)
    # Transitions, split edits, the music fade and overlays count frames at the sequence rate, which
    # defaults to the first source's: an intermediate at another rate in its place must not change it.
    sequence = job.sequence.model_copy(update={"frame_rate": sequence_rate(job, media)})
    for keys, indices in groups.items():
        substitutes = {source: intermediates[key] for source, key in zip(sources, keys, strict=True) if key is not None}
        read.update(dict.fromkeys(substitutes.values()))
        group_job = job.model_copy(update={
            "shots": [_retarget(shot, number, media[shot.source], substitutes)
                      for number, shot in enumerate(job.shots)],
            "deliverables": [job.deliverables[index] for index in indices],
            "sequence": sequence,
        })
        group_facts = facts.with_sources(substitutes, {path: probe(path) for path in substitutes.values()})
        renders += plan_job(group_job, group_facts, presets, out_dir, one_process=one_process).renders
    return JobPlan(job=job, renders=tuple(renders), scratch_files=tuple(read))


def _retarget(shot, number: int, media: MediaInfo, substitutes: dict[Path, Path]):
    """The shot reading its intermediate, its in and out points as exact seconds (frames and
    timecode were counted at the original's rate, which the intermediate may not share)."""
    if shot.source not in substitutes:
        return shot
    in_s, out_s = shot_bounds_s(shot, media, f"shots.{number}")
    update = {"source": substitutes[shot.source]}
    if shot.in_point is not None:
        update["in_point"] = seconds_text(in_s)
    if shot.out_point is not None:
        update["out_point"] = seconds_text(out_s)
    return shot.model_copy(update=update)
