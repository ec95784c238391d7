"""Raw frame streams: a source decoded through an ffmpeg pipe into numpy planes, frame by frame, and
frames encoded from a pipe into a lossless intermediate.

Frame-level Python work (optical-flow interpolation, de-stutter, learned upscaling) streams through
these: at most a few frames are alive at once, so memory does not grow with the clip's length.
A frame is a tuple of planes (``Y, U, V`` for planar YUV, one ``H x W x 3`` plane for RGB).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from pipeline.files import partial_path
from pipeline.media.runner import Progress, ProgressCallback, open_ffmpeg_pipe
from pipeline.media.probe import MediaInfo, VideoStreamInfo
from pipeline.model.timebase import format_rate

Frame = tuple[np.ndarray, ...]
"""One picture as its planes: full-size luma first, then chroma (planar YUV), or one RGB plane."""

# Chroma subsampling (horizontal, vertical shift) of the planar formats processed as they come.
_PLANAR_YUV = {"yuv420p": (1, 1), "yuv422p": (1, 0), "yuv444p": (0, 0)}
INTERMEDIATE_CODEC = "ffv1"
"""Lossless, any pixel format, multithreaded slices; in .mov its timestamps stay exact."""


@dataclass(frozen=True)
class RawFormat:
    """The layout of raw frames on a pipe."""

    pix_fmt: str
    """ffmpeg pixel format: ``gray``, ``rgb24``, ``yuv4XXp`` or ``yuv4XXp10le``."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""

    @property
    def dtype(self) -> np.dtype:
        """Sample type: uint8, or uint16 for the 10-bit formats."""
        return np.dtype(np.uint16 if self.pix_fmt.endswith("10le") else np.uint8)

    @property
    def max_value(self) -> int:
        """Largest sample value."""
        return 1023 if self.pix_fmt.endswith("10le") else 255

    @property
    def plane_shapes(self) -> tuple[tuple[int, ...], ...]:
        """numpy shape of each plane."""
        if self.pix_fmt == "gray":
            return ((self.height, self.width),)
        if self.pix_fmt == "rgb24":
            return ((self.height, self.width, 3),)
        shift_x, shift_y = _PLANAR_YUV[self.pix_fmt.removesuffix("10le")]
        chroma = (-(-self.height >> shift_y), -(-self.width >> shift_x))
        return ((self.height, self.width), chroma, chroma)

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame on the pipe."""
        return sum(int(np.prod(shape)) for shape in self.plane_shapes) * self.dtype.itemsize

    def split(self, buffer: bytes) -> Frame:
        """A frame's planes from its bytes (read-only views of ``buffer``)."""
        planes, offset = [], 0
        for shape in self.plane_shapes:
            count = int(np.prod(shape))
            planes.append(np.frombuffer(buffer, self.dtype, count, offset).reshape(shape))
            offset += count * self.dtype.itemsize
        return tuple(planes)

    def with_size(self, width: int, height: int) -> RawFormat:
        """The same pixel format at another size."""
        return RawFormat(self.pix_fmt, width, height)


def working_format(video: VideoStreamInfo) -> RawFormat:
    """The source's own planar layout where it is one of the common ones, else 4:4:4 of its depth.

    Processing in the source's layout avoids a colour conversion there and back; sizes are as
    displayed (ffmpeg applies rotation while decoding).
    """
    depth_suffix = "10le" if video.bit_depth > 8 else ""
    base = video.pix_fmt.removesuffix("10le")
    pix_fmt = video.pix_fmt if base in _PLANAR_YUV and video.bit_depth in (8, 10) else f"yuv444p{depth_suffix}"
    return RawFormat(pix_fmt, video.display_width, video.display_height)


def luma8(frame: Frame, raw: RawFormat) -> np.ndarray:
    """The frame's luma (or grey, for RGB) as 8-bit, for motion analysis."""
    plane = frame[0]
    if plane.ndim == 3:
        import cv2

        return cv2.cvtColor(plane, cv2.COLOR_RGB2GRAY)
    if plane.dtype == np.uint16:
        return (plane >> (2 if raw.max_value == 1023 else 8)).astype(np.uint8)
    return plane


def decode_frames(
    source: Path,
    raw: RawFormat,
    *,
    frame_rate: Fraction | None = None,
    scale_flags: str = "area",
    colour_options: str = "",
) -> Iterator[Frame]:
    """Every frame of ``source``'s first video stream in the ``raw`` layout, one at a time.

    Args:
        source: Media file.
        raw: Pixel format and size wanted; a size other than the source's is scaled with
            ``scale_flags``.
        frame_rate: Make the stream constant-rate at this rate (duplicating or dropping frames of a
            variable-rate source); None passes frames as they come.
        scale_flags: swscale algorithm for a size change (``area`` for analysis thumbnails).
        colour_options: Extra ``scale`` options, e.g. the source's matrix for a conversion to RGB.

    Raises:
        FFmpegError: the source cannot be decoded.
    """
    filters = ["setpts=PTS-STARTPTS"]
    if frame_rate is not None:
        filters.append(f"fps={format_rate(frame_rate)}:round=near")
    filters.append(f"scale={raw.width}:{raw.height}:flags={scale_flags}{colour_options}")
    args = ["-i", str(source), "-map", "0:v:0", "-vf", ",".join(filters), "-f", "rawvideo",
            "-pix_fmt", raw.pix_fmt, "pipe:1"]
    with open_ffmpeg_pipe(args, stdout=True) as process:
        assert process.stdout is not None
        while True:
            buffer = process.stdout.read(raw.frame_bytes)
            if len(buffer) < raw.frame_bytes:
                break
            yield raw.split(buffer)


@dataclass(frozen=True)
class IntermediateSpec:
    """What a lossless intermediate written from Python frames keeps of its source."""

    raw: RawFormat
    """Layout of the frames written."""
    frame_rate: Fraction
    """Frames per second of the intermediate."""
    frame_count: int
    """Frames expected, for progress."""
    source: MediaInfo
    """The source: its sound is copied across untouched, its start times and colour tags kept."""


def _colour_tags(video: VideoStreamInfo, raw: RawFormat) -> str:
    """``setparams`` options tagging the frames with the source's colour, without converting them
    (tags given as output options would make ffmpeg convert from untagged raw frames)."""
    if raw.pix_fmt == "rgb24":
        return ""
    tags = [f"{option}={value}" for option, value in (
        ("color_primaries", video.color_primaries), ("color_trc", video.color_transfer),
        ("colorspace", video.color_matrix), ("range", video.color_range)) if value]
    return ",setparams=" + ":".join(tags) if tags else ""


def encode_intermediate(
    frames: Iterable[Frame],
    spec: IntermediateSpec,
    target: Path,
    on_progress: ProgressCallback | None = None,
) -> int:
    """Write ``frames`` to ``target`` (FFV1 in .mov) with the source's sound, at ``spec.frame_rate``.

    ffmpeg writes to a partial name beside ``target``, renamed once complete: a failed encode (or a
    failure upstream in ``frames``) leaves neither a truncated ``target`` nor the partial file.

    The picture starts at the source picture's start time and the sound is stream-copied with its
    own timestamps, so the sound-to-picture offset the planner measures is the source's.

    Returns:
        The number of frames written.

    Raises:
        FFmpegError: ffmpeg failed (the sound codec cannot go into .mov, the disk is full...).
    """
    partial = partial_path(target)
    try:
        written = _encode(frames, spec, partial, on_progress)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


def _encode(frames: Iterable[Frame], spec: IntermediateSpec, target: Path, on_progress: ProgressCallback | None) -> int:
    """:func:`encode_intermediate`'s ffmpeg run, writing straight to ``target``."""
    source = spec.source
    sar = source.video.sample_aspect_ratio
    args = [
        "-f", "rawvideo", "-pix_fmt", spec.raw.pix_fmt, "-s", f"{spec.raw.width}x{spec.raw.height}",
        "-framerate", format_rate(spec.frame_rate),
        "-itsoffset", f"{float(source.video.start_time_s):.6f}", "-i", "pipe:0",
    ]
    if source.audio is not None:
        args += ["-i", str(source.path), "-map", "1:a:0", "-c:a", "copy"]
    args += ["-map", "0:v:0", "-c:v", INTERMEDIATE_CODEC, "-level", "3", "-slicecrc", "0",
             "-vf", f"setsar={sar.numerator}/{sar.denominator}{_colour_tags(source.video, spec.raw)}",
             "-movflags", "+write_colr", "-f", "mov", str(target)]
    written = 0
    started = time.monotonic()
    total_s = float(spec.frame_count / spec.frame_rate)
    with open_ffmpeg_pipe(args, stdin=True) as process:
        assert process.stdin is not None
        for frame in frames:
            for plane in frame:
                process.stdin.write(np.ascontiguousarray(plane, dtype=spec.raw.dtype).data)
            written += 1
            if on_progress is not None and written % 8 == 0:
                on_progress(Progress(float(written / spec.frame_rate), total_s, time.monotonic() - started))
    if on_progress is not None:
        on_progress(Progress(total_s, total_s, time.monotonic() - started))
    return written
