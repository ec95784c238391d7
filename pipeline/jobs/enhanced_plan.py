"""Planning a job whose deliverables need the Python pre-stage (:mod:`pipeline.prestage.enhance_stage`).

Deliverables that need different intermediates of one source (flow to 60 fps for one, to 25 for
another, or none) are planned as separate groups over their own sources. Intermediates are hidden
files beside the outputs, listed in the plan's ``scratch_files``: every render of a group reads
them, so they are removed once the whole job is done or has failed, never with one render.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.media.probe import MediaInfo, probe
from pipeline.model.job import Job
from pipeline.model.presets import Preset
from pipeline.model.timebase import seconds_text
from pipeline.plan.planner import JobPlan, picture_format, plan_job, resolve_preset
from pipeline.prestage.enhance_stage import StageKey, make_intermediate, stage_key
from pipeline.timeline.sequence import sequence_rate, shot_bounds_s

SOURCE_KEYED_OPTIONS = ("sync_corrections", "reframe")
"""``plan_job`` options that are dicts by source path."""


def plan_enhanced_job(
    job: Job,
    media: dict[Path, MediaInfo],
    presets: dict[str, Preset],
    out_dir: Path,
    *,
    made: dict[StageKey, Path] | None = None,
    **plan_options,
) -> JobPlan:
    """:func:`pipeline.plan.planner.plan_job`, with the Python pre-stage run first where a deliverable needs it.

    Without ``flow``, ``destutter`` or ``learned`` anywhere this is exactly ``plan_job``. Otherwise
    the intermediates are made (this is where the frame-level work happens) and each group of
    deliverables with the same needs is planned over its own sources, at the job's own sequence
    rate; the renders are returned together, the intermediates they read as the plan's
    ``scratch_files``.

    Args:
        job, media, presets, out_dir: As for ``plan_job``.
        made: Intermediates already made, by key, shared between calls (a job's whole-length
            deliverables and its cut-downs): one found here is read, not made again, and each one
            made is added. If planning fails, the ones this call made are removed (and dropped
            from ``made``); the rest stay the caller's to remove.
        **plan_options: ``plan_job``'s keyword arguments; those keyed by source
            (:data:`SOURCE_KEYED_OPTIONS`) follow their source into its intermediate.
    """
    sources = list(dict.fromkeys(shot.source for shot in job.shots))
    first = media[job.shots[0].source]
    needs: list[tuple[StageKey | None, ...]] = []
    for index in range(len(job.deliverables)):
        picture = picture_format(resolve_preset(job, index, presets), first)
        needs.append(tuple(stage_key(picture.enhance, media[source], picture) for source in sources))
    if not any(key for keys in needs for key in keys):
        return plan_job(job, media, presets, out_dir, **plan_options)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = {} if made is None else made
    made_here: list[StageKey] = []
    read: dict[Path, None] = {}
    renders = []
    groups: dict[tuple, list[int]] = {}
    for index, keys in enumerate(needs):
        groups.setdefault(keys, []).append(index)
    # Transitions, split edits, the music fade and overlays count frames at the sequence rate, which
    # defaults to the first source's: an intermediate at another rate in its place must not change it.
    sequence = job.sequence.model_copy(update={"frame_rate": sequence_rate(job, media)})
    try:
        for keys, indices in groups.items():
            substitutes: dict[Path, Path] = {}
            for source, key in zip(sources, keys, strict=True):
                if key is not None:
                    if key not in made:
                        made[key] = make_intermediate(key, media[source], out_dir / key.file_name(job.name))
                        made_here.append(key)
                    substitutes[source] = made[key]
            read.update(dict.fromkeys(substitutes.values()))
            group_media = {**media, **{path: probe(path) for path in substitutes.values()}}
            group_job = job.model_copy(update={
                "shots": [_retarget(shot, number, media[shot.source], substitutes) for number, shot in enumerate(job.shots)],
                "deliverables": [job.deliverables[index] for index in indices],
                "sequence": sequence,
            })
            options = dict(plan_options)
            for by_source in SOURCE_KEYED_OPTIONS:
                if options.get(by_source):
                    options[by_source] = {substitutes.get(path, path): value for path, value in options[by_source].items()}
            renders += plan_job(group_job, group_media, presets, out_dir, **options).renders
    except BaseException:
        for key in made_here:
            made.pop(key).unlink(missing_ok=True)
        raise
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
