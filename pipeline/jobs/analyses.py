"""The job's look at its inputs before planning: probing, the sync check, the reframing and
cut-down analyses. Each analysis of a source goes through an :data:`Analyse` function, which the
step runner backs with a cache keyed by the source's content (:mod:`pipeline.jobs.steps`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from pipeline.analysis.reframe import ReframeAnalysis
from pipeline.analysis.reframe.bars import ActiveArea
from pipeline.analysis.sound_activity import SoundActivity, sound_activity
from pipeline.analysis.source_loudness import SourceLoudness
from pipeline.analysis.source_pass import SourceFacts, SourceNeeds, analyse_source
from pipeline.analysis.sync import STANDARDS, SyncReport, measure_sync
from pipeline.errors import MediaError
from pipeline.media.probe import AudioStreamInfo, MediaInfo, probe, probe_audio
from pipeline.model.job import Job
from pipeline.model.presets import Preset
from pipeline.plan.facts import JobFacts
from pipeline.plan.outputs import picture_format, resolve_preset
from pipeline.plan.programme_sound import source_sound_programmes

Result = TypeVar("Result")
Analyse = Callable[[str, Path, Mapping[str, Any], Callable[[], Result]], Result]
"""``analyse(analysis, source, parameters, compute)``: ``compute()``'s result, or the same
analysis's result from a cache (see :meth:`pipeline.analysis.cache.AnalysisCache.get_or_compute`)."""


def unique_sources(job: Job) -> list[Path]:
    """Each source file once, in first-use order."""
    return list(dict.fromkeys(shot.source for shot in job.shots))


def expanded(job: Job) -> Job:
    """``job`` with each deliverable's cut-downs listed as deliverables of their own."""
    return job.model_copy(update={"deliverables": [each for d in job.deliverables for each in d.expanded()]})


def probe_sources(job: Job) -> dict[Path, MediaInfo]:
    """Probe each source once.

    Raises:
        MediaError: a source is missing, unreadable or unsupported.
    """
    return {source: probe(source) for source in unique_sources(job)}


def probe_music(job: Job) -> AudioStreamInfo | None:
    """Probe the job's music bed, if it has one.

    Raises:
        MediaError: the music file is missing, unreadable or silent.
    """
    return probe_audio(job.music.source) if job.music else None


def check_sync(job: Job, media: Mapping[Path, MediaInfo], analyse: Analyse,
               facts: Mapping[Path, SourceFacts] | None = None,
               ) -> tuple[dict[Path, SyncReport], dict[Path, Fraction]]:
    """Measure every source with sound and apply the job's sync policy. What the check matches of
    a source (events, mouths, speech) comes from ``facts`` where the source pass measured it (see
    :func:`analyse_sources`); otherwise the sync check decodes the source itself.

    Returns:
        The reports by source, and the corrections (seconds to move each source's sound) that the
        ``fix`` policy asks the planner to apply: out-of-sync sources only, undetermined ones left be.

    Raises:
        MediaError: the policy is ``fail`` and a source's sound is out of sync; the message gives
            the measured offset and the standard's limits.
    """
    standard = STANDARDS[job.sync.standard]
    facts = facts or {}

    def measured(path: Path, info: MediaInfo) -> SyncReport:
        return measure_sync(path, info, standard, facts=facts.get(path))

    reports = {
        path: analyse("sync", path, {"standard": job.sync.standard}, lambda path=path, info=info: measured(path, info))
        for path, info in media.items() if info.audio is not None
    }
    out_of_sync = {path: report for path, report in reports.items() if report.verdict == "out_of_sync"}
    if job.sync.policy == "fail" and out_of_sync:
        path, report = next(iter(out_of_sync.items()))
        raise MediaError(
            path,
            f"sound is {abs(report.offset_ms)} ms {'late' if report.offset_ms > 0 else 'early'} "
            f"(confidence {report.confidence:.2f}), outside {standard.title}: it may lead by "
            f"{standard.max_lead_ms} ms and lag by {standard.max_lag_ms} ms (sync policy: fail)",
        )
    corrections = {}
    if job.sync.policy == "fix":
        corrections = {path: -Fraction(report.offset_ms, 1000) for path, report in out_of_sync.items()}
    return reports, corrections


@dataclass(frozen=True)
class SourceAnalyses:
    """What the one decode of each source found for the job (:func:`analyse_sources`)."""

    reframe: dict[Path, ReframeAnalysis]
    """The reframing analysis of each source that needs one."""
    active_area: dict[Path, ActiveArea]
    """The active area of each source that needs only that."""
    sound_activity: dict[Path, SoundActivity | None]
    """Each source's sound activity where there are cut-downs (None: no sound); else empty."""
    sync_facts: dict[Path, SourceFacts]
    """What :func:`check_sync` matches of each source with sound (events, mouths, speech)."""
    loudness: dict[Path, SourceLoudness] = field(default_factory=dict)
    """The source's sound measured as its programme, where the job's programme may be that sound
    as it is; else empty."""


def analyse_sources(job: Job, media: Mapping[Path, MediaInfo], presets: dict[str, Preset], analyse: Analyse,
                    *, sync: bool = False, loudness: bool = False) -> SourceAnalyses:
    """The analyses the job needs of each source, what the cache lacks from one decode of the
    source (:mod:`pipeline.analysis.source_pass`): the reframing analysis (cuts, subjects, motion,
    burned-in bars) where needed, the sound activity with cut-downs, with ``sync`` what the sync
    check matches (picture events, sound onsets, mouths, speech activity) for each source with
    sound, and with ``loudness`` the source's loudness where the job's programme may be its sound as
    it is (at the one sample rate of those programmes:
    :func:`pipeline.plan.programme_sound.source_sound_programmes`).

    A source needs the reframing analysis when a deliverable is ``smart`` or a cut-down; it serves
    every deliverable. Without one, a deliverable of another aspect ratio than the source needs its
    active area alone (burned-in bars then matter), a small part of the analysis's cost.

    Raises:
        MediaError: a source does not decode.
    """
    every = expanded(job)
    resolved = [resolve_preset(every, index, presets) for index in range(len(every.deliverables))]
    shapes = [picture_format(preset, next(iter(media.values()))) for preset in resolved]
    every_source = any(preset.video.fit == "smart" for preset in resolved) or any(
        deliverable.duration_s for deliverable in every.deliverables)
    cutdowns = any(deliverable.cutdowns for deliverable in job.deliverables)
    rates = set(source_sound_programmes(job, JobFacts(media), presets).values()) if loudness else set()
    loudness_rate = rates.pop() if len(rates) == 1 else None
    found = SourceAnalyses({}, {}, {}, {})
    for path, info in media.items():
        source_aspect = info.video.display_aspect_ratio
        other_aspect = any(Fraction(shape.width, shape.height) != source_aspect for shape in shapes)
        needs = SourceNeeds(
            reframe=every_source,
            active_area=other_aspect and not every_source,
            sound_activity=cutdowns,
            sync=sync and info.audio is not None,
            loudness_rate=loudness_rate,
        )
        facts = analyse_source(path, info, needs, analyse)
        if needs.reframe:
            found.reframe[path] = facts.reframe
        if needs.active_area:
            found.active_area[path] = facts.active_area
        if needs.sound_activity:
            found.sound_activity[path] = facts.sound_activity
        if needs.sync:
            found.sync_facts[path] = facts
        if facts.loudness is not None:
            found.loudness[path] = facts.loudness
    return found


def sound_activities(job: Job, media: Mapping[Path, MediaInfo],
                     analyse_source: Analyse) -> dict[Path, SoundActivity | None]:
    """Each source's sound level and onsets, where cut-downs choose their pieces by them; nothing
    for a job without cut-downs. (:func:`analyse_sources` measures them in its pass; this is for a
    plan made without it.)

    Raises:
        MediaError: a source's sound does not decode.
    """
    if not any(deliverable.cutdowns for deliverable in job.deliverables):
        return {}
    return {
        source: analyse_source("sound-activity", source, {},
                               lambda source=source: sound_activity(source, media[source]))
        for source in unique_sources(job)
    }
