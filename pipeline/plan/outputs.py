"""What a plan promises: the outputs a render writes and the properties each must probe with, and
the deliverable's preset, raster and encoder arguments they are derived from."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pydantic import ValidationError

from pipeline.analysis.loudness import LoudnessCorrection
from pipeline.errors import JobError
from pipeline.media.probe import MediaInfo
from pipeline.model.job import Deliverable, Job
from pipeline.model.provenance import ProvenancePlan
from pipeline.model.presets import LoudnessSpec, Preset, format_validation_error, get_preset
from pipeline.model.timebase import round_half_up
from pipeline.plan.audio_tracks import TrackContent, programme_tracks, track_contents
from pipeline.plan.caption_files import CaptionFile
from pipeline.plan.caption_timing import TimedCaption
from pipeline.plan.conform import PictureFormat
from pipeline.plan.enhance import EnhanceSettings, apply_job_enhance
from pipeline.plan.hdr import COLOUR_TAGS
from pipeline.plan.leader import LeaderPlan
from pipeline.plan.workfiles import PreparedFile
from pipeline.timeline.sequence import Timeline
from pipeline.timeline.timecode_track import file_start_timecode

BRANDS = {"mov": "qt  ", "mp4": "isom", "mxf": None}
"""ftyp major brand of each container; MXF has none."""


DEMUXERS = {"mov": "mov,mp4,m4a,3gp,3g2,mj2", "mp4": "mov,mp4,m4a,3gp,3g2,mj2", "mxf": "mxf"}
"""The demuxer name each container probes as."""


AAC_FRAME_SAMPLES = 1024


@dataclass(frozen=True)
class ExpectedOutput:
    """Properties a rendered file must probe with; any difference fails the job."""

    brand: str | None
    """ftyp major brand: ``qt  `` for .mov, ``isom`` for .mp4, None for .mxf."""
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
    loudness: LoudnessSpec | None = None
    """Loudness target the encoded sound must meet; None: not measured (no target, or silence)."""
    colour_tags: tuple[str, str, str] = COLOUR_TAGS["bt709"]
    """Colour primaries, transfer and matrix the video must be tagged with."""
    colour_range: str = "tv"
    """Colour range the video must be tagged with: every deliverable is limited range (``tv``)."""
    demuxer: str = DEMUXERS["mov"]
    """Demuxer name the file must probe as (``mxf`` for MXF)."""
    timecode: str | None = None
    """Start timecode the file's timecode track must carry; None: no track expected."""
    field_order: str = "progressive"
    """``progressive`` or ``tt`` (interlaced, top field first) as the decoder reports it."""
    audio_tracks: tuple[TrackContent, ...] = (("FL", "FR"),)
    """What each audio stream carries, in order (see :mod:`pipeline.plan.audio_tracks`)."""
    programme_tracks: tuple[int, ...] = (0,)
    """Audio streams that together make the programme (loudness is measured over them)."""
    programme_start_frame: int = 0
    """First frame of the programme: the leader's length (0 without one). Loudness and QC measure
    the file from here."""
    programme_start_sample: int = 0
    """First audio sample of the programme."""
    subtitle_cues: tuple[TimedCaption, ...] = ()
    """The cues its soft subtitle track must carry (see :mod:`pipeline.plan.subtitle_track`); none: no track."""

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
    loudness: LoudnessCorrection | None = None
    """Gain (and limiter) applied at the end of the sound chain; None leaves levels alone."""
    provenance: ProvenancePlan | None = None
    """What its content credentials say; None: not signed (a working file, not a deliverable)."""
    caption_files: tuple[CaptionFile, ...] = ()
    """Caption files written beside the deliverable once it is verified, each read back first."""
    captions: tuple[TimedCaption, ...] = ()
    """The cues the caption files carry, in the file's frames, to compare them with."""
    quality_checked: bool = True
    """QC judges the file, so verification measures its picture; False (the editorial exports'
    conformed media): verification counts its frames by demuxing and decodes only its sound."""


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
    title: str = ""
    """What progress bars and logs call the invocation."""
    intermediates: tuple[Path, ...] = ()
    """Files written for a later invocation of the same job: neither verified nor kept."""
    consumes: tuple[Path, ...] = ()
    """Intermediates of earlier invocations that this one reads; removed once its outputs are in place."""
    prepared_files: tuple[PreparedFile, ...] = ()
    """Overlay scripts, font links and motion graphics made before ffmpeg starts, removed after."""


@dataclass(frozen=True)
class JobPlan:
    """Everything a job will render."""

    job: Job
    """The validated job."""
    renders: tuple[RenderPlan, ...]
    """ffmpeg invocations, run in order."""
    editorial_media: tuple[RenderPlan, ...] = ()
    """Conformed copies of the shots for the editorial exports (``editorial.conformed_media``)."""
    scratch_files: tuple[Path, ...] = ()
    """Files made while planning that any render may read (enhanced sources, see
    :mod:`pipeline.prestage.enhance_stage`); removed once the whole job is over, never after one render."""

    @property
    def outputs(self) -> tuple[OutputPlan, ...]:
        """Every output of every render."""
        return tuple(output for render in self.renders for output in render.outputs)

    @property
    def intermediates(self) -> tuple[Path, ...]:
        """Every file a render writes only for a later one, to remove if the job stops half-way."""
        return tuple(path for render in self.renders for path in render.intermediates)


def resolve_preset(job: Job, index: int, presets: dict[str, Preset]) -> Preset:
    """A deliverable's preset with its overrides applied."""
    deliverable: Deliverable = job.deliverables[index]
    try:
        preset = get_preset(deliverable.preset, presets)
    except JobError as error:
        raise JobError(f"deliverables.{index}.preset: {error}") from None
    preset = apply_job_enhance(preset, job.enhance.as_video_overrides())
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
    return PictureFormat(width, height, frame_rate, spec.pix_fmt, "crop" if spec.fills_frame else "pad",
                         EnhanceSettings.from_video_spec(spec), spec.colour)


def expected_output(preset: Preset, picture: PictureFormat, timeline: Timeline, timecode: str | None = None,
                    leader: LeaderPlan | None = None) -> ExpectedOutput:
    """What a deliverable of ``preset`` over ``timeline`` (after any leader) must probe as."""
    leader_frames = leader.frame_count if leader else 0
    leader_samples = leader.sample_count(preset.audio.sample_rate) if leader else 0
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
        frame_count=leader_frames + timeline.frame_count,
        audio_codec=preset.audio.codec,
        sample_rate=preset.audio.sample_rate,
        channels=preset.audio.channels,
        layout=probed_layout(preset),
        sample_count=leader_samples + timeline.sample_count,
        sample_tolerance=AAC_FRAME_SAMPLES if preset.audio.codec == "aac" else 0,
        colour_tags=COLOUR_TAGS[preset.video.colour],
        demuxer=DEMUXERS[preset.container],
        timecode=timecode,
        field_order="tt" if preset.video.field_order == "tff" else "progressive",
        audio_tracks=track_contents(preset.audio),
        programme_tracks=programme_tracks(preset.audio),
        programme_start_frame=leader_frames,
        programme_start_sample=leader_samples,
    )


def probed_layout(preset: Preset) -> str:
    """The channel layout each audio track probes as. MXF's sound descriptor records a channel
    count, not a layout, so ffmpeg names an MXF track by its count (``2 channels``); so does a MOV
    of several mono tracks (measured: ``1 channels``)."""
    if preset.container == "mxf" or (preset.container == "mov" and preset.audio.tracks == "8-mono"):
        return f"{preset.audio.channels} channels"
    return "mono" if preset.audio.channels == 1 else preset.audio.layout


def deliverable_timecode(preset: Preset, rate: Fraction, index: int, leader_frames: int = 0) -> str | None:
    """The start timecode of a deliverable's file, or None when its preset writes no timecode track.

    Raises:
        JobError: drop-frame at a rate without it, a frame field past the rate, or a leader longer
            than the start timecode; the message names the deliverable's ``timecode`` field.
    """
    if preset.timecode is None:
        return None
    try:
        return file_start_timecode(preset.timecode, rate, leader_frames)
    except ValueError as error:
        raise JobError(f"deliverables.{index}.timecode ({preset.name}): {error}") from None


def encoder_args(preset: Preset, picture: PictureFormat, timecode: str | None = None) -> dict[str, str]:
    """The output options of a deliverable's encode: container, encoders and their options, GOP,
    colour tags, sound rate and channels, faststart, start timecode."""
    video, audio = preset.video, preset.audio
    args: dict[str, str] = {"f": preset.container, "c:v": video.encoder, "c:a": audio.encoder}
    args.update({f"{key}:v": str(value) for key, value in video.options.items()})
    args.update({f"{key}:a": str(value) for key, value in audio.options.items()})
    if video.codec_tag:
        args["tag:v"] = video.codec_tag
    if video.gop_seconds:
        args["g:v"] = str(max(1, round_half_up(video.gop_seconds * picture.frame_rate)))
    primaries, transfer, matrix = COLOUR_TAGS[video.colour]
    args.update(color_primaries=primaries, color_trc=transfer, colorspace=matrix, color_range="tv")
    args.update(ar=str(audio.sample_rate), ac=str(audio.channels))
    if preset.faststart:
        args["movflags"] = "+faststart"
    if timecode is not None:
        args["timecode"] = timecode
    return args
