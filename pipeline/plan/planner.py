"""The planner: job + facts (:class:`~pipeline.plan.facts.JobFacts`) + presets in, render plans out.
Pure: it decodes nothing.

Each :class:`~pipeline.plan.outputs.RenderPlan` is one ffmpeg invocation (argument list and all)
together with the properties every output it writes must have, so verification checks what was
asked for. A group of deliverables renders as one graph (:mod:`pipeline.plan.render_graph`), a long
sequence in windows (:mod:`pipeline.plan.windows`); the sound chain is
:mod:`pipeline.plan.programme_sound`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from pipeline.analysis.reframe import framing_for
from pipeline.errors import JobError
from pipeline.model.job import Deliverable, Job
from pipeline.model.presets import Preset, get_preset
from pipeline.model.timebase import format_rate, seconds_text
from pipeline.plan.caption_files import CaptionFile, plan_caption_files, shifted
from pipeline.plan.caption_timing import TimedCaption
from pipeline.files import partial_path
from pipeline.plan.conform import PictureFormat
from pipeline.plan.facts import JobFacts
from pipeline.plan.hdr import check_hdr_sources
from pipeline.plan.audio_tracks import resolve_programme_layout
from pipeline.plan.leader import LeaderPlan, plan_leader
from pipeline.plan.outputs import (
    JobPlan,
    OutputPlan,
    RenderPlan,
    deliverable_timecode,
    expected_output,
    picture_format,
    resolve_preset,
)
from pipeline.plan.overlays import plan_overlays, timed_captions
from pipeline.plan.programme_sound import with_loudness
from pipeline.plan.provenance import describe_edit
from pipeline.plan.render_graph import one_graph_render
from pipeline.plan.shot_inputs import PlannedDeliverable, deliverable_timeline
from pipeline.plan.windows import windowed_render_plans
from pipeline.timeline.sequence import Timeline, sequence_rate as sequence_rate_of, shot_media_ranges

def plan_job(
    job: Job,
    facts: JobFacts,
    presets: dict[str, Preset],
    out_dir: Path,
    *,
    one_process: bool = True,
) -> JobPlan:
    """Plan every deliverable of ``job``.

    Args:
        job: The validated job.
        facts: The sources' probe results and what the analyses measured (music bed, sync
            corrections, reframing, loudness corrections).
        presets: Known presets by name.
        out_dir: Folder for the outputs.
        one_process: Decode the sources once and encode every deliverable from one ffmpeg; False
            makes one ffmpeg per deliverable (less peak memory, sources decoded again each time).

    Raises:
        JobError: an unknown preset, a bad override, in/out points outside a source, or a
            transition or split edit that does not fit its shots.
    """
    media = facts.media
    shot_media = [media[shot.source] for shot in job.shots]
    sequence_rate = sequence_rate_of(job, media)
    deliverables = []
    for index, deliverable in enumerate(job.deliverables):
        preset = resolve_programme_layout(resolve_preset(job, index, presets), shot_media, index)
        check_hdr_sources(preset.video.colour, [info.video for info in shot_media], f"deliverables.{index}.preset")
        picture = picture_format(preset, shot_media[0])
        timeline = deliverable_timeline(job, shot_media, preset, picture, sequence_rate)
        path = out_dir / f"{job.output_stem(deliverable)}{preset.extension}"
        leader = _leader(job, index, preset, picture, timeline, path)
        captions, caption_files = _caption_files(job, preset, timeline, sequence_rate, leader, path)
        output = OutputPlan(
            deliverable=deliverable.label,
            preset=preset,
            path=path,
            partial_path=partial_path(path),
            expected=expected_output(preset, picture, timeline,
                                     deliverable_timecode(preset, picture.frame_rate, index,
                                                          leader.frame_count if leader else 0), leader),
            caption_files=caption_files,
            captions=captions,
        )
        if preset.caption_files is not None and preset.caption_files.track:
            output = replace(output, expected=replace(output.expected, subtitle_cues=captions))
        output = with_loudness(output, facts.loudness.get(deliverable.label))
        output = replace(output, provenance=describe_edit(job, facts, picture, output))
        framings = {
            source: framing_for(preset.video.fit, preset.video.smart_fallback, facts.reframe.get(source),
                                picture.width, picture.height, facts.active_area.get(source))
            for source in media
        }
        overlays = plan_overlays(job, deliverable.label, preset.safe_area.text, picture, timeline,
                                 sequence_rate, path.with_name(f".{path.name}.overlays"),
                                 preset.provenance.ai_label)
        deliverables.append(PlannedDeliverable(output, picture, timeline, sequence_rate, framings, overlays, leader))
    groups = [deliverables] if one_process else [[item] for item in deliverables]
    music, corrections = facts.music, facts.sync_corrections
    renders: list[RenderPlan] = []
    for group in groups:
        if len(job.shots) <= job.sequence.shots_per_render:
            renders.append(one_graph_render(job, shot_media, music, corrections, group))
            continue
        # Windows need one timeline; deliverables at other frame or sample rates get their own.
        by_timeline: dict[Timeline, list[PlannedDeliverable]] = {}
        for item in group:
            by_timeline.setdefault(item.timeline, []).append(item)
        for same_timeline in by_timeline.values():
            renders += windowed_render_plans(job, shot_media, music, corrections, same_timeline)
    return JobPlan(job=job, renders=tuple(renders))


def _leader(job: Job, index: int, preset: Preset, picture: PictureFormat, timeline: Timeline,
            path: Path) -> LeaderPlan | None:
    """The deliverable's leader, or None when its preset has none.

    Raises:
        JobError: the sequence is long enough to render in windows (a leader is added in one render),
            or the slate's font lacks a character of the job's slate fields.
    """
    if preset.leader is None:
        return None
    if len(job.shots) > job.sequence.shots_per_render:
        raise JobError(f"deliverables.{index}.leader ({preset.name}): a leader needs the sequence in one "
                       f"render; raise sequence.shots_per_render to at least {len(job.shots)}")
    return plan_leader(preset.leader, job.slate, picture, timeline.frame_count, path.with_name(f".{path.name}.leader"),
                       preset.audio.layout)


def _caption_files(job: Job, preset: Preset, timeline: Timeline, sequence_rate: Fraction,
                   leader: LeaderPlan | None, path: Path) -> tuple[tuple[TimedCaption, ...], tuple[CaptionFile, ...]]:
    """The deliverable's captions in its file's frames (after any leader) and the files to write."""
    if preset.caption_files is None:
        return (), ()
    captions = shifted(timed_captions(job, timeline, sequence_rate), leader.frame_count if leader else 0)
    spec = preset.caption_files
    return captions, plan_caption_files(captions, timeline.frame_rate, spec.formats, spec.language, path)


def plan_conformed_media(
    job: Job, facts: JobFacts, presets: dict[str, Preset], out_dir: Path
) -> tuple[RenderPlan, ...]:
    """One render per shot: the source frames the cut uses, handles included, in the sequence format.

    Each copy is a one-shot job of its own, planned and verified like any deliverable, at the first
    deliverable's raster and fit and the sequence's rate, so the exports' frame numbers are the
    copy's own. They go to ``<out_dir>/<job>_media/NN_<source>.<ext>``. None unless the job asks
    for them (``editorial.conformed_media``).
    """
    if not job.editorial.conformed_media:
        return ()
    media = facts.media
    shot_media = [media[shot.source] for shot in job.shots]
    rate = sequence_rate_of(job, media)
    first_preset = resolve_preset(job, 0, presets)
    picture = picture_format(first_preset, shot_media[0])
    try:
        get_preset(job.editorial.media_preset, presets)
    except JobError as error:
        raise JobError(f"editorial.media_preset: {error}") from None
    overrides = {"video": {"width": picture.width, "height": picture.height, "fit": first_preset.video.fit,
                           "smart_fallback": first_preset.video.smart_fallback, "frame_rate": format_rate(rate)}}
    plans = []
    for number, (shot, (first, count)) in enumerate(zip(job.shots, shot_media_ranges(job, media), strict=True), 1):
        label = f"{number:02d}_{re.sub(r'[^A-Za-z0-9._-]', '_', shot.source.stem)}"
        shot_job = job.model_copy(update={
            "name": f"{job.name}_media",
            "shots": [shot.model_copy(update={
                "in_point": seconds_text(Fraction(first) / rate),
                "out_point": seconds_text(min(Fraction(first + count) / rate, media[shot.source].video.duration_s)),
                "audio_offset_frames": 0,
            })],
            "deliverables": [Deliverable(preset=job.editorial.media_preset, name=label, overrides=overrides)],
            "output": job.output.model_copy(update={"naming": "{deliverable}"}),
            "music": None,
            "overlays": [],
            "editorial": job.editorial.model_copy(update={"conformed_media": False}),
        })
        # Only the sync corrections and reframing apply to a conformed copy: no music, no loudness.
        shot_facts = JobFacts(media, sync_corrections=facts.sync_corrections, reframe=facts.reframe,
                              active_area=facts.active_area)
        plans += plan_job(shot_job, shot_facts, presets, out_dir / f"{job.name}_media").renders
    # QC never reads the copies: verification counts their frames and decodes only their sound.
    return tuple(replace(render, outputs=tuple(replace(output, quality_checked=False) for output in render.outputs))
                 for render in plans)
