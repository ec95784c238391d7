"""One decode of a finished file: its picture and every audio track, demuxed together.

Verification and QC both measure what this pass yields (:mod:`pipeline.render.measure`), so a
deliverable is decoded once after it is written. Inside :func:`counting_decodes` every pass is
counted, which is how tests and benchmarks prove that nothing decodes an output twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.errors import MediaError

_counters: list[Counter[tuple[str, str]]] = []


@contextmanager
def counting_decodes() -> Iterator[Counter[tuple[str, str]]]:
    """Count the decode passes made inside the block, by (file name, ``picture`` or ``sound``)."""
    counter: Counter[tuple[str, str]] = Counter()
    _counters.append(counter)
    try:
        yield counter
    finally:
        _counters.remove(counter)


@dataclass(frozen=True)
class AudioTrackFormat:
    """What one audio track decodes to."""

    channel_names: tuple[str, ...]
    """Its channels as ffmpeg names them (``FL``, ``FR``...)."""
    sample_rate: int
    """Samples per second per channel."""


@dataclass(frozen=True, eq=False)
class PictureFrame:
    """One decoded picture, as the planes of its own pixel format."""

    time: Fraction
    """Presentation time, seconds from the stream's time origin."""
    planes: tuple[np.ndarray, np.ndarray, np.ndarray]
    """Y', Cb, Cr code values (views of the decoder's buffers: read, never keep)."""
    depth: int
    """Bits per sample."""
    matrix: int
    """The tagged Y'CbCr matrix (AVColorSpace; 2 is untagged)."""
    frame: av.VideoFrame
    """The decoded frame itself, for :meth:`jpeg`."""

    def jpeg(self, width: int) -> bytes:
        """The picture ``width`` pixels wide (height by its aspect, even) as a JPEG."""
        height = max(2, round(width * self.frame.height / self.frame.width / 2) * 2)
        bgr = self.frame.reformat(width=width, height=height, format="bgr24").to_ndarray()
        return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


@dataclass(frozen=True)
class SoundBlock:
    """Decoded samples of one audio track, in decode order."""

    track: int
    """Audio track number (0: the first audio stream)."""
    samples: np.ndarray
    """float32, full scale 1.0, shape (channels, samples)."""


class OutputDecode:
    """The file's video stream and every audio stream decoded in one demux pass.

    Open it as a context manager, read :attr:`audio_tracks`, then iterate for :class:`PictureFrame`
    and :class:`SoundBlock` items in the file's packet order. Without ``picture``, the video
    stream's packets are counted (:attr:`picture_packets`), not decoded, and no frame is yielded.
    """

    def __init__(self, path: Path, *, picture: bool = True):
        self.path = path
        self.picture_packets = 0
        """Video packets demuxed so far (one per frame in the containers postprod writes)."""
        self._decode_picture = picture
        try:
            self._container = av.open(str(path))
        except (av.error.FFmpegError, OSError) as error:
            raise MediaError(path, f"does not open ({getattr(error, 'strerror', None) or error})") from error
        audio = list(self._container.streams.audio)
        self.audio_tracks = tuple(
            AudioTrackFormat(tuple(channel.name for channel in stream.layout.channels), stream.rate) for stream in audio
        )
        """Every audio track's format, in stream order."""
        self._video = self._container.streams.video[0] if self._container.streams.video else None
        self._audio = audio

    def __enter__(self) -> OutputDecode:
        return self

    def __exit__(self, *_exc) -> None:
        self._container.close()

    def __iter__(self) -> Iterator[PictureFrame | SoundBlock]:
        streams = [*([self._video] if self._video else []), *self._audio]
        if self._video:
            self._video.thread_type = "AUTO"
        kinds = [kind for kind, present in (("picture", self._video is not None and self._decode_picture),
                                            ("sound", bool(self._audio))) if present]
        for counter in _counters:
            counter.update((self.path.name, kind) for kind in kinds)
        track_of = {stream.index: number for number, stream in enumerate(self._audio)}
        resamplers = {stream.index: av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
                      for stream in self._audio}
        try:
            for packet in self._container.demux(*streams):
                if packet.stream is self._video:
                    self.picture_packets += bool(packet.size)
                    if not self._decode_picture:
                        continue
                for frame in packet.decode():
                    if isinstance(frame, av.AudioFrame):
                        for converted in resamplers[packet.stream.index].resample(frame):
                            yield SoundBlock(track_of[packet.stream.index], converted.to_ndarray())
                    else:
                        yield _picture(frame)
            for index, resampler in resamplers.items():
                for converted in resampler.resample(None):
                    yield SoundBlock(track_of[index], converted.to_ndarray())
        except av.error.FFmpegError as error:
            raise MediaError(self.path, f"does not decode ({error.strerror or error})") from error


def _picture(frame: av.VideoFrame) -> PictureFrame:
    """The frame's Y, U, V planes without copying where the format allows, and its bit depth."""
    planar = frame if frame.format.name.startswith("yuv") and len(frame.planes) >= 3 else frame.reformat(
        format="yuv444p")
    depth = planar.format.components[0].bits
    dtype = np.dtype(np.uint8) if depth <= 8 else np.dtype("<u2")
    planes = []
    for plane in planar.planes[:3]:
        array = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
        planes.append(array[:, : plane.width])
    time = Fraction(frame.pts) * frame.time_base if frame.pts is not None else Fraction(0)
    return PictureFrame(time, tuple(planes), depth, int(frame.colorspace), frame)
