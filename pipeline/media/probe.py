"""Media facts from PyAV: a typed :class:`MediaInfo` for every input and output.

One demux pass counts frames and finds variable frame rates; one decoded frame proves the video
decodes and reveals its display rotation. Nothing here parses ffmpeg's human-readable output.
"""

from __future__ import annotations

import dataclasses
import statistics
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from pipeline.errors import MediaError
from pipeline.media.isobmff import major_brand, top_level_boxes
from pipeline.model.timebase import format_rate, snap_to_standard_rate

# FFmpeg's AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace / AVColorRange numbers.
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020",
              11: "smpte431", 12: "smpte432"}
_TRANSFER = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
             13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 18: "arib-std-b67"}
_MATRIX = {0: "gbr", 1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc",
           10: "bt2020c"}
_RANGE = {1: "tv", 2: "pc"}
_FIELD_ORDER = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}

_VFR_TOLERANCE = 0.02
"""Frame intervals that differ from the median by more than this share make a stream variable-rate."""
_SOURCE_RATES: tuple[Fraction, ...] = tuple(
    Fraction(r) for r in ("8", "10", "12", "25/2", "15", "16", "20", "24000/1001", "24", "25", "30000/1001",
                          "30", "48", "50", "60000/1001", "60", "100", "120000/1001", "120", "240")
)
"""Rates cameras, generators and editors write: a constant-rate stream whose timestamps all sit on one
of these grids (within the container's rounding) runs at exactly that rate."""
_TIMESTAMP_ROUNDING_S = Fraction(1, 1000)
"""Rounding a timestamp may carry even in a fine time base (a millisecond source re-muxed)."""


@dataclass(frozen=True)
class VideoStreamInfo:
    """Facts about the first video stream."""

    index: int
    """Stream index in the container."""
    codec: str
    """Codec name as ffmpeg knows it, e.g. ``h264``, ``prores``."""
    profile: str | None
    """Codec profile, e.g. ``High``, ``HQ``, ``Main 10``."""
    codec_tag: str
    """Four-character sample entry, e.g. ``avc1``, ``hvc1``, ``apch``."""
    coded_width: int
    """Width of the stored picture, in pixels."""
    coded_height: int
    """Height of the stored picture, in pixels."""
    rotation: int
    """Clockwise display rotation from the display matrix, in degrees (0, 90, 180, 270)."""
    display_width: int
    """Width as shown, after rotation (pixels, not corrected for SAR)."""
    display_height: int
    """Height as shown, after rotation (pixels, not corrected for SAR)."""
    sample_aspect_ratio: Fraction
    """Pixel aspect ratio; 1 for square pixels."""
    display_aspect_ratio: Fraction
    """Picture aspect ratio as shown, rotation and SAR applied."""
    frame_rate: Fraction
    """Exact nominal rate for constant-rate streams, the mean rate for variable ones (frames/s)."""
    variable_frame_rate: bool
    """True when frame intervals are not all equal."""
    frame_count: int
    """Number of frames presented (edit-list discards excluded)."""
    start_time_s: Fraction
    """Presentation time of the first frame, in seconds."""
    duration_s: Fraction
    """From the first frame's start to the last frame's end, in seconds."""
    pix_fmt: str
    """Pixel format, e.g. ``yuv420p``, ``yuv422p10le``."""
    bit_depth: int
    """Bits per luma sample."""
    color_primaries: str | None
    """Colour primaries tag, None when untagged."""
    color_transfer: str | None
    """Transfer characteristics tag, None when untagged."""
    color_matrix: str | None
    """YUV matrix tag, None when untagged."""
    color_range: str | None
    """``tv`` (limited) or ``pc`` (full), None when untagged."""
    hdr10: Hdr10Metadata | None = None
    """Mastering display and content light levels the first frame carries (HDR10); None without."""
    field_order: str | None = None
    """``progressive``, or the interlaced field order (``tt``: top field first, coded first;
    ``bb``, ``tb``, ``bt``); None when the stream does not say."""

    @property
    def planning_rate(self) -> Fraction:
        """The rate to plan with: nominal for constant streams, nearest standard rate for variable ones."""
        return snap_to_standard_rate(self.frame_rate) if self.variable_frame_rate else self.frame_rate


@dataclass(frozen=True)
class Hdr10Metadata:
    """HDR10 static metadata, written as x265's ``master-display`` and ``max-cll`` take it."""

    master_display: str | None
    """SMPTE ST 2086 mastering display: ``G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)``, chromaticities in
    units of 0.00002 and luminances in 0.0001 cd/m2; None when the source gives none."""
    max_cll: str | None
    """CTA-861.3 content light levels ``MaxCLL,MaxFALL`` in cd/m2; None when the source gives none."""


@dataclass(frozen=True)
class AudioStreamInfo:
    """Facts about the first audio stream."""

    index: int
    """Stream index in the container."""
    codec: str
    """Codec name, e.g. ``aac``, ``pcm_s24le``."""
    profile: str | None
    """Codec profile, e.g. ``LC``."""
    sample_rate: int
    """Samples per second per channel."""
    channels: int
    """Number of channels."""
    layout: str
    """Channel layout name, e.g. ``mono``, ``stereo``, ``5.1``."""
    sample_format: str
    """Sample format, e.g. ``fltp``, ``s32``."""
    start_time_s: Fraction
    """Presentation time of the first sample, in seconds."""
    duration_s: Fraction
    """From the first packet's start to the last packet's end, in seconds."""


@dataclass(frozen=True)
class MediaInfo:
    """Everything postprod needs to know about a media file before planning or after rendering."""

    path: Path
    """The file probed."""
    size_bytes: int
    """File size in bytes."""
    container: str
    """Demuxer name, e.g. ``mov,mp4,m4a,3gp,3g2,mj2``."""
    brand: str | None
    """ISO/QuickTime major brand (``qt  `` for .mov, ``isom`` for .mp4), None for other containers."""
    duration_s: Fraction
    """Container duration in seconds."""
    video: VideoStreamInfo
    """The first video stream."""
    audio: AudioStreamInfo | None
    """The first audio stream, None when the file is silent."""
    audio_tracks: tuple[AudioStreamInfo, ...] = ()
    """Every audio stream in order, the first included."""
    timecode: str | None = None
    """Start timecode of the file's timecode track (MOV ``tmcd``, MXF timecode component); None
    when it has none."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: fractions as strings (``"30000/1001"``) with float companions for seconds."""
        return _jsonable(dataclasses.asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, Fraction):
        return format_rate(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _open(path: Path):
    """Open a media file with PyAV, turning every way that can fail into a :class:`MediaError`."""
    if not path.exists():
        raise MediaError(path, "file not found")
    if not path.is_file():
        raise MediaError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as error:
        raise MediaError(path, _explain_open_failure(path, error)) from error


def probe(path: str | Path) -> MediaInfo:
    """Probe a media file.

    Raises:
        MediaError: the file is missing, empty, truncated, not media, has no video stream, or its
            video does not decode.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            kinds = sorted({stream.type for stream in container.streams}) or ["no streams"]
            raise MediaError(path, f"has no video stream (found: {', '.join(kinds)})")
        video_stream = container.streams.video[0]
        audio_streams = list(container.streams.audio)
        timings = _demux_timings(path, container, video_stream, audio_streams)
        rotation, pix_fmt_decoded, hdr10 = _decode_first_frame(path, container, video_stream)
        video = _video_info(video_stream, timings[video_stream.index], rotation, pix_fmt_decoded, hdr10)
        tracks = tuple(_audio_info(stream, timings.get(stream.index)) for stream in audio_streams)
        declared = Fraction(container.duration or 0, 1_000_000)
        _refuse_truncated(path, declared, video, tracks[0] if tracks else None)
        duration = declared or video.duration_s
        return MediaInfo(
            path=path,
            size_bytes=path.stat().st_size,
            container=container.format.name,
            brand=major_brand(path),
            duration_s=duration,
            video=video,
            audio=tracks[0] if tracks else None,
            audio_tracks=tracks,
            timecode=_start_timecode(container),
        )


TRUNCATED_SHARE = Fraction(9, 10)
"""A file whose packets end before this share of the duration its header declares is truncated.
Whole files (every devclip, edit lists and long audio tails included) read to within 2 % of it."""
TRUNCATED_MIN_MISSING_S = Fraction(1, 2)
"""...and only when that much or more is missing, so a short clip's rounding never counts."""


def _refuse_truncated(path: Path, declared_s: Fraction, video: VideoStreamInfo, audio: AudioStreamInfo | None) -> None:
    """Refuse a file that ends long before its header says (a partial download or copy).

    Such a file opens and decodes, so nothing else stops it: finished as it is, it becomes a
    deliverable a fraction of the length asked for. The demux pass has read every packet already,
    so the comparison costs nothing; a container without a declared duration is not judged.

    Raises:
        MediaError: the packets cover less than :data:`TRUNCATED_SHARE` of ``declared_s``, by at
            least :data:`TRUNCATED_MIN_MISSING_S`.
    """
    streams = [video] + ([audio] if audio is not None and audio.duration_s else [])
    readable_s = max(s.start_time_s + s.duration_s for s in streams) - min(s.start_time_s for s in streams)
    if declared_s and readable_s < declared_s * TRUNCATED_SHARE and declared_s - readable_s >= TRUNCATED_MIN_MISSING_S:
        raise MediaError(
            path,
            f"truncated: only {float(readable_s):.2f} s ({video.frame_count} frames) of the "
            f"{float(declared_s):.2f} s its header declares can be read; re-export or re-download it",
        )


def _start_timecode(container) -> str | None:
    """The start timecode from the container (MXF) or any stream's tags (MOV's ``tmcd`` track)."""
    for tags in (container.metadata, *(stream.metadata for stream in container.streams)):
        if tags.get("timecode"):
            return tags["timecode"]
    return None


def probe_audio(path: str | Path) -> AudioStreamInfo:
    """Probe the first audio stream of a file that may have no picture (a music bed).

    Raises:
        MediaError: the file is missing, unreadable or has no audio stream.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(path, "has no audio stream")
        stream = container.streams.audio[0]
        timings = _StreamTimings()
        for packet in container.demux(stream):
            if packet.pts is not None and not packet.is_discard:
                timings.presentation_times.append(packet.pts)
                timings.end = max(timings.end or 0, packet.pts + (packet.duration or 0))
        return _audio_info(stream, timings)


def _explain_open_failure(path: Path, error: Exception) -> str:
    boxes = [box for box, _ in top_level_boxes(path)]
    if boxes and boxes[0] == "ftyp" and "moov" not in boxes:
        return "truncated or unfinished MP4/MOV: it has no index (moov box); re-export or re-download it"
    return f"not a media file ffmpeg can read ({error.strerror or error})"


@dataclass
class _StreamTimings:
    """Packet timing gathered in the demux pass, in stream time-base ticks."""

    presentation_times: list[int] = dataclasses.field(default_factory=list)
    end: int | None = None


def _demux_timings(path, container, video_stream, audio_streams) -> dict[int, _StreamTimings]:
    wanted = [video_stream, *audio_streams]
    timings = {stream.index: _StreamTimings() for stream in wanted}
    try:
        for packet in container.demux(wanted):
            if packet.pts is None or packet.is_discard:
                continue
            timing = timings[packet.stream.index]
            timing.presentation_times.append(packet.pts)
            packet_end = packet.pts + (packet.duration or 0)
            timing.end = packet_end if timing.end is None else max(timing.end, packet_end)
    except av.error.FFmpegError as error:
        raise MediaError(path, f"cannot be read to the end ({error.strerror or error})") from error
    if not timings[video_stream.index].presentation_times:
        raise MediaError(path, "its video stream holds no frames")
    container.seek(0)
    return timings


def _decode_first_frame(path, container, video_stream) -> tuple[int, str, Hdr10Metadata | None]:
    video_stream.thread_type = "AUTO"
    try:
        for frame in container.decode(video_stream):
            # PyAV reports the display matrix counter-clockwise; editors speak of clockwise turns.
            return (-int(frame.rotation)) % 360, frame.format.name, hdr10_metadata(frame)
    except av.error.FFmpegError as error:
        raise MediaError(path, f"video does not decode: corrupt bitstream ({error.strerror or error})") from error
    raise MediaError(path, "video does not decode: no frame could be decoded (corrupt bitstream?)")


def _video_info(
    stream, timing: _StreamTimings, rotation: int, decoded_pix_fmt: str, hdr10: Hdr10Metadata | None = None
) -> VideoStreamInfo:
    context = stream.codec_context
    time_base = stream.time_base
    times = sorted(timing.presentation_times)
    intervals = [later - earlier for earlier, later in zip(times, times[1:])]
    first = times[0]
    end = max(timing.end or times[-1], times[-1])
    if intervals:
        median_interval = statistics.median(intervals)
        variable = any(abs(i - median_interval) > max(1, _VFR_TOLERANCE * median_interval) for i in intervals)
        if end == times[-1]:  # packets carried no durations: assume the last frame lasts one interval
            end += round(median_interval)
    else:
        median_interval, variable = None, False
    duration = Fraction(end - first) * time_base
    if variable:
        # Mean rate between the first and last frame starts: unlike frames/duration it does not
        # depend on how long the muxer says the last frame lasts.
        frame_rate = (Fraction(len(times) - 1) / (Fraction(times[-1] - first) * time_base)).limit_denominator(1001)
    elif median_interval:
        frame_rate = _constant_rate(times, time_base, stream)
    else:
        frame_rate = Fraction(stream.guessed_rate or stream.average_rate or 25)
    pix_fmt = context.pix_fmt or decoded_pix_fmt
    components = context.format.components if context.format else ()
    sar = Fraction(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else Fraction(1)
    width, height = context.width, context.height
    display_width, display_height = (height, width) if rotation in (90, 270) else (width, height)
    shown_width = display_width * (sar if rotation not in (90, 270) else 1)
    shown_height = display_height * (sar if rotation in (90, 270) else 1)
    return VideoStreamInfo(
        index=stream.index,
        codec=context.codec.canonical_name,
        profile=context.profile,
        codec_tag=stream.codec_tag,
        coded_width=width,
        coded_height=height,
        rotation=rotation,
        display_width=display_width,
        display_height=display_height,
        sample_aspect_ratio=sar,
        display_aspect_ratio=Fraction(shown_width) / Fraction(shown_height),
        frame_rate=frame_rate,
        variable_frame_rate=variable,
        frame_count=len(times),
        start_time_s=Fraction(first) * time_base,
        duration_s=duration,
        pix_fmt=pix_fmt,
        bit_depth=components[0].bits if components else 8,
        color_primaries=_PRIMARIES.get(context.color_primaries),
        color_transfer=_TRANSFER.get(context.color_trc),
        color_matrix=_MATRIX.get(context.colorspace),
        color_range=_RANGE.get(context.color_range),
        hdr10=hdr10,
        field_order=_FIELD_ORDER.get(context.field_order),
    )


_MASTERING_DISPLAY = "<12i4i4i2i"
"""AVMasteringDisplayMetadata: R, G, B then white point x, y as rationals (numerator, denominator),
minimum and maximum luminance as rationals, then has_primaries and has_luminance."""
_CONTENT_LIGHT = "<2I"
"""AVContentLightMetadata: MaxCLL and MaxFALL, cd/m2."""


def hdr10_metadata(frame: av.VideoFrame) -> Hdr10Metadata | None:
    """The HDR10 static metadata a decoded frame carries as side data; None when it has none."""
    master_display = max_cll = None
    for side_data in frame.side_data:
        data = bytes(side_data)
        if side_data.type == av.sidedata.sidedata.Type.MASTERING_DISPLAY_METADATA:
            values = struct.unpack_from(_MASTERING_DISPLAY, data)
            has_primaries, has_luminance = values[20:22]
            if has_primaries and has_luminance:
                def ratio(index: int, unit: float) -> int:
                    return round(values[index] / values[index + 1] / unit) if values[index + 1] else 0

                red, green, blue, white = ((ratio(i, 0.00002), ratio(i + 2, 0.00002)) for i in range(0, 16, 4))
                master_display = (
                    f"G{green}B{blue}R{red}WP{white}L({ratio(18, 0.0001)},{ratio(16, 0.0001)})".replace(" ", "")
                )
        elif side_data.type == av.sidedata.sidedata.Type.CONTENT_LIGHT_LEVEL:
            max_cll = "{},{}".format(*struct.unpack_from(_CONTENT_LIGHT, data))
    if master_display is None and max_cll is None:
        return None
    return Hdr10Metadata(master_display, max_cll)


def _constant_rate(times: list[int], time_base: Fraction, stream) -> Fraction:
    """The exact rate of a constant-rate stream, even when its time base rounds every timestamp.

    Matroska and WebM store milliseconds: 30 fps frames land 33 or 34 ms apart, so neither the median
    interval nor the mean over a short clip is the rate. The rate is the grid ``start + n / rate`` that
    every timestamp sits on within the container's rounding (one tick, or a millisecond): first the
    rate the stream states, then the common rates nearest the mean. A stream on no such grid keeps its
    mean rate between the first and last frame starts.
    """
    ticks = np.array(times, dtype=np.float64) - times[0]
    mean_rate = Fraction(len(times) - 1) / (Fraction(times[-1] - times[0]) * time_base)
    allowed_ticks = float(max(Fraction(1), _TIMESTAMP_ROUNDING_S / time_base)) + 1e-6
    stated = [Fraction(rate) for rate in (stream.average_rate, stream.guessed_rate) if rate]
    candidates = stated + sorted(_SOURCE_RATES, key=lambda rate: abs(rate - mean_rate))
    frame_numbers = np.arange(len(times), dtype=np.float64)
    best, best_spread = None, allowed_ticks
    for candidate in candidates:
        deviation = ticks - frame_numbers / float(candidate * time_base)
        spread = float(deviation.max() - deviation.min())
        if spread < best_spread - 1e-9:  # equal fits keep the earlier (stated, then nearer) rate
            best, best_spread = candidate, spread
    return best if best is not None else mean_rate.limit_denominator(1001)


def _audio_info(stream, timing: _StreamTimings | None) -> AudioStreamInfo:
    context = stream.codec_context
    time_base = stream.time_base
    if timing and timing.presentation_times:
        first = min(timing.presentation_times)
        start = Fraction(first) * time_base
        duration = Fraction((timing.end or first) - first) * time_base
    else:
        start, duration = Fraction(0), Fraction(0)
    return AudioStreamInfo(
        index=stream.index,
        codec=context.codec.canonical_name,
        profile=context.profile,
        sample_rate=context.sample_rate,
        channels=context.channels,
        layout=context.layout.name,
        sample_format=context.format.name if context.format else "",
        start_time_s=start,
        duration_s=duration,
    )


def decoded_audio_samples(path: str | Path) -> int:
    """Samples per channel that the first audio stream decodes to (encoder priming removed)."""
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0))
