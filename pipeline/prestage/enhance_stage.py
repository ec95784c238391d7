"""The Python pre-stage of enhancement: optical-flow rate conversion, de-stutter and the learned
upscaler run on each affected source once, before planning, into a lossless intermediate that the
planner then treats as the source.

An intermediate keeps its source's duration, start times and sound (copied untouched), so the
timeline arithmetic stays in :mod:`pipeline.timeline.sequence` and the sound stays in sync. Deliverables
that need different intermediates of one source (flow to 60 fps for one, to 25 for another, or none)
are planned as separate groups over their own sources. Intermediates are hidden files beside the
outputs, listed in the plan's ``scratch_files``: every render of a group reads them, so they are
removed once the whole job is done or has failed, never with one render.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pipeline.plan.conform import PictureFormat, place, source_color_matrix
from pipeline.plan.enhance import EnhanceSettings
from pipeline.errors import JobError
from pipeline.media.frames import IntermediateSpec, RawFormat, decode_frames, encode_intermediate, working_format
from pipeline.prestage.interpolate import FlowInterpolator, convert_rate, output_frame_count
from pipeline.model.job import Job
from pipeline.prestage.learned_upscale import OnnxUpscaler
from pipeline.media.runner import Progress
from pipeline.plan.planner import JobPlan, picture_format, plan_job, resolve_preset
from pipeline.model.presets import Preset
from pipeline.media.probe import MediaInfo, probe
from pipeline.timeline.sequence import sequence_rate, shot_bounds_s
from pipeline.prestage.stutter import destuttered, detect_stutter
from pipeline.model.timebase import format_rate, round_half_up, seconds_text

log = logging.getLogger(__name__)

SOURCE_KEYED_OPTIONS = ("sync_corrections", "reframe")
"""``plan_job`` options that are dicts by source path."""


@dataclass(frozen=True)
class StageKey:
    """What one intermediate is made of: a source and the Python-side work done to it."""

    source: Path
    """The original source file."""
    frame_rate: Fraction | None
    """Rate the flow interpolator converts to; None keeps the source's rate."""
    destutter: bool
    """Rebuild repeated frames first."""
    model: Path | None
    """ONNX super-resolution model to upscale with; None: no learned upscale."""

    def file_name(self, job_name: str) -> str:
        """A hidden name beside the outputs, distinct for each key."""
        digest = hashlib.sha256(repr(self).encode()).hexdigest()[:10]
        return f".{job_name}.{self.source.stem}.{digest}.enhanced.mov"


def stage_key(settings: EnhanceSettings, media: MediaInfo, picture: PictureFormat) -> StageKey | None:
    """The intermediate a source needs for one deliverable, or None when the planner can take it as is."""
    if not settings.needs_python_stage:
        return None
    if settings.upscale == "learned" and settings.model is None:
        raise JobError("enhance.model: upscale: learned needs an ONNX model file (enhance.model in the job)")
    rate = media.video.planning_rate
    flow_rate = picture.frame_rate if settings.rate_conversion == "flow" and rate != picture.frame_rate else None
    model = None
    if settings.upscale == "learned" and place(media.video, picture).scaled_width > media.video.display_width:
        model = settings.model
    if flow_rate is None and not settings.destutter and model is None:
        return None
    return StageKey(media.path, flow_rate, settings.destutter, model)


def make_intermediate(key: StageKey, media: MediaInfo, target: Path) -> Path:
    """Decode ``key.source``, de-stutter, upscale and re-time it in one streamed pass into ``target``.

    Raises:
        FFmpegError: decoding or encoding failed.
        JobError: the model cannot be used.
    """
    video = media.video
    source_rate = video.planning_rate
    frame_count = video.frame_count if not video.variable_frame_rate else round_half_up(video.duration_s * source_rate)
    colour_options = ""
    raw = working_format(video)
    if key.model is not None:
        raw = RawFormat("rgb24", video.display_width, video.display_height)
        colour_options = (f":in_color_matrix={source_color_matrix(video)}"
                          f":in_range={'pc' if video.color_range == 'pc' else 'tv'}")
    frames = decode_frames(media.path, raw, frame_rate=source_rate, colour_options=colour_options)
    if key.destutter:
        report = detect_stutter(media.path, media)
        log.info("%s: %d of %d frames repeat their predecessor; rebuilding them",
                 media.path, len(report.repeats), report.frame_count)
        frames = destuttered(frames, report.repeats, FlowInterpolator(raw))
    if key.model is not None:
        upscaler = OnnxUpscaler(key.model)
        log.info("%s: learned upscale x%d with %s on %s", media.path, upscaler.scale, key.model,
                 upscaler.providers[0])
        frames = upscaler.frames(frames)
        raw = raw.with_size(raw.width * upscaler.scale, raw.height * upscaler.scale)
    rate = source_rate
    if key.frame_rate is not None:
        frames = convert_rate(frames, FlowInterpolator(raw), source_rate, key.frame_rate, frame_count)
        frame_count = output_frame_count(frame_count, source_rate, key.frame_rate)
        rate = key.frame_rate
    log.info("enhancing %s -> %s (%s fps)", media.path, target, format_rate(rate))
    last_logged = [0.0]

    def report_progress(progress: Progress) -> None:
        if progress.fraction - last_logged[0] >= 0.25 or progress.fraction >= 1.0:
            last_logged[0] = progress.fraction
            log.info("enhancing %s: %.0f %%", media.path.name, 100 * progress.fraction)

    encode_intermediate(frames, IntermediateSpec(raw, rate, frame_count, media), target, report_progress)
    return target


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
