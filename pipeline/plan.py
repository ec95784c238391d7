"""The planner: job + media facts + presets in, render plans out. Pure: it decodes nothing.

Each :class:`RenderPlan` is one ffmpeg invocation (argument list and all) together with the
properties every output it writes must have, so verification checks what was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg
from pydantic import ValidationError

from pipeline.conform import PictureFormat, conform_audio, conform_video, silence
from pipeline.errors import JobError
from pipeline.job import Deliverable, Job
from pipeline.presets import Preset, format_validation_error, get_preset
from pipeline.probe import MediaInfo
from pipeline.sequence import Timeline, build_timeline
from pipeline.timebase import round_half_up

FILTERS_USED = ("setpts", "fps", "trim", "tpad", "scale", "pad", "crop", "setsar", "format",
                "setparams", "aresample", "channelmap", "aformat", "asetpts", "adelay", "atrim", "apad",
                "anullsrc", "concat")
BRANDS = {"mov": "qt  ", "mp4": "isom"}
AAC_FRAME_SAMPLES = 1024


@dataclass(frozen=True)
class ExpectedOutput:
    """Properties a rendered file must probe with; any difference fails the job."""

    brand: str
    """ftyp major brand: ``qt  `` for .mov, ``isom`` for .mp4."""
    faststart: bool
    """True when ``moov`` must precede ``mdat``."""
    video_codec: str
    """Codec name, e.g. ``prores``."""
    video_profile: str | None
    """Profile name, e.g. ``HQ``; None: not checked."""
    codec_tag: str | None
    """Sample entry, e.g. ``hvc1``; None: not checked."""
    pix_fmt: str
    """Pixel format as probed."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    frame_rate: Fraction
    """Exact frames per second."""
    frame_count: int
    """Number of frames."""
    audio_codec: str
    """Audio codec name."""
    sample_rate: int
    """Audio samples per second."""
    channels: int
    """Audio channel count."""
    layout: str
    """Audio channel layout name."""
    sample_count: int
    """Decoded audio samples per channel."""
    sample_tolerance: int
    """Allowed difference in decoded samples: one codec frame for AAC, none for PCM."""

    @property
    def duration_s(self) -> Fraction:
        """Picture duration in seconds."""
        return self.frame_count / self.frame_rate


@dataclass(frozen=True)
class OutputPlan:
    """One deliverable file to write."""

    deliverable: str
    """Deliverable label from the job."""
    preset: Preset
    """The preset, overrides applied."""
    path: Path
    """Final path, written only after verification."""
    partial_path: Path
    """Where ffmpeg writes until the file is verified."""
    expected: ExpectedOutput
    """What the file must probe as."""


@dataclass(frozen=True)
class RenderPlan:
    """One ffmpeg invocation writing one or more outputs."""

    args: tuple[str, ...]
    """ffmpeg arguments after the binary name."""
    outputs: tuple[OutputPlan, ...]
    """Files the invocation writes."""
    duration_s: Fraction
    """Longest output duration, for progress."""
    encoders: tuple[str, ...]
    """ffmpeg encoders the invocation needs."""
    filters: tuple[str, ...]
    """ffmpeg filters the invocation needs."""


@dataclass(frozen=True)
class JobPlan:
    """Everything a job will render."""

    job: Job
    """The validated job."""
    renders: tuple[RenderPlan, ...]
    """ffmpeg invocations, run in order."""

    @property
    def outputs(self) -> tuple[OutputPlan, ...]:
        """Every output of every render."""
        return tuple(output for render in self.renders for output in render.outputs)


def resolve_preset(job: Job, index: int, presets: dict[str, Preset]) -> Preset:
    """A deliverable's preset with its overrides applied."""
    deliverable: Deliverable = job.deliverables[index]
    try:
        preset = get_preset(deliverable.preset, presets)
    except JobError as error:
        raise JobError(f"deliverables.{index}.preset: {error}") from None
    if not deliverable.overrides:
        return preset
    try:
        return preset.with_overrides(deliverable.overrides)
    except ValidationError as error:
        raise JobError(format_validation_error(error, f"deliverables.{index}.overrides")) from None


def picture_format(preset: Preset, first_shot: MediaInfo) -> PictureFormat:
    """The preset's raster and rate, taking the first shot's where the preset keeps the source's."""
    spec = preset.video
    frame_rate = spec.frame_rate or first_shot.video.planning_rate
    if spec.width and spec.height:
        width, height = spec.width, spec.height
    else:
        height = first_shot.video.display_height
        width = round_half_up(height * first_shot.video.display_aspect_ratio)
        if "444" not in spec.pix_fmt:  # chroma-subsampled formats need even sizes
            width, height = width + width % 2, height + height % 2
    return PictureFormat(width, height, frame_rate, spec.pix_fmt, spec.fit)


def _expected(preset: Preset, picture: PictureFormat, timeline: Timeline) -> ExpectedOutput:
    return ExpectedOutput(
        brand=BRANDS[preset.container],
        faststart=preset.faststart,
        video_codec=preset.video.codec,
        video_profile=preset.video.profile,
        codec_tag=preset.video.codec_tag,
        pix_fmt=preset.video.probed_pix_fmt or preset.video.pix_fmt,
        width=picture.width,
        height=picture.height,
        frame_rate=picture.frame_rate,
        frame_count=timeline.frame_count,
        audio_codec=preset.audio.codec,
        sample_rate=preset.audio.sample_rate,
        channels=preset.audio.channels,
        layout=preset.audio.layout,
        sample_count=timeline.sample_count,
        sample_tolerance=AAC_FRAME_SAMPLES if preset.audio.codec == "aac" else 0,
    )


def _encoder_args(preset: Preset, picture: PictureFormat) -> dict[str, str]:
    video, audio = preset.video, preset.audio
    args: dict[str, str] = {"f": preset.container, "c:v": video.encoder, "c:a": audio.encoder}
    args.update({f"{key}:v": str(value) for key, value in video.options.items()})
    args.update({f"{key}:a": str(value) for key, value in audio.options.items()})
    if video.codec_tag:
        args["tag:v"] = video.codec_tag
    if video.gop_seconds:
        args["g:v"] = str(max(1, round_half_up(video.gop_seconds * picture.frame_rate)))
    args.update(color_primaries="bt709", color_trc="bt709", colorspace="bt709", color_range="tv")
    args.update(ar=str(audio.sample_rate), ac=str(audio.channels))
    if preset.faststart:
        args["movflags"] = "+faststart"
    return args


def _partial_path(path: Path) -> Path:
    """A name no one mistakes for a finished deliverable; the container is given with ``-f``."""
    return path.with_name(f".{path.name}.partial")


def plan_job(
    job: Job,
    media: dict[Path, MediaInfo],
    presets: dict[str, Preset],
    out_dir: Path,
    *,
    one_process: bool = True,
) -> JobPlan:
    """Plan every deliverable of ``job``.

    Args:
        job: The validated job.
        media: Probe results for every shot source, by resolved path.
        presets: Known presets by name.
        out_dir: Folder for the outputs.
        one_process: Decode the sources once and encode every deliverable from one ffmpeg; False
            makes one ffmpeg per deliverable (less peak memory, sources decoded again each time).

    Raises:
        JobError: an unknown preset, a bad override, or in/out points outside a source.
    """
    shot_media = [media[shot.source] for shot in job.shots]
    deliverables = []
    for index, deliverable in enumerate(job.deliverables):
        preset = resolve_preset(job, index, presets)
        picture = picture_format(preset, shot_media[0])
        timeline = build_timeline(job.shots, shot_media, picture.frame_rate, preset.audio.sample_rate)
        path = out_dir / f"{job.output_stem(deliverable)}{preset.extension}"
        output = OutputPlan(
            deliverable=deliverable.label,
            preset=preset,
            path=path,
            partial_path=_partial_path(path),
            expected=_expected(preset, picture, timeline),
        )
        deliverables.append((output, picture, timeline))
    groups = [deliverables] if one_process else [[item] for item in deliverables]
    return JobPlan(job=job, renders=tuple(_render_plan(job, shot_media, group) for group in groups))


def _render_plan(job: Job, shot_media: list[MediaInfo], group) -> RenderPlan:
    branches = _SourceBranches(job, shot_media)
    output_nodes = []
    for output, picture, timeline in group:
        segments = []
        for shot, (info, span) in enumerate(zip(shot_media, timeline.spans, strict=True)):
            video_branch, audio_branch = branches.take(job.shots[shot].source)
            segments.append(conform_video(video_branch, info.video, span, picture))
            if info.audio is not None:
                segments.append(
                    conform_audio(audio_branch, info, span, picture.frame_rate, timeline.sample_rate)
                )
            else:
                segments.append(audio_branch.filter("atrim", end_sample=span.sample_count))
        if len(timeline.spans) > 1:
            joined = ffmpeg.concat(*segments, v=1, a=1).node
            video, audio = joined[0], joined[1]
        else:
            video, audio = segments
        output_nodes.append(
            ffmpeg.output(
                video, audio, str(output.partial_path), **_encoder_args(output.preset, picture)
            )
        )
    args = ffmpeg.merge_outputs(*output_nodes).compile(cmd=[])
    outputs = tuple(output for output, _, _ in group)
    return RenderPlan(
        args=tuple(args),
        outputs=outputs,
        duration_s=max(output.expected.duration_s for output in outputs),
        encoders=tuple(sorted({e for o in outputs for e in (o.preset.video.encoder, o.preset.audio.encoder)})),
        filters=FILTERS_USED,
    )


class _SourceBranches:
    """Each source file decoded once and split into one branch per use (shot x deliverable).

    A source without sound gets stereo silence, split the same way, so every use of a source is a
    distinct stream (ffmpeg-python merges identical nodes, and ffmpeg needs explicit splits).
    """

    def __init__(self, job: Job, shot_media: list[MediaInfo]):
        self._streams = {}
        self._taken: dict[Path, int] = {}
        for shot, info in zip(job.shots, shot_media, strict=True):
            if shot.source in self._streams:
                continue
            source = ffmpeg.input(str(shot.source))
            audio = source.audio if info.audio is not None else silence()
            self._streams[shot.source] = (source.video.split(), audio.asplit())

    def take(self, source: Path):
        """The next unused (video, audio) branch of ``source``."""
        index = self._taken.get(source, 0)
        self._taken[source] = index + 1
        video_split, audio_split = self._streams[source]
        return video_split[index], audio_split[index]
