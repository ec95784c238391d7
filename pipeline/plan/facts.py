"""What the analyses found about a job's inputs, handed to planning as one typed value.

Planning is pure: everything it needs to know about the media (what probing, the sync check, the
reframing and cut-down analyses and the loudness passes measured) arrives here, never through
option bags, so a plan depends only on the job, the presets and these facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType

from pipeline.analysis.loudness import LoudnessCorrection
from pipeline.analysis.reframe import ReframeAnalysis
from pipeline.analysis.reframe.bars import ActiveArea
from pipeline.analysis.source_loudness import SourceLoudness
from pipeline.plan.cutdown import SoundActivity
from pipeline.media.probe import AudioStreamInfo, MediaInfo


def _frozen(mapping: Mapping | None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, eq=False)
class JobFacts:
    """The sources and measurements a job is planned from."""

    media: Mapping[Path, MediaInfo]
    """Probe results of every shot source, by resolved path."""
    music: AudioStreamInfo | None = None
    """Probe result of the job's music bed; None without one."""
    sync_corrections: Mapping[Path, Fraction] = field(default_factory=dict)
    """Seconds to move each source's sound against its picture (sync policy ``fix``), by source."""
    reframe: Mapping[Path, ReframeAnalysis] = field(default_factory=dict)
    """Reframing analysis by source (burned-in bars, subjects, cuts); a ``smart`` deliverable
    without one for a source is planned as a centre crop of it."""
    sound_activity: Mapping[Path, SoundActivity | None] = field(default_factory=dict)
    """Each source's sound level and onsets, where a cut-down chooses its pieces by them."""
    loudness: Mapping[str, LoudnessCorrection] = field(default_factory=dict)
    """Measured loudness corrections by deliverable label; each is applied in the deliverable's
    encode, and its target becomes part of what the output is verified against."""
    source_loudness: Mapping[Path, SourceLoudness] = field(default_factory=dict)
    """A source's sound measured as a stereo programme in its source pass, where a programme may
    be that sound as it is (:func:`pipeline.plan.programme_sound.source_sound_programmes`)."""
    active_area: Mapping[Path, ActiveArea] = field(default_factory=dict)
    """Active area (inside burned-in bars) by source, where it was measured without a reframing
    analysis (a plain fit or crop into another aspect ratio needs no more)."""

    def __post_init__(self) -> None:
        for name in ("media", "sync_corrections", "reframe", "sound_activity", "loudness", "source_loudness",
                     "active_area"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def __reduce__(self):
        """Pickled as plain dicts (a read-only mapping view does not pickle), rebuilt read-only."""
        return JobFacts, (dict(self.media), self.music, dict(self.sync_corrections), dict(self.reframe),
                          dict(self.sound_activity), dict(self.loudness), dict(self.source_loudness),
                          dict(self.active_area))

    def with_loudness(self, loudness: Mapping[str, LoudnessCorrection] | None) -> JobFacts:
        """The same facts with other loudness corrections (a cut-down's, a limiter pass's)."""
        return replace(self, loudness=loudness or {})

    def with_sources(self, substitutes: Mapping[Path, Path], substitute_media: Mapping[Path, MediaInfo]) -> JobFacts:
        """The facts of a job whose sources are read from ``substitutes`` (enhanced intermediates):
        what was measured of a source follows it to the file read in its place."""
        def moved(by_source: Mapping[Path, object]) -> dict:
            return {substitutes.get(path, path): value for path, value in by_source.items()}

        return replace(self, media={**self.media, **substitute_media}, sync_corrections=moved(self.sync_corrections),
                       reframe=moved(self.reframe), active_area=moved(self.active_area),
                       sound_activity=moved(self.sound_activity))
