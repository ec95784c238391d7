"""The planner: job + media facts + presets in, render plans out. Pure: it decodes nothing.

Each :class:`RenderPlan` is one ffmpeg invocation (argument list and all) together with the
properties every output it writes must have, so verification checks what was asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import ffmpeg
from pydantic import ValidationError

from pipeline.plan.audio_tracks import (
    TRACK_FILTERS,
    TrackContent,
    lay_out_tracks,
    programme_tracks,
    resolve_programme_layout,
    track_contents,
)
from pipeline.plan.caption_files import CaptionFile, plan_caption_files, shifted
from pipeline.plan.caption_timing import TimedCaption
from pipeline.plan.subtitle_track import subtitle_track
from pipeline.plan.conform import (
    PictureFormat,
    conform_audio,
    conform_video,
    full_chroma,
    silence,
    to_layout,
)
from pipeline.plan.enhance import EnhanceSettings, apply_job_enhance, shot_speeds
from pipeline.errors import JobError
from pipeline.files import partial_path
from pipeline.model.job import Deliverable, Job
from pipeline.analysis.loudness import LoudnessCorrection, oversampling_factor
from pipeline.plan.overlays import (
    OVERLAY_FILTERS,
    OverlayPlan,
    apply_overlays,
    plan_overlays,
    overlays_for,
    LogoInputs,
    timed_captions,
)
from pipeline.model.presets import LoudnessSpec, Preset, format_validation_error, get_preset, Hdr10Spec
from pipeline.media.probe import AudioStreamInfo, MediaInfo
from pipeline.analysis.reframe import Framing, ReframeAnalysis, framing_for
from pipeline.plan.fonts import default_font_path
from pipeline.plan.workfiles import PreparedFile, TextFile
from pipeline.timeline.sequence import (
    ShotSpan,
    Timeline,
    build_timeline,
    sequence_rate as sequence_rate_of,
    shot_media_ranges,
    split_timeline,
)
from pipeline.model.timebase import format_rate, frames_to_samples, frames_to_timecode, round_half_up, seconds_text
from pipeline.model.provenance import ProvenancePlan, describe_edit
from pipeline.plan.legalise import bit_depth, legalise, lut_file
from pipeline.plan.hdr import COLOUR_TAGS, check_hdr_sources, output_colour, x265_hdr10_params
from pipeline.plan.leader import LEADER_FILTERS, LeaderPlan, LeaderSources, plan_leader, with_leader
from pipeline.timeline.timecode_track import file_start_timecode

FILTERS_USED = ("setpts", "fps", "trim", "tpad", "scale", "pad", "crop", "setsar", "format",
                "setparams", "split", "gblur", "overlay", "xfade", "aresample", "aeval", "aformat",
                "asetpts", "adelay", "atrim", "apad", "anullsrc", "asplit", "acrossfade", "concat",
                "volume", "afade", "amix", "drawtext", "settb", "alimiter", "framerate", "minterpolate",
                "zscale", "unsharp", "atempo", "fade", "setfield") + TRACK_FILTERS
LEGALISE_FILTERS = ("mergeplanes", "lut3d")
"""Filters the broadcast legaliser needs (:mod:`pipeline.plan.legalise`)."""
DIP_TRANSITIONS = {"fadeblack": "black", "fadewhite": "white"}
"""xfade's dips, which fade through full-range black and white (10-bit luma 0 and 1023), mapped to
the colour the planner dips through instead, at legal levels (``fade`` to the colour, then a mix)."""
INPUT_MARGIN_S = Fraction(1, 2)
"""Decode this much past the last frame a shot needs, so rate rounding never starves it."""
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


def _expected(preset: Preset, picture: PictureFormat, timeline: Timeline, timecode: str | None = None,
              leader: LeaderPlan | None = None) -> ExpectedOutput:
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


def _encoder_args(preset: Preset, picture: PictureFormat, timecode: str | None = None) -> dict[str, str]:
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


def sound_encode_args(preset: Preset, wav: Path, encoded: Path) -> list[str]:
    """ffmpeg arguments that encode a measured programme ``wav`` as the deliverable's sound (its
    encoder and options, rate and channels) into ``encoded`` (Matroska, which carries every codec):
    what the encoder's own peaks do to the programme, measured before the deliverable is rendered."""
    audio = preset.audio
    options = [item for key, value in audio.options.items() for item in (f"-{key}:a", str(value))]
    # The format is named: a periodic tone in float samples can outscore WAV in ffmpeg's probe.
    return ["-f", "wav", "-i", str(wav), "-c:a", audio.encoder, *options, "-ar", str(audio.sample_rate),
            "-ac", str(audio.channels), "-f", "matroska", str(encoded)]


def plan_job(
    job: Job,
    media: dict[Path, MediaInfo],
    presets: dict[str, Preset],
    out_dir: Path,
    *,
    music: AudioStreamInfo | None = None,
    sync_corrections: dict[Path, Fraction] | None = None,
    one_process: bool = True,
    loudness: dict[str, LoudnessCorrection] | None = None,
    reframe: dict[Path, ReframeAnalysis] | None = None,
) -> JobPlan:
    """Plan every deliverable of ``job``.

    Args:
        job: The validated job.
        media: Probe results for every shot source, by resolved path.
        presets: Known presets by name.
        out_dir: Folder for the outputs.
        music: Probe result of the job's music bed, if it has one.
        sync_corrections: Seconds to move each source's sound against its picture (sync policy
            ``fix``), by source path.
        one_process: Decode the sources once and encode every deliverable from one ffmpeg; False
            makes one ffmpeg per deliverable (less peak memory, sources decoded again each time).
        loudness: Measured loudness corrections by deliverable label (see
            :func:`plan_programme_audio`); each is applied in the deliverable's one encode, and its
            target becomes part of what the output is verified against.
        reframe: Reframing analysis by source path (burned-in bars, subjects, cuts); a ``smart``
            deliverable without it for a source is planned as a centre crop of that source.

    Raises:
        JobError: an unknown preset, a bad override, in/out points outside a source, or a
            transition or split edit that does not fit its shots.
    """
    shot_media = [media[shot.source] for shot in job.shots]
    sequence_rate = sequence_rate_of(job, media)
    deliverables = []
    for index, deliverable in enumerate(job.deliverables):
        preset = resolve_programme_layout(resolve_preset(job, index, presets), shot_media, index)
        check_hdr_sources(preset.video.colour, [info.video for info in shot_media], f"deliverables.{index}.preset")
        picture = picture_format(preset, shot_media[0])
        timeline = _deliverable_timeline(job, shot_media, preset, picture, sequence_rate)
        path = out_dir / f"{job.output_stem(deliverable)}{preset.extension}"
        leader = _leader(job, index, preset, picture, timeline, path)
        captions, caption_files = _caption_files(job, preset, timeline, sequence_rate, leader, path)
        output = OutputPlan(
            deliverable=deliverable.label,
            preset=preset,
            path=path,
            partial_path=partial_path(path),
            expected=_expected(preset, picture, timeline,
                               deliverable_timecode(preset, picture.frame_rate, index,
                                                    leader.frame_count if leader else 0), leader),
            caption_files=caption_files,
            captions=captions,
        )
        if preset.caption_files is not None and preset.caption_files.track:
            output = replace(output, expected=replace(output.expected, subtitle_cues=captions))
        output = _with_loudness(output, (loudness or {}).get(deliverable.label))
        output = replace(output, provenance=_provenance(job, shot_media, preset, picture, output))
        framings = {
            source: framing_for(preset.video.fit, preset.video.smart_fallback, (reframe or {}).get(source),
                                picture.width, picture.height)
            for source in media
        }
        overlays = plan_overlays(job, deliverable.label, preset.safe_area.text, picture, timeline,
                                 sequence_rate, path.with_name(f".{path.name}.overlays"),
                                 preset.provenance.ai_label)
        deliverables.append(_Deliverable(output, picture, timeline, sequence_rate, framings, overlays, leader))
    groups = [deliverables] if one_process else [[item] for item in deliverables]
    corrections = sync_corrections or {}
    renders: list[RenderPlan] = []
    for group in groups:
        if len(job.shots) <= job.sequence.shots_per_render:
            renders.append(_render_plan(job, shot_media, music, corrections, group))
            continue
        # Windows need one timeline; deliverables at other frame or sample rates get their own.
        by_timeline: dict[Timeline, list[_Deliverable]] = {}
        for item in group:
            by_timeline.setdefault(item.timeline, []).append(item)
        for same_timeline in by_timeline.values():
            renders += _windowed_render_plans(job, shot_media, music, corrections, same_timeline)
    return JobPlan(job=job, renders=tuple(renders))


def _provenance(job: Job, shot_media: list[MediaInfo], preset: Preset, picture: PictureFormat,
                output: OutputPlan) -> ProvenancePlan:
    """What the deliverable's content credentials will say postprod did."""
    overlay_kinds = [overlay.kind for _, overlay in overlays_for(job, output.deliverable)]
    if preset.video.burn_in_timecode:
        overlay_kinds.append("timecode")
    video = preset.video
    return describe_edit(
        sources=tuple(dict.fromkeys(shot.source for shot in job.shots)),
        source_sizes=tuple((info.video.display_width, info.video.display_height) for info in shot_media),
        source_rates=tuple(info.video.frame_rate for info in shot_media),
        trimmed=any(shot.in_point is not None or shot.out_point is not None for shot in job.shots),
        output_size=(picture.width, picture.height),
        output_rate=picture.frame_rate,
        fit=video.fit,
        encoding=" ".join(filter(None, (video.codec, video.profile, "in", preset.container))),
        overlay_kinds=tuple(overlay_kinds),
        loudness_target_lufs=output.loudness.target.target_lufs if output.loudness else None,
        declared_ai_generated=job.provenance.ai_generated,
        credentials=preset.provenance.credentials,
    )


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
    job: Job,
    media: dict[Path, MediaInfo],
    presets: dict[str, Preset],
    out_dir: Path,
    sync_corrections: dict[Path, Fraction] | None = None,
    reframe: dict[Path, ReframeAnalysis] | None = None,
) -> tuple[RenderPlan, ...]:
    """One render per shot: the source frames the cut uses, handles included, in the sequence format.

    Each copy is a one-shot job of its own, planned and verified like any deliverable, at the first
    deliverable's raster and fit and the sequence's rate, so the exports' frame numbers are the
    copy's own. They go to ``<out_dir>/<job>_media/NN_<source>.<ext>``. None unless the job asks
    for them (``editorial.conformed_media``).
    """
    if not job.editorial.conformed_media:
        return ()
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
        plans += plan_job(shot_job, media, presets, out_dir / f"{job.name}_media",
                          sync_corrections=sync_corrections, reframe=reframe).renders
    return tuple(plans)


def _deliverable_timeline(
    job: Job, shot_media: list[MediaInfo], preset: Preset, picture: PictureFormat, sequence_rate: Fraction
) -> Timeline:
    """The cut at the deliverable's frame and sample rates, shots sped up where its rate conversion
    plays frames faster (``speed``)."""
    speeds = shot_speeds(picture.enhance.rate_conversion, [m.video.planning_rate for m in shot_media], picture.frame_rate)
    return build_timeline(job.shots, shot_media, picture.frame_rate, preset.audio.sample_rate, sequence_rate, speeds)


@dataclass(frozen=True)
class _Deliverable:
    output: OutputPlan
    picture: PictureFormat
    timeline: Timeline
    sequence_rate: Fraction
    """The rate the job's frame counts (music fade, transitions) are given at; not the output's."""
    framings: dict[Path, Framing | None] | None = None
    overlays: OverlayPlan | None = None
    leader: LeaderPlan | None = None


def _render_plan(
    job: Job,
    shot_media: list[MediaInfo],
    music_audio: AudioStreamInfo | None,
    sync_corrections: dict[Path, Fraction],
    group: list[_Deliverable],
) -> RenderPlan:
    shot_inputs = _ShotInputs(job, shot_media, sync_corrections, group)
    music = _music_branches(job, len(group))
    logos = LogoInputs([item.overlays for item in group])
    leaders = LeaderSources([(item.leader, item.timeline.sample_rate) for item in group if item.leader])
    output_nodes = []
    prepared: tuple[TextFile, ...] = ()
    for branch, item in enumerate(group):
        video_segments, audio_segments = [], []
        shot_picture = item.picture
        if any(join.xfade for join in item.timeline.joins):
            shot_picture = replace(item.picture, pix_fmt=full_chroma(item.picture.pix_fmt))
        for shot, (info, span) in enumerate(zip(shot_media, item.timeline.spans, strict=True)):
            video_branch, audio_branch = shot_inputs.take(shot)
            fill = job.shots[shot].fill or job.sequence.fill
            framing = (item.framings or {}).get(job.shots[shot].source)
            video_segments.append(conform_video(video_branch, info.video, span, shot_picture, fill, framing))
            audio_segments.append(_shot_sound(job, shot, info, span, audio_branch, item, sync_corrections))
        video = _assemble_picture(video_segments, item.timeline)
        audio = _programme_sound(job, audio_segments, item, None if music is None else music[branch], music_audio)
        video = apply_overlays(video, item.overlays, logos, item.timeline.start_frame)
        if item.output.preset.video.burn_in_timecode:
            video = _burn_in_timecode(video, item.picture, item.timeline.start_frame)
        video, audio = with_leader(video, audio, item.leader, item.timeline.sample_rate, leaders)
        video, legaliser_files = _legalised(video, item)
        prepared += legaliser_files
        # Transitions and text may renegotiate the format; the encoder gets exactly the preset's.
        video = video.filter("format", item.picture.pix_fmt)
        if item.output.preset.video.field_order == "tff":
            video = video.filter("setfield", "tff")
        subtitles, subtitle_args, subtitle_script = subtitle_track(
            item.output.preset.container, item.output.expected.subtitle_cues, item.picture.frame_rate, item.output.path)
        prepared += subtitle_script
        output_nodes.append(
            ffmpeg.output(
                video, *lay_out_tracks(audio, item.output.preset.audio), *subtitles, str(item.output.partial_path),
                **{**_encoder_args(item.output.preset, item.picture,
                                   item.output.expected.timecode if item.output.preset.timecode else None),
                   **_hdr10_args(item.output.preset, shot_media), **subtitle_args},
            )
        )
    first_output = group[0].output.partial_path
    args, graph_files = long_graph_through_file(
        ffmpeg.merge_outputs(*output_nodes).compile(cmd=[]), first_output.with_suffix(".filtergraph")
    )
    outputs = tuple(item.output for item in group)
    return RenderPlan(
        args=tuple(args),
        outputs=outputs,
        duration_s=max(output.expected.duration_s for output in outputs),
        encoders=tuple(sorted({e for o in outputs for e in (o.preset.video.encoder, o.preset.audio.encoder)})),
        filters=FILTERS_USED + (OVERLAY_FILTERS if any(item.overlays for item in group) else ())
        + (LEGALISE_FILTERS if prepared else ())
        + (LEADER_FILTERS if any(item.leader for item in group) else ()),
        title=", ".join(output.deliverable for output in outputs),
        prepared_files=tuple(file for item in group if item.overlays for file in item.overlays.files)
        + tuple(file for item in group if item.leader for file in item.leader.files) + prepared + graph_files,
    )


def _hdr10_args(preset: Preset, shot_media: list[MediaInfo]) -> dict[str, str]:
    """x265's HDR10 signalling for a ``bt2020-pq`` deliverable: the first shot's mastering display and
    light levels where it carries them, else the preset's; nothing for SDR deliverables."""
    if preset.video.colour != "bt2020-pq":
        return {}
    params = x265_hdr10_params(preset.video.hdr10 or Hdr10Spec(), shot_media[0].video.hdr10)
    own = preset.video.options.get("x265-params")
    return {"x265-params:v": f"{own}:{params}" if own else params}


def _legalised(video, item: _Deliverable) -> tuple[object, tuple[TextFile, ...]]:
    """The finished picture through the broadcast legaliser when the preset asks for it, and the
    LUT file to write for it; unchanged and nothing to write otherwise."""
    if not item.output.preset.video.legalise:
        return video, ()
    partial = item.output.partial_path
    lut = lut_file(partial.with_name(f"{partial.name}.legalise.cube"), bit_depth(item.picture.pix_fmt))
    # The relabelled planes lose the colour tags on the way; the encoder must see them.
    return legalise(video, item.picture.pix_fmt, lut.path).filter("setparams", **output_colour("bt709")), (lut,)


FILTER_GRAPH_ARGUMENT_MAX = 64 * 1024
"""Longest filter graph passed as an argument, in bytes; a longer one goes through a file, since
Linux caps a single argument at 128 KiB and a long window with tracked crop paths can pass that."""


def long_graph_through_file(args: list[str], script: Path) -> tuple[list[str], tuple[TextFile, ...]]:
    """``args`` with a ``-filter_complex`` over :data:`FILTER_GRAPH_ARGUMENT_MAX` moved into ``script``
    (read by ffmpeg's ``-/filter_complex FILE``), and that file to prepare."""
    index = args.index("-filter_complex")
    graph = args[index + 1]
    if len(graph.encode()) <= FILTER_GRAPH_ARGUMENT_MAX:
        return args, ()
    return [*args[:index], "-/filter_complex", str(script), *args[index + 2 :]], (TextFile(script, graph),)


WINDOW_CONTAINER = "nut"
"""Container of a window: carries every deliverable codec and float PCM, with exact frame times."""
WINDOW_AUDIO_CODEC = "pcm_f32le"
"""Sound of a window, kept as float so the joined programme is encoded (and mixed) only once."""


def _windowed_render_plans(
    job: Job,
    shot_media: list[MediaInfo],
    music_audio: AudioStreamInfo | None,
    sync_corrections: dict[Path, Fraction],
    group: list[_Deliverable],
) -> list[RenderPlan]:
    """A long sequence as windows of shots, each one ffmpeg, then one join per deliverable.

    Each window encodes its pictures with the deliverable's own encoder into a hidden NUT file
    beside the output, with float sound; the join copies the encoded pictures end to end (no second
    encode) and encodes the sound once, mixing in the music bed over the whole length.
    """
    windows = split_timeline(group[0].timeline, job.sequence.shots_per_render)
    plans = []
    parts: dict[int, list[tuple[Path, Fraction]]] = {index: [] for index in range(len(group))}
    for number, window in enumerate(windows, start=1):
        window_job = job.model_copy(update={
            "shots": job.shots[window.first_shot : window.first_shot + window.shot_count],
            "music": None,
        })
        window_items = []
        for index, item in enumerate(group):
            part = item.output.path.with_name(f".{item.output.path.name}.part{number:03d}.nut")
            parts[index].append((part, Fraction(window.timeline.frame_count) / window.timeline.frame_rate))
            preset = item.output.preset.model_copy(update={
                "container": WINDOW_CONTAINER,
                "faststart": False,
                # The sample entry (hvc1, avc1) is a mov/mp4 tag; the join writes it.
                "video": item.output.preset.video.model_copy(update={"codec_tag": None}),
                "audio": item.output.preset.audio.model_copy(
                    update={"encoder": WINDOW_AUDIO_CODEC, "codec": WINDOW_AUDIO_CODEC, "options": {},
                            "tracks": "stereo"}
                ),
                # The join lays out the tracks and writes the timecode.
                "timecode": None,
            })
            # Loudness is corrected once, where the windows are joined.
            output = replace(item.output, preset=preset, partial_path=part, loudness=None)
            overlays = item.overlays and item.overlays.for_window(
                number, window.timeline.start_frame, window.timeline.frame_count)
            window_items.append(replace(item, output=output, timeline=window.timeline, overlays=overlays))
        window_media = shot_media[window.first_shot : window.first_shot + window.shot_count]
        plan = _render_plan(window_job, window_media, None, sync_corrections, window_items)
        plans.append(replace(
            plan,
            outputs=(),
            duration_s=Fraction(window.timeline.frame_count) / window.timeline.frame_rate,
            title=f"{plan.title} (shots {window.first_shot + 1}-{window.first_shot + window.shot_count} "
                  f"of {len(job.shots)})",
            intermediates=tuple(paths[-1][0] for paths in parts.values()),
        ))
    for index, item in enumerate(group):
        plans.append(_join_plan(job, item, parts[index], music_audio))
    return plans


def _join_plan(
    job: Job, item: _Deliverable, parts: list[tuple[Path, Fraction]], music_audio: AudioStreamInfo | None
) -> RenderPlan:
    """Windows end to end: pictures copied as encoded, sound (and music) encoded once.

    Each window's duration is written into the concat list: the demuxer would otherwise estimate it
    from the file and place the next window's frames off the frame grid.
    """
    concat_list = item.output.path.with_name(f".{item.output.path.name}.parts.ffconcat")
    listing = "ffconcat version 1.0\n" + "".join(
        f"file {_concat_quote(part)}\nduration {float(duration):.6f}\n" for part, duration in parts
    )
    joined = ffmpeg.input(str(concat_list), f="concat", safe=0)
    audio = joined.audio
    if job.music is not None:
        audio = _mix_music(audio, _music_branches(job, 1)[0], music_audio, job, item)
    audio = _normalise_loudness(audio, item.output.loudness, item.timeline)
    preset = item.output.preset
    args = _encoder_args(preset, item.picture, item.output.expected.timecode)
    args = {key: value for key, value in args.items() if not key.endswith(":v") or key == "tag:v"}
    args["c:v"] = "copy"
    subtitles, subtitle_args, subtitle_script = subtitle_track(
        preset.container, item.output.expected.subtitle_cues, item.picture.frame_rate, item.output.path)
    node = ffmpeg.output(joined.video, *lay_out_tracks(audio, preset.audio), *subtitles, str(item.output.partial_path),
                         **args, **subtitle_args)
    return RenderPlan(
        args=tuple(node.compile(cmd=[])),
        outputs=(item.output,),
        duration_s=item.output.expected.duration_s,
        encoders=(preset.audio.encoder,),
        filters=("amix", "volume", "afade", "apad", "atrim", "asetpts", "aeval", "aresample", "aformat",
                 "alimiter") + TRACK_FILTERS,
        title=f"{item.output.deliverable} (joining {len(parts)} windows)",
        consumes=tuple(part for part, _ in parts),
        prepared_files=(TextFile(concat_list, listing), *subtitle_script),
    )


def _concat_quote(path: Path) -> str:
    """A path as the concat demuxer reads it: single-quoted, each quote written as '\\''."""
    return "'" + str(path.resolve()).replace("'", "'\\''") + "'"


def _shot_sound(job: Job, shot: int, info: MediaInfo, span: ShotSpan, branch, item: _Deliverable,
                sync_corrections: dict[Path, Fraction]):
    """One shot's sound conformed to the deliverable's timeline and programme layout, or silence for
    a silent source."""
    rate, layout = item.timeline.sample_rate, item.output.preset.audio.layout
    if info.audio is None:
        # The silence source is shared by every deliverable; each takes it at its own rate and layout.
        return to_layout(branch, 2, rate, layout).filter("atrim", end_sample=span.sample_count)
    correction = sync_corrections.get(job.shots[shot].source, Fraction(0))
    return conform_audio(branch, info, span, rate, correction, layout)


def _programme_sound(job: Job, segments: list, item: _Deliverable, music_branch, music_audio: AudioStreamInfo | None):
    """The shots' sound joined, the music bed mixed under it, and the loudness correction applied:
    the same chain for the encode and for the loudness measurement, so what is measured is what ships."""
    audio = _assemble_sound(segments, item.timeline)
    if music_branch is not None:
        audio = _mix_music(audio, music_branch, music_audio, job, item)
    return _normalise_loudness(audio, item.output.loudness, item.timeline)


def _assemble_picture(segments: list, timeline: Timeline):
    """Join conformed shots: xfade over each overlap, concat at each cut."""
    picture = segments[0]
    for number, join in enumerate(timeline.joins):
        incoming = segments[number + 1]
        rate = timeline.frame_rate
        if join.xfade is None:
            # concat hands out a microsecond time base; xfade needs both inputs on the frame grid.
            time_base = f"{rate.denominator}/{rate.numerator}"
            picture = ffmpeg.concat(picture, incoming, v=1, a=0).filter("settb", time_base)
            continue
        transition = {"transition": join.xfade}
        duration_s = Fraction(join.overlap_frames) / rate
        offset_s = Fraction(timeline.spans[number + 1].timeline_start_frame) / rate
        if join.xfade in DIP_TRANSITIONS:
            picture, incoming = _dip_halves(picture, incoming, DIP_TRANSITIONS[join.xfade], offset_s, duration_s)
            transition = {"transition": "fade"}
        if join.smooth:
            # xfade's progress P runs from 1 to 0; smoothstep it and mix A (outgoing) with B.
            transition = {"transition": "custom", "expr": "A*P*P*(3-2*P)+B*(1-P*P*(3-2*P))"}
        picture = ffmpeg.filter(
            [picture, incoming],
            "xfade",
            duration=f"{float(duration_s):.9f}",
            offset=f"{float(offset_s):.9f}",
            **transition,
        )
    return picture


def _dip_halves(outgoing, incoming, colour: str, offset_s: Fraction, duration_s: Fraction):
    """A dip through ``colour`` at legal levels: the outgoing picture faded to it over the first half
    of the overlap, the incoming one faded up from it over the second; the ``fade`` transition
    mixing the two then passes through the pure colour at the middle. ``fade`` uses the format's
    legal black and white (10-bit luma 64 and 940), and a mix of legal pictures stays legal."""
    half = f"{float(duration_s / 2):.9f}"
    return (
        outgoing.filter("fade", type="out", start_time=f"{float(offset_s):.9f}", duration=half, color=colour),
        incoming.filter("fade", type="in", start_time=half, duration=half, color=colour),
    )


def _assemble_sound(segments: list, timeline: Timeline):
    """Join shots' sound: an equal-power crossfade over each audio overlap, concat at each cut."""
    sound = segments[0]
    for number, join in enumerate(timeline.joins):
        incoming = segments[number + 1]
        if join.crossfade_samples:
            # Quarter-sine curves in and out sum to constant power.
            sound = ffmpeg.filter(
                [sound, incoming], "acrossfade", ns=join.crossfade_samples, c1="qsin", c2="qsin"
            )
        else:
            sound = ffmpeg.concat(sound, incoming, v=0, a=1)
    return sound


def _music_branches(job: Job, count: int):
    if job.music is None:
        return None
    music = ffmpeg.input(str(job.music.source)).audio
    return music.asplit() if count > 1 else [music]


def _mix_music(program, music, music_audio: AudioStreamInfo, job: Job, item: _Deliverable):
    """The music bed at its gain, cut to the sequence and faded out, mixed under the programme. The
    fade's frames are counted at the sequence rate, whatever the deliverable's own rate."""
    timeline = item.timeline
    total = timeline.sample_count
    fade = frames_to_samples(job.music.fade_out_frames, item.sequence_rate, timeline.sample_rate)
    bed = (
        to_layout(music, music_audio.channels, timeline.sample_rate, item.output.preset.audio.layout)
        .filter("volume", f"{job.music.gain_db}dB")
        .filter("asetpts", "PTS-STARTPTS")
        .filter("atrim", end_sample=total)
        .filter("apad", whole_len=total)
    )
    if fade:
        bed = bed.filter("afade", type="out", start_sample=max(0, total - fade), nb_samples=min(fade, total))
    return ffmpeg.filter([program, bed], "amix", inputs=2, duration="first", normalize=0)


def _burn_in_timecode(video, picture: PictureFormat, start_frame: int = 0):
    """Record timecode from ``start_frame`` (the sequence frame of the first picture), bottom centre."""
    return video.filter(
        "drawtext",
        fontfile=str(default_font_path()),
        timecode=frames_to_timecode(start_frame, picture.frame_rate),
        rate=format_rate(picture.frame_rate),
        fontsize=max(12, picture.height // 18),
        fontcolor="white",
        box=1,
        boxcolor="black@0.6",
        boxborderw=max(2, picture.height // 120),
        x="(w-text_w)/2",
        y=f"h-text_h-{max(4, picture.height // 30)}",
    )


class _ShotInputs:
    """One ffmpeg input per shot, split into one branch per deliverable.

    Per shot, not per source: a source used by two shots would otherwise be split across the
    timeline, and ffmpeg would hold every decoded frame of the later use in memory. ``-t`` stops
    decoding after the last frame a shot can need. Shots that use the same source up to the same
    point share an input (ffmpeg-python merges identical inputs anyway), and silent shots share one
    silence source; shared streams are split once into as many branches as they have uses.
    """

    def __init__(
        self,
        job: Job,
        shot_media: list[MediaInfo],
        sync_corrections: dict[Path, Fraction],
        group: list[_Deliverable],
    ):
        self._video_keys: list[tuple[Path, str]] = []
        self._audio_keys: list[tuple[Path, str] | str] = []
        inputs = {}
        for shot, info in enumerate(shot_media):
            correction = sync_corrections.get(job.shots[shot].source, Fraction(0))
            # Sound moved earlier (a negative correction) is read further into the source.
            needed_s = _decode_limit_s(shot, info, group) + max(Fraction(0), -correction)
            limit = f"{float(needed_s + INPUT_MARGIN_S):.3f}"
            key = (job.shots[shot].source, limit)
            inputs.setdefault(key, ffmpeg.input(str(key[0]), t=limit))
            self._video_keys.append(key)
            self._audio_keys.append(key if info.audio is not None else "silence")
        uses = len(group)
        self._video = _split_by_use(
            {key: node.video for key, node in inputs.items()}, self._video_keys, uses, "split"
        )
        audio_streams = {key: inputs[key].audio for key in self._audio_keys if key != "silence"}
        if "silence" in self._audio_keys:
            audio_streams["silence"] = silence()
        self._audio = _split_by_use(audio_streams, self._audio_keys, uses, "asplit")
        self._taken: dict[object, int] = {}

    def take(self, shot: int):
        """Unused (video, audio) branches of ``shot``: call once per deliverable."""
        return self._next(self._video, self._video_keys[shot]), self._next(self._audio, self._audio_keys[shot])

    def _next(self, streams, key):
        index = self._taken.get((id(streams), key), 0)
        self._taken[(id(streams), key)] = index + 1
        return streams[key][index]


def _split_by_use(streams: dict, keys: list, uses_per_key: int, split_filter: str) -> dict:
    """Each stream as a list of branches, one per use (a split filter only when used more than once)."""
    branches = {}
    for key, stream in streams.items():
        count = keys.count(key) * uses_per_key
        if count == 1:
            branches[key] = [stream]
        else:
            node = stream.filter_multi_output(split_filter, count)
            branches[key] = [node[index] for index in range(count)]
    return branches


def _decode_limit_s(shot: int, info: MediaInfo, group: list[_Deliverable]) -> Fraction:
    """Source time after which no deliverable needs anything from this shot, in seconds."""
    limit = Fraction(0)
    for item in group:
        span = item.timeline.spans[shot]
        # Timeline time is source time divided by the shot's speed.
        picture_end = (span.source_start_frame + span.frame_count) / item.picture.frame_rate * span.speed
        sound_end = Fraction(span.audio_source_start_sample + span.sample_count, item.timeline.sample_rate) * span.speed
        if info.audio is not None:
            sound_end += max(Fraction(0), info.audio.start_time_s - info.video.start_time_s)
        limit = max(limit, info.video.start_time_s + max(picture_end, sound_end))
    return limit


LIMITER_ATTACK_MS = 1.0
"""Look-ahead of the true-peak limiter: short, so only the peaks themselves are held down."""
LIMITER_RELEASE_MS = 100.0
"""Recovery of the true-peak limiter: long enough not to pump on a tone under clicks."""
PROGRAMME_AUDIO_CODEC = "pcm_f32le"
"""Measurement renders keep the mixed programme as 32-bit float: no clipping, no rounding."""


def _with_loudness(output: OutputPlan, correction: LoudnessCorrection | None) -> OutputPlan:
    """The output with its loudness correction, and the target it must then be verified against."""
    if correction is None or not correction.applies:
        return output
    return replace(output, loudness=correction, expected=replace(output.expected, loudness=correction.target))


def _normalise_loudness(audio, correction: LoudnessCorrection | None, timeline: Timeline):
    """The programme sound with its loudness gain, then (only if the correction says so) a true-peak
    limiter: the sound oversampled to at least 192 kHz, peak-limited there (``alimiter`` with its
    look-ahead delay compensated), and resampled back, cut to the exact sample count again."""
    if correction is None or not correction.applies:
        return audio
    # Float samples: a gain above 0 dB must not clip before the limiter sees it.
    audio = audio.filter("aformat", sample_fmts="fltp").filter("volume", f"{correction.gain_db:.4f}dB")
    if correction.limiter_ceiling_dbtp is None:
        return audio
    rate = timeline.sample_rate
    return (
        audio.filter("aresample", rate * oversampling_factor(rate), resampler="soxr")
        .filter(
            "alimiter",
            limit=f"{10 ** (correction.limiter_ceiling_dbtp / 20):.6f}",
            attack=LIMITER_ATTACK_MS,
            release=LIMITER_RELEASE_MS,
            level=0,
            latency=1,
        )
        .filter("aresample", rate, resampler="soxr")
        .filter("apad", whole_len=timeline.sample_count)
        .filter("atrim", end_sample=timeline.sample_count)
    )


@dataclass(frozen=True)
class ProgrammeAudioPlan:
    """One audio-only ffmpeg run that writes each deliverable's mixed programme sound, for measuring."""

    args: tuple[str, ...]
    """ffmpeg arguments after the binary name."""
    wav_paths: dict[str, Path]
    """The float WAV written for each deliverable label."""
    duration_s: Fraction
    """Longest programme, in seconds, for progress."""


def plan_programme_audio(
    job: Job,
    media: dict[Path, MediaInfo],
    presets: dict[str, Preset],
    scratch_dir: Path,
    *,
    music: AudioStreamInfo | None = None,
    sync_corrections: dict[Path, Fraction] | None = None,
    loudness: dict[str, LoudnessCorrection] | None = None,
) -> ProgrammeAudioPlan:
    """The sound of every deliverable that has a loudness target, exactly as its encode will mix it
    (conformed shots, crossfades, music bed, and any ``loudness`` correction), as float WAV files in
    ``scratch_dir``. No picture is decoded.

    Deliverables without a loudness target are left out; the plan may then write nothing (no
    ``wav_paths``), and must not be run.
    """
    shot_media = [media[shot.source] for shot in job.shots]
    sequence_rate = sequence_rate_of(job, media)
    group = []
    for index, deliverable in enumerate(job.deliverables):
        preset = resolve_programme_layout(resolve_preset(job, index, presets), shot_media, index)
        if preset.loudness is None:
            continue
        picture = picture_format(preset, shot_media[0])
        timeline = _deliverable_timeline(job, shot_media, preset, picture, sequence_rate)
        path = scratch_dir / f"{len(group):03d}.wav"
        output = OutputPlan(deliverable.label, preset, path, path, _expected(preset, picture, timeline))
        output = _with_loudness(output, (loudness or {}).get(deliverable.label))
        group.append(_Deliverable(output, picture, timeline, sequence_rate))
    if not group:
        return ProgrammeAudioPlan(args=(), wav_paths={}, duration_s=Fraction(0))
    corrections = sync_corrections or {}
    shot_inputs = _ShotInputs(job, shot_media, corrections, group)
    music_streams = _music_branches(job, len(group))
    nodes = []
    for branch, item in enumerate(group):
        segments = [
            _shot_sound(job, shot, info, span, shot_inputs.take(shot)[1], item, corrections)
            for shot, (info, span) in enumerate(zip(shot_media, item.timeline.spans, strict=True))
        ]
        audio = _programme_sound(job, segments, item, None if music_streams is None else music_streams[branch], music)
        nodes.append(ffmpeg.output(audio, str(item.output.path), f="wav", acodec=PROGRAMME_AUDIO_CODEC))
    args = ffmpeg.merge_outputs(*nodes).compile(cmd=[])
    return ProgrammeAudioPlan(
        args=tuple(args),
        wav_paths={item.output.deliverable: item.output.path for item in group},
        duration_s=max(item.output.expected.duration_s for item in group),
    )
