"""Every analysis a job needs of one source, from one decode of it.

A job asks for some of: the reframing analysis (cuts, subjects, motion, bars: smart framing,
another aspect ratio, cut-downs) and the sound activity (cut-downs). :func:`analyse_source` asks
the job's cache for each (the on-disk analysis cache, or the flow's cached tasks); the first one
the cache lacks decodes the source once for every analysis asked for: one picture pass and one
sound pass together (:func:`pipeline.media.source_decode.decode_source`), each analysis taking the
frames or samples it declared, at its own size and rate. A source whose analyses are all cached is
not decoded at all.

The sync check (:mod:`pipeline.analysis.sync`) still decodes on its own: its picture events and
sound onsets are measured inside :func:`~pipeline.analysis.sync.measure_sync` from the file's path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.analysis.reframe.analysis import ReframeAnalysis, ReframeMeter
from pipeline.analysis.sound_activity import SoundActivity, SoundActivityMeter
from pipeline.media.probe import MediaInfo
from pipeline.media.source_decode import decode_source

REFRAME = "reframe"
"""The reframing analysis's name in the cache and the manifest."""
SOUND_ACTIVITY = "sound-activity"
"""The sound activity's name in the cache and the manifest."""


@dataclass(frozen=True)
class SourceNeeds:
    """Which analyses a job needs of a source."""

    reframe: bool = False
    """The reframing analysis."""
    sound_activity: bool = False
    """The sound activity (None for a source without sound)."""


@dataclass(frozen=True)
class SourceFacts:
    """What the analyses found in a source; None where not asked for (or, for the sound activity,
    where the source has no sound)."""

    reframe: ReframeAnalysis | None = None
    """The reframing analysis."""
    sound_activity: SoundActivity | None = None
    """The sound activity."""


def analyse_source(path: Path, media: MediaInfo, needs: SourceNeeds,
                   analyse: Callable[[str, Path, Mapping[str, Any], Callable[[], Any]], Any]) -> SourceFacts:
    """The analyses ``needs`` asks for, each through ``analyse(name, path, parameters, compute)``
    (a cache: :meth:`pipeline.analysis.cache.AnalysisCache.get_or_compute` or a step runner's), the
    first one it has to compute decoding the source once for all of them.

    Raises:
        MediaError: the source does not decode.
    """
    wanted = [name for name, needed in ((REFRAME, needs.reframe), (SOUND_ACTIVITY, needs.sound_activity)) if needed]
    pending = _PendingPass(path, media, wanted)
    found = {name: analyse(name, path, {}, lambda name=name: pending.result(name)) for name in wanted}
    return SourceFacts(reframe=found.get(REFRAME), sound_activity=found.get(SOUND_ACTIVITY))


class _PendingPass:
    """The one decode of a source, run when the first analysis the cache lacks is asked for.

    Analyses are asked for in order; the pass then measures the one asked for and every one after
    it (their cache is still to be asked, and most often lacks them too). Those before it were
    answered by the cache.
    """

    def __init__(self, path: Path, media: MediaInfo, order: list[str]) -> None:
        self._path, self._media, self._order = path, media, order
        self._results: dict[str, ReframeAnalysis | SoundActivity | None] = {}

    def result(self, name: str) -> ReframeAnalysis | SoundActivity | None:
        if name not in self._results:
            self._run(set(self._order[self._order.index(name):]))
        return self._results[name]

    def _run(self, names: set[str]) -> None:
        reframe = ReframeMeter(self._path, self._media) if REFRAME in names else None
        has_sound = self._media.audio is not None
        sound = SoundActivityMeter(self._media) if SOUND_ACTIVITY in names and has_sound else None
        decode_source(self._path, reframe.consumers if reframe else (), [sound] if sound else ())
        if reframe is not None:
            self._results[REFRAME] = reframe.result()
        if SOUND_ACTIVITY in names:
            self._results[SOUND_ACTIVITY] = sound.result() if sound else None
