"""Conform one shot to a deliverable's picture and sound format, as ffmpeg-python filter chains.

Picture: timestamps from zero, constant frame rate (duplicate/drop), the shot's frames, square pixels
scaled to fit (pad) or fill (crop) the raster, BT.709 limited range, tagged. Rotation is applied by
ffmpeg's decoder before these filters run, so they see the picture as displayed.

Sound: 48 kHz, stereo or 5.1 as the programme is (see :func:`to_layout`), the stream's start-time
offset against the picture kept (silence in front when the audio starts late), trimmed or padded to
the picture's length to the sample.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Literal

import ffmpeg

from pipeline.plan.crop_window import axis_window
from pipeline.plan.enhance import EnhanceSettings, retime, scale, tempo
from pipeline.media.probe import AudioStreamInfo, MediaInfo, VideoStreamInfo
from pipeline.analysis.reframe import Framing, crop_expressions
from pipeline.timeline.sequence import ShotSpan
from pipeline.model.timebase import round_half_up
from pipeline.plan.hdr import (
    SCALE_MATRIX,
    Colour,
    output_colour,
    CONVERTED_FORMAT,
    convert_colour,
    needs_conversion,
)


# Matrix names in probe's vocabulary mapped to the scale filter's in_color_matrix vocabulary.
_SCALE_MATRIX = {"bt709": "bt709", "bt470bg": "bt470", "smpte170m": "smpte170m",
                 "smpte240m": "smpte240m", "bt2020nc": "bt2020", "bt2020c": "bt2020"}


@dataclass(frozen=True)
class PictureFormat:
    """The raster and rate every shot is conformed to."""

    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    frame_rate: Fraction
    """Frames per second."""
    pix_fmt: str
    """Pixel format handed to the encoder."""
    fit: Literal["pad", "crop"]
    """``pad`` keeps the whole picture; ``crop`` fills the frame."""
    enhance: EnhanceSettings = EnhanceSettings()
    """Rate conversion, scaler and sharpening (:mod:`pipeline.plan.enhance`)."""
    colour: Colour = "bt709"
    """Colour encoding of the deliverable (:mod:`pipeline.plan.hdr`)."""


@dataclass(frozen=True)
class Placement:
    """Where a scaled source picture lands in the frame."""

    scaled_width: int
    """Width the source is scaled to, in pixels."""
    scaled_height: int
    """Height the source is scaled to, in pixels."""
    x: int
    """Pad: left edge of the picture in the frame. Crop: left edge of the frame in the picture."""
    y: int
    """Pad: top edge of the picture in the frame. Crop: top edge of the frame in the picture."""


def full_chroma(pix_fmt: str) -> str:
    """The 4:4:4 format of the same bit depth (``yuv420p10le`` -> ``yuv444p10le``).

    xfade blends only 4:4:4 and RGB pictures; conforming shots straight to 4:4:4 and subsampling
    once after the transitions avoids a conversion on every shot at every join.
    """
    for subsampled in ("yuv420p", "yuv422p", "yuva420p", "yuva422p"):
        if pix_fmt.startswith(subsampled):
            return subsampled[:-4] + "444p" + pix_fmt[len(subsampled):]
    return pix_fmt


def _even(value: Fraction) -> int:
    return 2 * round_half_up(value / 2)


def place(source: VideoStreamInfo, target: PictureFormat) -> Placement:
    """Scale factor and offsets for square pixels fitted into (pad) or filling (crop) the target."""
    shown_height = Fraction(source.display_height)
    shown_width = shown_height * source.display_aspect_ratio
    fits = (target.width / shown_width, target.height / shown_height)
    scale = min(fits) if target.fit == "pad" else max(fits)
    if scale == fits[0]:
        width, height = target.width, _even(shown_height * scale)
    else:
        width, height = _even(shown_width * scale), target.height
    if target.fit == "pad":
        width, height = min(width, target.width), min(height, target.height)
        x, y = (target.width - width) // 2, (target.height - height) // 2
    else:
        width, height = max(width, target.width), max(height, target.height)
        x, y = (width - target.width) // 2, (height - target.height) // 2
    # Even offsets keep chroma samples aligned in 4:2:x formats.
    return Placement(width, height, x - x % 2, y - y % 2)


def source_color_matrix(source: VideoStreamInfo) -> str:
    """The YUV matrix to decode with: the tagged one, else BT.709 for HD and BT.601 for SD sizes."""
    if source.color_matrix in _SCALE_MATRIX:
        return _SCALE_MATRIX[source.color_matrix]
    return "bt709" if max(source.display_width, source.display_height) >= 1280 else "smpte170m"


BLUR_DOWNSCALE = 8
"""A blurred fill is computed at 1/8 of the frame size: a wide blur for a fraction of the work."""


def conform_video(
    stream, source: VideoStreamInfo, span: ShotSpan, target: PictureFormat, fill: str = "black",
    framing: Framing | None = None,
):
    """The shot's frames, conformed to ``target``: exactly ``span.frame_count`` frames.

    Args:
        stream: The shot's decoded video (an ffmpeg-python stream).
        source: The source's probe facts.
        span: The shot's place on the timeline.
        target: The deliverable's raster, rate and pixel format.
        fill: Around a padded picture: a colour, or ``blur`` for a blurred, scaled copy of the shot.
        framing: Burned-in bars to crop away, a smart crop path, or ``fit_blur``
            (:mod:`pipeline.analysis.reframe`); None: the plain fit.
    """
    stream = (
        retime(stream.filter("setpts", "PTS-STARTPTS"), target.enhance.rate_conversion,
               source.planning_rate, target.frame_rate, span.speed)
        .filter("trim", start_frame=span.source_start_frame,
                end_frame=span.source_start_frame + span.frame_count)
        .filter("setpts", "PTS-STARTPTS")
        # A source a frame short of the promised count (rate rounding) holds its last frame.
        .filter("tpad", stop=-1, stop_mode="clone")
        .filter("trim", end_frame=span.frame_count)
    )
    if framing is not None and not framing.active.is_full_frame:
        (x, y, width, height), source = framing.active_source(source)
        stream = stream.filter("crop", width, height, x, y)
    if framing is not None and framing.blur:
        target, fill = replace(target, fit="pad"), "blur"
    placement = place(source, target)
    fills_frame = (placement.scaled_width, placement.scaled_height) == (target.width, target.height)
    if target.fit == "crop":
        x, y = placement.x, placement.y
        if framing is not None and framing.path is not None:
            x, y = crop_expressions(
                framing.path, span.source_start_frame, span.frame_count, target.frame_rate,
                (placement.scaled_width, placement.scaled_height), (target.width, target.height),
                span.speed,
            )
        picture = _cropped_then_scaled(stream, source, placement, target, x, y)
    elif fill == "blur" and not fills_frame:
        picture = _blur_filled(stream, source, placement, target)
    else:
        picture = _scale(stream, source, placement.scaled_width, placement.scaled_height, target)
        if not fills_frame:
            # A picture that fills the frame has nothing around it to fill (and "blur" is no colour).
            picture = picture.filter("pad", target.width, target.height, placement.x, placement.y, color=fill)
    return picture.filter("setsar", "1").filter("setparams", **output_colour(target.colour))


def _cropped_then_scaled(
    stream, source: VideoStreamInfo, placement: Placement, target: PictureFormat, x: int | str, y: int | str,
):
    """The frame at (``x``, ``y``) of the source scaled to ``placement``, scaling only the part of the
    source around the frame (:mod:`pipeline.plan.crop_window`)."""
    across = axis_window(source.display_width, placement.scaled_width, target.width, x)
    down = axis_window(source.display_height, placement.scaled_height, target.height, y)
    if (across.source_size, down.source_size) != (source.display_width, source.display_height):
        stream = stream.filter("crop", across.source_size, down.source_size, across.source_offset,
                               down.source_offset)
    picture = _scale(stream, source, across.scaled_size, down.scaled_size, target)
    return picture.filter("crop", target.width, target.height, across.offset, down.offset)


def _scale(stream, source: VideoStreamInfo, width: int, height: int, target: PictureFormat):
    """Scale (lanczos by default) with the colour matrix and range converted to the deliverable's,
    limited range, in the target format. A shot that needs more than a matrix change (HDR into SDR,
    HLG into HDR10) is scaled in its own colour and converted at its new size (:mod:`pipeline.plan.hdr`)."""
    matrix, full_range = source_color_matrix(source), source.color_range == "pc"
    if not needs_conversion(source, target.colour):
        return scale(stream, width, height, target.enhance, matrix, full_range, target.pix_fmt,
                     SCALE_MATRIX[target.colour])
    sized = scale(stream, width, height, target.enhance, matrix, full_range, CONVERTED_FORMAT, matrix)
    return convert_colour(sized, source, target.colour).filter("format", target.pix_fmt)


def _blur_filled(stream, source: VideoStreamInfo, placement: Placement, target: PictureFormat):
    """The fitted picture over a blurred copy of itself that fills the frame."""
    copies = stream.split()
    cover = place(source, PictureFormat(target.width // BLUR_DOWNSCALE, target.height // BLUR_DOWNSCALE,
                                        target.frame_rate, target.pix_fmt, "crop"))
    background = (
        _scale(copies[0], source, cover.scaled_width, cover.scaled_height, target)
        .filter("crop", target.width // BLUR_DOWNSCALE, target.height // BLUR_DOWNSCALE, cover.x, cover.y)
        .filter("gblur", sigma=4)
        .filter("scale", target.width, target.height, flags="bicubic")
    )
    foreground = _scale(copies[1], source, placement.scaled_width, placement.scaled_height, target)
    return background.overlay(foreground, x=placement.x, y=placement.y, format="auto").filter(
        "format", target.pix_fmt
    )


def audio_offset_samples(
    media: MediaInfo, sample_rate: int, sync_correction_s: Fraction = Fraction(0), speed: Fraction = Fraction(1)
) -> int:
    """How many samples the audio is placed after the picture (negative: before): the streams'
    start-time difference, plus a correction for sound measured out of sync with its picture, in
    the shot's time (divided by ``speed`` when it plays faster)."""
    assert media.audio is not None
    offset_s = media.audio.start_time_s - media.video.start_time_s + sync_correction_s
    return round_half_up(offset_s / speed * sample_rate)


def to_stereo(stream, channels: int, sample_rate: int):
    """Resample (soxr) to ``sample_rate`` and make stereo; mono becomes dual mono at full level.

    Broadcasters expect dual mono, not the -3 dB centre spread of a plain upmix. ``aeval`` writes
    fresh buffers: ``channelmap`` shares one buffer between the two copies, and an in-place filter
    downstream (``volume``) then scales that buffer twice.
    """
    stream = stream.filter("aresample", sample_rate, resampler="soxr")
    if channels == 1:
        stream = stream.filter("aeval", exprs="val(0)|val(0)", channel_layout="stereo")
    return stream.filter("aformat", sample_rates=sample_rate, channel_layouts="stereo")


def to_layout(stream, channels: int, sample_rate: int, layout: str = "stereo"):
    """:func:`to_stereo`, or for a 5.1 programme: 5.1 sound kept channel for channel (``5.1(side)``'s
    side surrounds become the back ones), anything else made stereo and put on L and R with C, LFE
    and the surrounds silent (no upmix: that would invent a surround image nobody mixed)."""
    if layout == "stereo":
        return to_stereo(stream, channels, sample_rate)
    if channels <= 2:
        return to_stereo(stream, channels, sample_rate).filter("aeval", exprs="val(0)|val(1)|0|0|0|0",
                                                               channel_layout="5.1")
    stream = stream.filter("aresample", sample_rate, resampler="soxr")
    return stream.filter("aformat", sample_rates=sample_rate, channel_layouts="5.1")


def conform_audio(
    stream, media: MediaInfo, span: ShotSpan, sample_rate: int, sync_correction_s: Fraction = Fraction(0),
    layout: str = "stereo",
):
    """The shot's sound at ``sample_rate`` in the programme's ``layout`` (see :func:`to_layout`):
    exactly ``span.sample_count`` samples, in sync.

    ``sync_correction_s`` moves the sound later (positive) or earlier (negative) against its picture.
    A shot that plays faster (``span.speed``) has its sound time-stretched by the same factor, pitch kept.
    """
    audio: AudioStreamInfo = media.audio
    stream = tempo(to_layout(stream, audio.channels, sample_rate, layout), span.speed).filter("asetpts", "PTS-STARTPTS")
    offset = audio_offset_samples(media, sample_rate, sync_correction_s, span.speed)
    if offset > 0:
        stream = stream.filter("adelay", delays=f"{offset}S", all=1)
    elif offset < 0:
        stream = stream.filter("atrim", start_sample=-offset).filter("asetpts", "PTS-STARTPTS")
    first = span.audio_source_start_sample
    return (
        stream.filter("atrim", start_sample=first, end_sample=first + span.sample_count)
        .filter("asetpts", "PTS-STARTPTS")
        .filter("apad", whole_len=span.sample_count)
        .filter("atrim", end_sample=span.sample_count)
    )


def silence(sample_rate: int = 48000):
    """An endless stereo silence source for shots whose source has no audio; trim it per use."""
    return ffmpeg.input(f"anullsrc=r={sample_rate}:cl=stereo", f="lavfi").audio
