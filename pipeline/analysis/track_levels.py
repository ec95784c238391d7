"""What each audio track of a file carries, the programme's loudness and its peak envelope, measured
as the file decodes.

A deliverable may spread its programme over mono tracks (XDCAM's eight-mono layout) and
carry copies or silence on the others; verification measures each track's level (to tell sound from
silence and copies from the programme) and the programme's loudness over the tracks that make it;
QC reads the same measurement for its loudness, true peak and silence checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from pipeline.analysis.loudness import LoudnessMeasurement, LoudnessMeter, channel_weights
from pipeline.media.output_decode import AudioTrackFormat

STEREO = ("FL", "FR")
"""The channels of a stereo programme, however it is laid out in tracks."""
ENVELOPE_BLOCK_S = Fraction(1, 100)
"""The programme's peak envelope has one minimum and maximum per 10 ms."""


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


@dataclass(frozen=True, eq=False)
class SoundMeasures:
    """Every audio track's level, and the programme's loudness and envelope after any leader."""

    tracks: tuple[TrackLevel, ...]
    """One per audio stream, in order (leader included)."""
    programme: LoudnessMeasurement | None
    """BS.1770 loudness of the programme; None when the file has none of its tracks."""
    programme_samples: int
    """Programme samples per channel after the leader."""
    sample_rate: int
    """The programme's samples per second."""
    envelope: np.ndarray
    """Shape (2, blocks): minimum and maximum of all programme channels per :data:`ENVELOPE_BLOCK_S`."""


class ProgrammeAssembler:
    """Joins the programme's tracks (one stream, or two mono streams) into blocks of all its channels.

    Packets of different streams arrive interleaved, each stream at its own pace; samples are held
    per track until every programme track has some, then handed on side by side. The first
    ``skip`` samples (a leader before the programme) are dropped.
    """

    def __init__(self, tracks: dict[int, int], skip: int = 0):
        """Args:
            tracks: Channel count of each programme track, by track number, in programme order.
            skip: Samples to drop from the start.
        """
        self.tracks = {number: position for position, number in enumerate(tracks)}
        self._pending = [np.zeros((channels, 0), np.float32) for channels in tracks.values()]
        self._skip = skip

    def add(self, track: int, samples: np.ndarray) -> np.ndarray | None:
        """Add one track's samples (channels, n); the programme samples now complete, if any."""
        position = self.tracks[track]
        self._pending[position] = np.concatenate([self._pending[position], samples], axis=1)
        ready = min(pending.shape[1] for pending in self._pending)
        if not ready:
            return None
        block = np.concatenate([pending[:, :ready] for pending in self._pending])
        self._pending = [pending[:, ready:] for pending in self._pending]
        skipped = min(self._skip, ready)
        self._skip -= skipped
        return block[:, skipped:] if skipped < ready else None


class _Envelope:
    """Minimum and maximum of all channels per block, fed as the sound decodes."""

    def __init__(self, block: int, channels: int):
        self.block = block
        self._pending = np.zeros((channels, 0), np.float32)
        self._minima: list[np.ndarray] = []
        self._maxima: list[np.ndarray] = []

    def feed(self, samples: np.ndarray) -> None:
        self._pending = np.concatenate([self._pending, samples], axis=1)
        whole = self._pending.shape[1] // self.block
        if whole:
            blocks = self._pending[:, : whole * self.block].reshape(-1, whole, self.block)
            self._minima.append(blocks.min(axis=(0, 2)))
            self._maxima.append(blocks.max(axis=(0, 2)))
            self._pending = self._pending[:, whole * self.block :]

    def result(self) -> np.ndarray:
        minima, maxima = list(self._minima), list(self._maxima)
        if self._pending.shape[1]:
            minima.append(np.array([self._pending.min()]))
            maxima.append(np.array([self._pending.max()]))
        if not minima:
            return np.zeros((2, 0), np.float32)
        return np.stack([np.concatenate(minima), np.concatenate(maxima)])


class SoundMeter:
    """Measures every track and the programme from one decode's :class:`~pipeline.media.output_decode.SoundBlock` s."""

    def __init__(self, tracks: tuple[AudioTrackFormat, ...], programme_tracks: tuple[int, ...],
                 programme_start_sample: int = 0, programme_channels: tuple[str, ...] = STEREO):
        """Args:
            tracks: Every audio track's format.
            programme_tracks: The tracks that make the programme (those the file lacks are left out).
            programme_start_sample: Samples of leader before the programme, left out of its measures.
            programme_channels: The programme's channels in track order (ffmpeg's names: ``FL``,
                ``FC``, ``LFE``...), for the loudness weights when it spans several tracks.
        """
        programme = [number for number in programme_tracks if number < len(tracks)]
        self._squares = [np.zeros(len(track.channel_names)) for track in tracks]
        self._counts = [0] * len(tracks)
        self._assembler = ProgrammeAssembler({number: len(tracks[number].channel_names) for number in programme},
                                             programme_start_sample) if programme else None
        # One track is weighted by its own layout; mono tracks joined as the programme's channels.
        names = tracks[programme[0]].channel_names if len(programme) == 1 else programme_channels
        self._rate = tracks[programme[0]].sample_rate if programme else 0
        self._meter = LoudnessMeter(self._rate, channel_weights(list(names))) if programme else None
        self._envelope = _Envelope(int(ENVELOPE_BLOCK_S * self._rate), len(names)) if programme else None
        self._programme_samples = 0

    def feed(self, track: int, samples: np.ndarray) -> None:
        """Add decoded samples of ``track``, float full scale 1.0, shape (channels, n)."""
        self._squares[track] += np.square(samples, dtype=np.float64).sum(axis=1)
        self._counts[track] += samples.shape[1]
        if self._assembler is not None and track in self._assembler.tracks:
            block = self._assembler.add(track, samples)
            if block is not None:
                self._programme_samples += block.shape[1]
                self._meter.feed(block)
                self._envelope.feed(block)

    def result(self) -> SoundMeasures:
        """What the whole decode measured."""
        tracks = tuple(
            TrackLevel(len(squares), count, tuple(_dbfs(total, count) for total in squares))
            for squares, count in zip(self._squares, self._counts, strict=True)
        )
        if self._meter is None:
            return SoundMeasures(tracks, None, 0, 0, np.zeros((2, 0), np.float32))
        return SoundMeasures(tracks, self._meter.result(), self._programme_samples, self._rate,
                             self._envelope.result())


def _dbfs(sum_of_squares: float, count: int) -> float:
    if not count or sum_of_squares == 0:
        return -math.inf
    return 10 * math.log10(sum_of_squares / count)
