"""The Python pre-stage of enhancement: optical-flow rate conversion, de-stutter and the learned
upscaler run on each affected source once, before planning, into a lossless intermediate that the
planner then treats as the source.

An intermediate keeps its source's duration, start times and sound (copied untouched), so the
timeline arithmetic stays in :mod:`pipeline.timeline.sequence` and the sound stays in sync. Which
intermediates a job needs and how its deliverables are planned over them is
:mod:`pipeline.jobs.enhanced_plan`; this module only decides a source's key and makes its file.
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
from pipeline.prestage.learned_upscale import OnnxUpscaler
from pipeline.media.runner import Progress
from pipeline.media.probe import MediaInfo
from pipeline.prestage.stutter import destuttered, detect_stutter
from pipeline.model.timebase import format_rate, round_half_up

log = logging.getLogger(__name__)

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
