"""The planner: job + media facts + presets in, render plans out. Pure: it decodes nothing.

Each :class:`RenderPlan` is one ffmpeg invocation (argument list and all) together with the
properties every output it writes must have, so verification checks what was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import ffmpeg
from pydantic import ValidationError

from pipeline.conform import (
    PictureFormat,
    conform_audio,
    conform_video,
    full_chroma,
    silence,
    to_stereo,
)
from pipeline.errors import JobError
from pipeline.job import Deliverable, Job
from pipeline.presets import Preset, format_validation_error, get_preset
from pipeline.probe import AudioStreamInfo, MediaInfo
from pipeline.fonts import default_font_path
from pipeline.sequence import Timeline, build_timeline
from pipeline.timebase import format_rate, frames_to_samples, round_half_up

FILTERS_USED = ("setpts", "fps", "trim", "tpad", "scale", "pad", "crop", "setsar", "format",
                "setparams", "split", "gblur", "overlay", "xfade", "aresample", "aeval", "aformat",
                "asetpts", "adelay", "atrim", "apad", "anullsrc", "asplit", "acrossfade", "concat",
                "volume", "afade", "amix", "drawtext", "settb")
INPUT_MARGIN_S = Fraction(1, 2)
"""Decode this much past the last frame a shot needs, so rate rounding never starves it."""
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
    music: AudioStreamInfo | None = None,
    sync_corrections: dict[Path, Fraction] | None = None,
    one_process: bool = True,
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

    Raises:
        JobError: an unknown preset, a bad override, in/out points outside a source, or a
            transition or split edit that does not fit its shots.
    """
    shot_media = [media[shot.source] for shot in job.shots]
    sequence_rate = job.sequence.frame_rate or shot_media[0].video.planning_rate
    deliverables = []
    for index, deliverable in enumerate(job.deliverables):
        preset = resolve_preset(job, index, presets)
        picture = picture_format(preset, shot_media[0])
        timeline = build_timeline(
            job.shots, shot_media, picture.frame_rate, preset.audio.sample_rate, sequence_rate
        )
        path = out_dir / f"{job.output_stem(deliverable)}{preset.extension}"
        output = OutputPlan(
            deliverable=deliverable.label,
            preset=preset,
            path=path,
            partial_path=_partial_path(path),
            expected=_expected(preset, picture, timeline),
        )
        deliverables.append(_Deliverable(output, picture, timeline))
    groups = [deliverables] if one_process else [[item] for item in deliverables]
    corrections = sync_corrections or {}
    return JobPlan(
        job=job, renders=tuple(_render_plan(job, shot_media, music, corrections, group) for group in groups)
    )


@dataclass(frozen=True)
class _Deliverable:
    output: OutputPlan
    picture: PictureFormat
    timeline: Timeline


def _render_plan(
    job: Job,
    shot_media: list[MediaInfo],
    music_audio: AudioStreamInfo | None,
    sync_corrections: dict[Path, Fraction],
    group: list[_Deliverable],
) -> RenderPlan:
    shot_inputs = _ShotInputs(job, shot_media, sync_corrections, group)
    music = _music_branches(job, len(group))
    output_nodes = []
    for branch, item in enumerate(group):
        video_segments, audio_segments = [], []
        shot_picture = item.picture
        if any(join.xfade for join in item.timeline.joins):
            shot_picture = replace(item.picture, pix_fmt=full_chroma(item.picture.pix_fmt))
        for shot, (info, span) in enumerate(zip(shot_media, item.timeline.spans, strict=True)):
            video_branch, audio_branch = shot_inputs.take(shot)
            fill = job.shots[shot].fill or job.sequence.fill
            video_segments.append(conform_video(video_branch, info.video, span, shot_picture, fill))
            if info.audio is not None:
                correction = sync_corrections.get(job.shots[shot].source, Fraction(0))
                audio_segments.append(
                    conform_audio(audio_branch, info, span, item.timeline.sample_rate, correction)
                )
            else:
                # The silence source is shared by every deliverable; each takes it at its own rate.
                audio_segments.append(
                    audio_branch.filter("aresample", item.timeline.sample_rate)
                    .filter("atrim", end_sample=span.sample_count)
                )
        video = _assemble_picture(video_segments, item.timeline)
        audio = _assemble_sound(audio_segments, item.timeline)
        if music is not None:
            audio = _mix_music(audio, music[branch], music_audio, job, item.timeline)
        if item.output.preset.video.burn_in_timecode:
            video = _burn_in_timecode(video, item.picture)
        # Transitions and text may renegotiate the format; the encoder gets exactly the preset's.
        video = video.filter("format", item.picture.pix_fmt)
        output_nodes.append(
            ffmpeg.output(
                video, audio, str(item.output.partial_path),
                **_encoder_args(item.output.preset, item.picture),
            )
        )
    args = ffmpeg.merge_outputs(*output_nodes).compile(cmd=[])
    outputs = tuple(item.output for item in group)
    return RenderPlan(
        args=tuple(args),
        outputs=outputs,
        duration_s=max(output.expected.duration_s for output in outputs),
        encoders=tuple(sorted({e for o in outputs for e in (o.preset.video.encoder, o.preset.audio.encoder)})),
        filters=FILTERS_USED,
    )


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
        if join.smooth:
            # xfade's progress P runs from 1 to 0; smoothstep it and mix A (outgoing) with B.
            transition = {"transition": "custom", "expr": "A*P*P*(3-2*P)+B*(1-P*P*(3-2*P))"}
        picture = ffmpeg.filter(
            [picture, incoming],
            "xfade",
            duration=f"{float(join.overlap_frames / rate):.9f}",
            offset=f"{float(timeline.spans[number + 1].timeline_start_frame / rate):.9f}",
            **transition,
        )
    return picture


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


def _mix_music(program, music, music_audio: AudioStreamInfo, job: Job, timeline: Timeline):
    """The music bed at its gain, cut to the sequence and faded out, mixed under the programme."""
    total = timeline.sample_count
    fade = frames_to_samples(
        job.music.fade_out_frames, job.sequence.frame_rate or timeline.frame_rate, timeline.sample_rate
    ) if job.music.fade_out_frames else 0
    bed = (
        to_stereo(music, music_audio.channels, timeline.sample_rate)
        .filter("volume", f"{job.music.gain_db}dB")
        .filter("asetpts", "PTS-STARTPTS")
        .filter("atrim", end_sample=total)
        .filter("apad", whole_len=total)
    )
    if fade:
        bed = bed.filter("afade", type="out", start_sample=max(0, total - fade), nb_samples=min(fade, total))
    return ffmpeg.filter([program, bed], "amix", inputs=2, duration="first", normalize=0)


def _burn_in_timecode(video, picture: PictureFormat):
    """Source-free record timecode, bottom centre, for review copies."""
    drop_frame = picture.frame_rate.denominator == 1001
    return video.filter(
        "drawtext",
        fontfile=str(default_font_path()),
        timecode="00:00:00;00" if drop_frame else "00:00:00:00",
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
        picture_end = (span.source_start_frame + span.frame_count) / item.picture.frame_rate
        sound_end = Fraction(span.audio_source_start_sample + span.sample_count, item.timeline.sample_rate)
        if info.audio is not None:
            sound_end += max(Fraction(0), info.audio.start_time_s - info.video.start_time_s)
        limit = max(limit, info.video.start_time_s + max(picture_end, sound_end))
    return limit
