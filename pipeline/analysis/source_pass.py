"""Every analysis a job needs of one source, from one decode of it.

A job asks for some of: the reframing analysis (cuts, subjects, motion, bars: smart framing,
cut-downs), the active area alone (bars: a plain fit or crop into another aspect ratio), the sound
activity (cut-downs), what the sync check matches (picture events and sound onsets, the mouths of
the faces and the speech activity: a source with sound) and the source's loudness (a loudness target
on a programme that is the source's sound as it is). :func:`analyse_source` asks the job's cache
for each (the on-disk analysis cache, or the flow's cached tasks); the first one the cache lacks
decodes the source once for it and every one asked for after it: one picture pass and one sound
pass together (:func:`pipeline.media.source_decode.decode_source`), each analysis taking the frames
or samples it declared, at its own size and rate. A source whose analyses are all cached is not
decoded at all. The face tracker works in a thread of its own
(:class:`pipeline.media.picture_thread.PictureThread`) while the decoder and the other analyses run.

The sync check (:func:`pipeline.analysis.sync.measure_sync`) takes all it matches from here: its
talking-face fallback, asked when the events do not decide, decodes nothing again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.analysis.lipsync import MouthTracks, SpeechActivity, landmark_model_path, mouths_thread, speech_level
from pipeline.analysis.onsets import PictureEvents, PictureEventsMeter, SoundOnsets, SoundOnsetsMeter
from pipeline.analysis.reframe.analysis import ActiveAreaMeter, ReframeAnalysis, ReframeMeter
from pipeline.analysis.reframe.bars import ActiveArea
from pipeline.analysis.sound_activity import SoundActivity, SoundActivityMeter
from pipeline.analysis.source_loudness import SourceLoudness, SourceLoudnessMeter
from pipeline.media.probe import MediaInfo
from pipeline.media.source_decode import decode_source

REFRAME = "reframe"
"""The reframing analysis's name in the cache and the manifest."""
ACTIVE_AREA = "active-area"
"""The active area's name in the cache and the manifest."""
SOUND_ACTIVITY = "sound-activity"
"""The sound activity's name in the cache and the manifest."""
PICTURE_EVENTS = "picture-events"
"""The sync check's picture events' name in the cache and the manifest."""
SOUND_ONSETS = "sound-onsets"
"""The sync check's sound onsets' name in the cache and the manifest."""
MOUTHS = "mouths"
"""The sync check's mouth tracks' name in the cache and the manifest."""
SPEECH_ACTIVITY = "speech-activity"
"""The sync check's speech activity's name in the cache and the manifest."""
SOURCE_LOUDNESS = "source-loudness"
"""The source's loudness's name in the cache and the manifest."""


Fact = (ReframeAnalysis | ActiveArea | SoundActivity | PictureEvents | SoundOnsets | MouthTracks | SpeechActivity
        | SourceLoudness | None)
"""One analysis's result."""


@dataclass(frozen=True)
class SourceNeeds:
    """Which analyses a job needs of a source."""

    reframe: bool = False
    """The reframing analysis."""
    active_area: bool = False
    """The active area alone (the reframing analysis has it too)."""
    sound_activity: bool = False
    """The sound activity (None for a source without sound)."""
    sync: bool = False
    """What the sync check matches: the picture events and sound onsets, the mouths and the
    speech activity (the sound's None for a source without sound)."""
    loudness_rate: int | None = None
    """The sample rate of the stereo programme the source's loudness is measured as
    (:class:`pipeline.analysis.source_loudness.SourceLoudnessMeter`, mono or stereo sound only);
    None: not measured."""


@dataclass(frozen=True)
class SourceFacts:
    """What the analyses found in a source; None where not asked for (or, for the sound activity,
    where the source has no sound)."""

    reframe: ReframeAnalysis | None = None
    """The reframing analysis."""
    active_area: ActiveArea | None = None
    """The active area."""
    sound_activity: SoundActivity | None = None
    """The sound activity."""
    picture_events: PictureEvents | None = None
    """The sync check's picture events."""
    sound_onsets: SoundOnsets | None = None
    """The sync check's sound onsets."""
    mouths: MouthTracks | None = None
    """The sync check's mouth of each face (also None where the face models are not installed)."""
    speech_activity: SpeechActivity | None = None
    """The sync check's speech activity."""
    loudness: SourceLoudness | None = None
    """The source's sound measured as a stereo programme at :attr:`SourceNeeds.loudness_rate`."""


def analyse_source(path: Path, media: MediaInfo, needs: SourceNeeds,
                   analyse: Callable[[str, Path, Mapping[str, Any], Callable[[], Any]], Any]) -> SourceFacts:
    """The analyses ``needs`` asks for, each through ``analyse(name, path, parameters, compute)``
    (a cache: :meth:`pipeline.analysis.cache.AnalysisCache.get_or_compute` or a step runner's), the
    first one it has to compute decoding the source once for it and those after it.

    Raises:
        MediaError: the source does not decode.
    """
    asked = ((REFRAME, needs.reframe), (ACTIVE_AREA, needs.active_area), (SOUND_ACTIVITY, needs.sound_activity),
             (PICTURE_EVENTS, needs.sync), (SOUND_ONSETS, needs.sync), (MOUTHS, needs.sync),
             (SPEECH_ACTIVITY, needs.sync), (SOURCE_LOUDNESS, needs.loudness_rate is not None))
    wanted = [name for name, needed in asked if needed]
    # Mouths found without the face models (none) must not answer once they are installed.
    parameters = {MOUTHS: {"face_models": landmark_model_path() is not None},
                  SOURCE_LOUDNESS: {"sample_rate": needs.loudness_rate}}
    pending = _PendingPass(path, media, wanted, needs.loudness_rate)
    found = {name: analyse(name, path, parameters.get(name, {}), lambda name=name: pending.result(name))
             for name in wanted}
    return SourceFacts(reframe=found.get(REFRAME), active_area=found.get(ACTIVE_AREA),
                       sound_activity=found.get(SOUND_ACTIVITY), picture_events=found.get(PICTURE_EVENTS),
                       sound_onsets=found.get(SOUND_ONSETS), mouths=found.get(MOUTHS),
                       speech_activity=found.get(SPEECH_ACTIVITY), loudness=found.get(SOURCE_LOUDNESS))


class _PendingPass:
    """The one decode of a source, run when the first analysis the cache lacks is asked for.

    Analyses are asked for in order; the pass then measures the one asked for and every one after
    it (their cache is still to be asked, and most often lacks them too). Those before it were
    answered by the cache.
    """

    def __init__(self, path: Path, media: MediaInfo, order: list[str], loudness_rate: int | None) -> None:
        self._path, self._media, self._order, self._loudness_rate = path, media, order, loudness_rate
        self._results: dict[str, Fact] = {}

    def result(self, name: str) -> Fact:
        if name not in self._results:
            self._run(set(self._order[self._order.index(name):]))
        return self._results[name]

    def _run(self, names: set[str]) -> None:
        has_sound = self._media.audio is not None
        reframe = ReframeMeter(self._path, self._media) if REFRAME in names else None
        active_area = ActiveAreaMeter(self._media.video) if ACTIVE_AREA in names else None
        events = PictureEventsMeter() if PICTURE_EVENTS in names else None
        sound_meters: dict[str, SoundActivityMeter | SoundOnsetsMeter | SourceLoudnessMeter] = {}
        if SOUND_ACTIVITY in names and has_sound:
            sound_meters[SOUND_ACTIVITY] = SoundActivityMeter(self._media)
        if {SOUND_ONSETS, SPEECH_ACTIVITY} & names and has_sound:
            # The speech activity takes the samples the onsets take (mono, 16 kHz).
            sound_meters[SOUND_ONSETS] = SoundOnsetsMeter()
        if SOURCE_LOUDNESS in names and has_sound:
            sound_meters[SOURCE_LOUDNESS] = SourceLoudnessMeter(self._media, self._loudness_rate)
        with contextlib.ExitStack() as threads:
            mouths = None
            if MOUTHS in names and landmark_model_path() is not None:
                mouths = threads.enter_context(mouths_thread(self._media.video.rotation % 360))
            pictures = [*(reframe.consumers if reframe else ()), *([active_area] if active_area else ()),
                        *([events] if events else ()), *([mouths] if mouths else ())]
            decode_source(self._path, pictures, list(sound_meters.values()))
        if reframe is not None:
            self._results[REFRAME] = reframe.result()
        if active_area is not None:
            self._results[ACTIVE_AREA] = active_area.result()
        if events is not None:
            self._results[PICTURE_EVENTS] = events.result()
        if MOUTHS in names:
            self._results[MOUTHS] = mouths.result() if mouths else None
        for name in names & {SOUND_ACTIVITY, SOUND_ONSETS, SOURCE_LOUDNESS}:
            self._results[name] = sound_meters[name].result() if has_sound else None
        if SPEECH_ACTIVITY in names:
            onsets = sound_meters.get(SOUND_ONSETS)
            self._results[SPEECH_ACTIVITY] = speech_level(*onsets.samples()) if onsets else None
