"""One decode of a source that feeds every analysis needing its picture or its sound.

An analysis says what it needs (:class:`PictureNeed`: which frames, at what size and in what form;
:class:`SoundNeed`: sample rate and channel layout) and takes what it asked for one frame, or one
block of samples, at a time (:class:`PictureConsumer`, :class:`SoundConsumer`). :func:`decode_source`
reads the file once, demuxing picture and sound together, converts each decoded frame once per
distinct form asked for (two analyses asking for the luma plane share it) and resamples the sound
once per distinct need. Nothing holds more than the frame being handed out (and the few a
:class:`pipeline.media.picture_thread.PictureThread` queues for an analysis working in a thread of
its own): memory stays flat in clip length, whatever the consumers keep of it.

Every pass is counted per source and kind (:func:`decode_tally`), so a test or a benchmark can
check how often a job decoded each source.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import av
import numpy as np

from pipeline.errors import MediaError

LUMA_FORMATS = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv411p", "nv12", "nv21", "gray"}
)
"""8-bit pixel formats whose first plane is the luma picture, handed out without conversion."""


@dataclass(frozen=True)
class Image:
    """One form of a decoded frame."""

    format: Literal["luma", "rgb24", "frame"]
    """``luma``: the 8-bit luma plane at the coded size, (height, width) uint8, a view of the decoded
    frame where its format has one (valid only during the call it is handed to: copy what is kept);
    ``rgb24``: (height, width, 3) uint8 scaled by the decoder's scaler; ``frame``: the decoded
    ``av.VideoFrame`` itself, for an analysis that converts only the frames it looks at (it may be
    kept: the decoder does not reuse it)."""
    width: int | None = None
    """``rgb24``: width to scale to, pixels; None: the coded width."""
    height: int | None = None
    """``rgb24``: height to scale to, pixels; None: the coded height."""


@dataclass(frozen=True)
class PictureNeed:
    """Which frames an analysis takes and in which forms."""

    images: tuple[Image, ...]
    """The forms it is handed, in this order."""
    every: int = 1
    """Every this many decoded frames, from the first (1: every frame)."""
    only: frozenset[int] | None = None
    """Only these frame numbers (counted from 0 in decode order) of those; None: all of them."""

    def takes(self, index: int) -> bool:
        """Whether frame number ``index`` is handed out."""
        return index % self.every == 0 and (self.only is None or index in self.only)


@dataclass(frozen=True)
class SoundNeed:
    """The sound an analysis takes: the first audio stream, resampled to float samples."""

    rate: int
    """Samples per second."""
    layout: Literal["mono", "stereo"] = "mono"
    """Channel layout the sound is mixed to."""


class PictureConsumer(Protocol):
    """An analysis fed the pictures of a source."""

    @property
    def picture_need(self) -> PictureNeed:
        """What it takes."""

    def add_picture(self, index: int, time_s: float | None, images: tuple[np.ndarray | av.VideoFrame, ...]) -> None:
        """Take frame number ``index`` (counted from 0 in decode order) shown at ``time_s`` (None
        where the frame has no timestamp), in the forms :attr:`picture_need` lists."""


class SoundConsumer(Protocol):
    """An analysis fed the sound of a source."""

    @property
    def sound_need(self) -> SoundNeed:
        """What it takes."""

    def add_sound(self, samples: np.ndarray, time_s: float | None) -> None:
        """Take the next block of samples, float32, shape (channels, samples), full scale 1.0;
        ``time_s`` is the presentation time of the decoded frame it came from, the earliest where
        the resampler held a frame back to return it with the next (None for the resampler's last
        block, or a frame without a timestamp)."""


@dataclass(frozen=True)
class DecodeTally:
    """How often a source was decoded."""

    picture: int = 0
    """Passes that decoded its picture."""
    sound: int = 0
    """Passes that decoded its sound."""


_tally: Counter[tuple[Path, str]] = Counter()
_tally_lock = threading.Lock()


def decode_tally() -> dict[Path, DecodeTally]:
    """Passes of :func:`decode_source` so far, by source (resolved path), since the last
    :func:`reset_decode_tally`."""
    with _tally_lock:
        sources = {path for path, _ in _tally}
        return {path: DecodeTally(_tally[path, "picture"], _tally[path, "sound"]) for path in sources}


def reset_decode_tally() -> None:
    """Start counting from zero."""
    with _tally_lock:
        _tally.clear()


def _count(path: Path, kind: str) -> None:
    with _tally_lock:
        _tally[path.resolve(), kind] += 1


def decode_source(
    path: Path, pictures: Sequence[PictureConsumer] = (), sounds: Sequence[SoundConsumer] = ()
) -> None:
    """Decode ``path`` once, handing its first video stream's frames to ``pictures`` and its first
    audio stream's sound to ``sounds``; a kind nobody asks for is not decoded.

    Raises:
        MediaError: the file cannot be opened, lacks a stream a consumer needs, or does not decode.
    """
    if not pictures and not sounds:
        return
    try:
        opened = av.open(str(path))
    except av.error.FFmpegError as error:
        raise MediaError(path, f"cannot be opened as media ({error.strerror or error})") from error
    kind = "video"
    try:
        with opened as container:
            video = _stream(path, container.streams.video, "video") if pictures else None
            audio = _stream(path, container.streams.audio, "audio") if sounds else None
            if video is not None:
                video.thread_type = "AUTO"
                _count(path, "picture")
            if audio is not None:
                _count(path, "sound")
            pictures_fed = _PictureFeed(pictures)
            sounds_fed = _SoundFeed(sounds)
            for packet in container.demux([stream for stream in (video, audio) if stream is not None]):
                kind = "video" if packet.stream is video else "audio"
                for frame in packet.decode():
                    if kind == "video":
                        pictures_fed.add(frame)
                    else:
                        sounds_fed.add(frame)
            kind = "audio"
            sounds_fed.flush()
    except av.error.FFmpegError as error:
        raise MediaError(path, f"{kind} does not decode ({error.strerror or error})") from error


def has_audio(path: Path) -> bool:
    """Whether ``path`` has an audio stream (for a stand-alone analysis whose answer without sound
    is None rather than an error).

    Raises:
        MediaError: the file cannot be opened.
    """
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except av.error.FFmpegError as error:
        raise MediaError(path, f"cannot be opened as media ({error.strerror or error})") from error


def _stream(path: Path, streams, kind: str):
    if not streams:
        raise MediaError(path, f"has no {kind} stream to analyse")
    return streams[0]


class _PictureFeed:
    """Hands each decoded frame to the consumers whose turn it is, converting it once per form."""

    def __init__(self, consumers: Sequence[PictureConsumer]) -> None:
        self._consumers = [(consumer, consumer.picture_need) for consumer in consumers]
        self._index = 0

    def add(self, frame: av.VideoFrame) -> None:
        converted: dict[Image, np.ndarray | av.VideoFrame] = {}
        for consumer, need in self._consumers:
            if not need.takes(self._index):
                continue
            images = []
            for image in need.images:
                if image not in converted:
                    converted[image] = _convert(frame, image)
                images.append(converted[image])
            consumer.add_picture(self._index, frame.time, tuple(images))
        self._index += 1


def _convert(frame: av.VideoFrame, image: Image) -> np.ndarray | av.VideoFrame:
    if image.format == "frame":
        return frame
    if image.format == "luma":
        if frame.format.name in LUMA_FORMATS:
            plane = frame.planes[0]
            return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
        return frame.reformat(format="gray").to_ndarray()
    return frame.reformat(width=image.width, height=image.height, format="rgb24").to_ndarray()


class _SoundFeed:
    """Resamples the sound once per distinct need and hands each block to the consumers of it."""

    def __init__(self, consumers: Sequence[SoundConsumer]) -> None:
        self._groups: dict[SoundNeed, list[SoundConsumer]] = {}
        for consumer in consumers:
            self._groups.setdefault(consumer.sound_need, []).append(consumer)
        self._resamplers = {
            need: av.AudioResampler(format="fltp", layout=need.layout, rate=need.rate) for need in self._groups
        }
        self._held_back: dict[SoundNeed, float | None] = {}

    def add(self, frame: av.AudioFrame) -> None:
        for need, resampler in self._resamplers.items():
            blocks = resampler.resample(frame)
            held_back = self._held_back.pop(need, None)
            if not blocks:
                # The resampler kept this frame's samples to return them with the next one's: the
                # next block starts at this frame's time, not at the next frame's.
                self._held_back[need] = held_back if held_back is not None else frame.time
                continue
            for number, block in enumerate(blocks):
                starts_at = held_back if number == 0 and held_back is not None else frame.time
                self._hand_out(need, block.to_ndarray(), starts_at)

    def flush(self) -> None:
        for need, resampler in self._resamplers.items():
            for block in resampler.resample(None):
                self._hand_out(need, block.to_ndarray(), None)

    def _hand_out(self, need: SoundNeed, samples: np.ndarray, time_s: float | None) -> None:
        for consumer in self._groups[need]:
            consumer.add_sound(samples, time_s)
