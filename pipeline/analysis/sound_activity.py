"""Where a source's sound is loud and where new sounds start, on its picture's clock: what a
cut-down (:mod:`pipeline.plan.cutdown`) needs to place its cuts on quiet points, never mid-word.

The level is the RMS of 10 ms windows of the sound mixed to mono at 16 kHz; the starts come from
:mod:`pipeline.analysis.sound_starts` on the same samples. :class:`SoundActivityMeter` takes the
sound from a source pass; :func:`sound_activity` is the stand-alone path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.analysis.sound_starts import ANALYSIS_RATE_HZ, sound_starts
from pipeline.media.probe import MediaInfo
from pipeline.media.source_decode import SoundNeed, decode_source

LEVEL_WINDOW_S = 0.01
"""Sound level is measured over windows of this length, in seconds."""
CUT_LEVEL_S = 0.03
"""The level of a cut point is the loudest within this many seconds either side of it."""
WORD_GUARD_S = 0.3
"""A cut this soon after a sound onset would cut a word (or a note) off, in seconds."""
LEAD_GUARD_S = 0.05
"""... and a cut this soon before an onset clips its attack."""
ONSET_PENALTY_DB = 30.0
"""A cut point near an onset costs as much as one this many dB louder."""
SILENCE_DB = -90.0
"""Level given to digital silence, in dBFS."""


@dataclass(frozen=True, eq=False)
class SoundActivity:
    """Where a source's sound is loud and where it starts new sounds (:mod:`pipeline.analysis.sound_starts`)."""

    level_db: np.ndarray
    """RMS level of each 10 ms window from the first video frame, dBFS, shape (windows,)."""
    onset_times_s: np.ndarray
    """Sound onsets, seconds from the first video frame, ascending."""

    def cut_cost_db(self, time_s: float) -> float:
        """How bad a cut at ``time_s`` is for the sound: the loudest level within
        :data:`CUT_LEVEL_S` of it (sound going on across the cut), plus :data:`ONSET_PENALTY_DB`
        when a sound started less than :data:`WORD_GUARD_S` before it or starts just after."""
        first = max(0, int((time_s - CUT_LEVEL_S) / LEVEL_WINDOW_S))
        last = max(first + 1, int(np.ceil((time_s + CUT_LEVEL_S) / LEVEL_WINDOW_S)))
        window = self.level_db[first:last]
        level = float(window.max()) if len(window) else SILENCE_DB
        return level + (ONSET_PENALTY_DB if self.near_onset(time_s) else 0.0)

    def near_onset(self, time_s: float) -> bool:
        """A sound started less than :data:`WORD_GUARD_S` before ``time_s`` or starts within
        :data:`LEAD_GUARD_S` after it: a cut there would cut it off or clip its attack."""
        return bool(np.any((self.onset_times_s > time_s - WORD_GUARD_S) & (self.onset_times_s <= time_s + LEAD_GUARD_S)))


class SoundActivityMeter:
    """The sound activity of one source, taking its sound from a source pass.

    The starts are judged over the whole sound, so the mono 16 kHz samples are kept (64 kB a
    second, about 4 MB for a minute); no picture is.
    """

    sound_need = SoundNeed(ANALYSIS_RATE_HZ, "mono")
    """Mono at the rate :func:`pipeline.analysis.sound_starts.sound_starts` works at."""

    def __init__(self, media: MediaInfo) -> None:
        self._media = media
        self._blocks: list[np.ndarray] = []

    def add_sound(self, samples: np.ndarray, time_s: float | None) -> None:
        """Take the next block of samples."""
        self._blocks.append(samples[0])

    def result(self) -> SoundActivity:
        """The activity of all the sound fed."""
        samples = np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)
        offset_s = float(self._media.audio.start_time_s - self._media.video.start_time_s)
        hop = int(ANALYSIS_RATE_HZ * LEVEL_WINDOW_S)
        count = len(samples) // hop
        power = (samples[: count * hop].reshape(count, hop).astype(np.float64) ** 2).mean(axis=1)
        level = np.where(power > 0, 10 * np.log10(np.maximum(power, 1e-12)), SILENCE_DB)
        # Place the level on the picture's clock: windows before the sound starts are silent.
        lead = round(offset_s / LEVEL_WINDOW_S)
        level = np.concatenate([np.full(max(0, lead), SILENCE_DB), level[max(0, -lead):]])
        return SoundActivity(level_db=level, onset_times_s=sound_starts(samples) + offset_s)


def sound_activity(path: Path, media: MediaInfo) -> SoundActivity | None:
    """Level and onsets of ``path``'s sound on its picture's clock, from a decode of its own;
    None when it has no sound.

    Raises:
        MediaError: the sound does not decode.
    """
    if media.audio is None:
        return None
    meter = SoundActivityMeter(media)
    decode_source(path, sounds=[meter])
    return meter.result()
