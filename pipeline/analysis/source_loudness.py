"""A source's sound measured as a stereo programme carries it, in the source pass.

Where a programme is one source's sound as it is (:func:`pipeline.jobs.loudness_plan.loudness_corrections`
decides), its first loudness measurement comes from the source pass (:mod:`pipeline.analysis.source_pass`)
instead of a render of its own: the sound resampled to the programme's rate and measured per BS.1770-4
(:class:`pipeline.analysis.loudness.LoudnessMeter`), as the conform would hand it to the encoder
(:func:`pipeline.plan.conform.to_stereo`). Sources with more than two channels are not measured
here: their downmix is the conform's to make.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.analysis.loudness import LoudnessMeasurement, LoudnessMeter
from pipeline.media.probe import MediaInfo
from pipeline.media.source_decode import SoundNeed

DUAL_MONO_WEIGHT = 2.0
"""A mono source goes out as dual mono at full level: two equal channels weighted 1.0 each
measure as the one channel weighted 2.0 (and peak where it peaks)."""


@dataclass(frozen=True)
class SourceLoudness:
    """A source's sound measured as a stereo programme."""

    sample_rate: int
    """The programme's samples per second it was measured at."""
    measurement: LoudnessMeasurement
    """What the meter found."""


def measurable(media: MediaInfo) -> bool:
    """Whether the source pass can measure ``media``'s sound as a stereo programme: it has mono or
    stereo sound."""
    return media.audio is not None and media.audio.channels <= 2


class SourceLoudnessMeter:
    """The loudness of one source's sound at a programme's sample rate, taking its sound from a
    source pass; memory: one value per 100 ms."""

    def __init__(self, media: MediaInfo, sample_rate: int) -> None:
        """Args:
            media: The source, with mono or stereo sound (see :func:`measurable`).
            sample_rate: The programme's samples per second.
        """
        mono = media.audio.channels == 1
        self.sound_need = SoundNeed(sample_rate, "mono" if mono else "stereo")
        self._rate = sample_rate
        self._meter = LoudnessMeter(sample_rate, [DUAL_MONO_WEIGHT] if mono else [1.0, 1.0])

    def add_sound(self, samples: np.ndarray, time_s: float | None) -> None:
        """Take the next block of samples."""
        self._meter.feed(samples)

    def result(self) -> SourceLoudness:
        """The measurement of all the sound fed."""
        return SourceLoudness(self._rate, self._meter.result())
