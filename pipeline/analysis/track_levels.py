"""What each audio track of a file carries, and the programme's loudness, from one decode.

A deliverable may spread its programme over mono tracks (XDCAM's eight-mono layout) and
carry copies or silence on the others; verification and QC measure the programme over the tracks
that make it, and each track's level to tell sound from silence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from pipeline.errors import MediaError
from pipeline.analysis.loudness import LoudnessMeasurement, LoudnessMeter, channel_weights

STEREO = ("FL", "FR")
"""The channels of a stereo programme, however it is laid out in tracks."""


@dataclass(frozen=True)
class TrackLevel:
    """One audio track's level."""

    channels: int
    """Channel count."""
    sample_count: int
    """Decoded samples per channel."""
    rms_dbfs: tuple[float, ...]
    """RMS level of each channel, dBFS (a full-scale square wave is 0); -inf for digital silence."""

    @property
    def silent(self) -> bool:
        """True when every sample of every channel is zero."""
        return all(math.isinf(level) for level in self.rms_dbfs)


@dataclass(frozen=True)
class TrackLevels:
    """Every audio track's level and the programme's loudness."""

    tracks: tuple[TrackLevel, ...]
    """One per audio stream, in order."""
    programme: LoudnessMeasurement | None
    """BS.1770 loudness of the programme tracks together; None when not asked for."""


class ProgrammeAssembler:
    """Joins the programme's tracks (one stereo stream, or two mono streams) into stereo blocks.

    Packets of different streams arrive interleaved, each stream at its own pace; samples are held
    per stream until every programme stream has some, then handed on side by side. The first
    ``skip`` samples (a leader before the programme) are dropped.
    """

    def __init__(self, streams: list, skip: int = 0):
        self.streams = {stream.index: position for position, stream in enumerate(streams)}
        self.rate = streams[0].rate
        self._pending = [np.zeros((stream.channels, 0), np.float32) for stream in streams]
        self._skip = skip

    def add(self, stream_index: int, samples: np.ndarray) -> np.ndarray | None:
        """Add one stream's samples (channels, n); the programme samples now complete, if any."""
        position = self.streams[stream_index]
        self._pending[position] = np.concatenate([self._pending[position], samples], axis=1)
        ready = min(pending.shape[1] for pending in self._pending)
        if not ready:
            return None
        block = np.concatenate([pending[:, :ready] for pending in self._pending])
        self._pending = [pending[:, ready:] for pending in self._pending]
        skipped = min(self._skip, ready)
        self._skip -= skipped
        return block[:, skipped:] if skipped < ready else None


def programme_meter(rate: int, channels: tuple[str, ...] = STEREO) -> LoudnessMeter:
    """A BS.1770 meter for a programme of ``channels`` (ffmpeg's names: ``FL``, ``FC``, ``LFE``...)."""
    return LoudnessMeter(rate, channel_weights(list(channels)))


def measure_tracks(path: str | Path, programme_tracks: tuple[int, ...], loudness: bool = True,
                   programme_start_sample: int = 0, programme_channels: tuple[str, ...] = STEREO) -> TrackLevels:
    """Decode every audio stream of ``path``: each one's level, and (with ``loudness``) the loudness
    of the programme made of the audio streams numbered ``programme_tracks`` (0: the first audio
    stream), whose channels are ``programme_channels`` in order, from ``programme_start_sample`` on
    (after a leader). Levels and sample counts are of whole tracks, leader included.

    Raises:
        MediaError: the file has fewer audio streams than the programme needs, or they do not decode.
    """
    try:
        with av.open(str(path)) as container:
            streams = list(container.streams.audio)
            if len(streams) <= max(programme_tracks):
                raise MediaError(path, f"has {len(streams)} audio stream(s); the programme needs "
                                       f"{max(programme_tracks) + 1}")
            assembler = ProgrammeAssembler([streams[number] for number in programme_tracks], programme_start_sample)
            meter = programme_meter(assembler.rate, programme_channels) if loudness else None
            squares = {stream.index: np.zeros(stream.channels) for stream in streams}
            counts = dict.fromkeys(squares, 0)
            resamplers = {stream.index: av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
                          for stream in streams}

            def take(index: int, samples: np.ndarray) -> None:
                squares[index] += np.square(samples, dtype=np.float64).sum(axis=1)
                counts[index] += samples.shape[1]
                if meter is not None and index in assembler.streams:
                    block = assembler.add(index, samples)
                    if block is not None:
                        meter.feed(block)

            for packet in container.demux(*streams):
                for frame in packet.decode():
                    for converted in resamplers[packet.stream.index].resample(frame):
                        take(packet.stream.index, converted.to_ndarray())
            for index, resampler in resamplers.items():
                for converted in resampler.resample(None):
                    take(index, converted.to_ndarray())
            order = [stream.index for stream in streams]
    except av.error.FFmpegError as error:
        raise MediaError(path, f"audio does not decode ({error.strerror or error})") from error
    tracks = tuple(
        TrackLevel(
            channels=len(squares[index]),
            sample_count=counts[index],
            rms_dbfs=tuple(_dbfs(total, counts[index]) for total in squares[index]),
        )
        for index in order
    )
    return TrackLevels(tracks, meter.result() if meter is not None else None)


def _dbfs(sum_of_squares: float, count: int) -> float:
    if not count or sum_of_squares == 0:
        return -math.inf
    return 10 * math.log10(sum_of_squares / count)
