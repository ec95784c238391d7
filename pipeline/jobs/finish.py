"""Finishing a job without an orchestrator: probe and sync-check the sources, plan, render and
verify, export the cut for editors, write the manifest.

The Prefect flow in ``flows/finish_job.py`` runs these same steps as tasks; this module is the plain
library path (scripts, benchmarks, tests of the library).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from pipeline.files import write_text_atomically
from pipeline.jobs.enhanced_plan import plan_enhanced_job
from pipeline.jobs.loudness_plan import loudness_corrections
from pipeline.prestage.enhance_stage import StageKey
from pipeline.analysis.cache import AnalysisCache
from pipeline.media.content_credentials import signing_config
from pipeline.errors import JobError, MediaError, OutputWriteError, QcFailedError
from pipeline.render.locks import output_folder_lock
from pipeline.qc.checks import QcReport, run_qc
from pipeline.qc.html_report import write_html
from pipeline.model.job import Job
from pipeline.export.manifest import Timings, build_manifest, write_manifest
from pipeline.media.runner import Progress
from pipeline.export.otio_export import write_editorial_exports
from pipeline.analysis.sound_activity import SoundActivity, sound_activity
from pipeline.analysis.source_pass import SourceNeeds, analyse_source
from pipeline.plan.cutdown import choose_pieces, cutdown_job, units_of
from pipeline.plan.planner import (
    JobPlan,
    RenderPlan,
    picture_format,
    plan_conformed_media,
    plan_job,
    resolve_preset,
)
from pipeline.analysis.reframe import ReframeAnalysis
from pipeline.timeline.sequence import build_timeline, sequence_layout, sequence_rate
from pipeline.model.timebase import seconds_to_frames
from pipeline.model.presets import Preset, load_presets
from pipeline.media.probe import AudioStreamInfo, MediaInfo, probe, probe_audio
from pipeline.render.renderer import RenderedOutput, remove_intermediates, render
from pipeline.analysis.sync import STANDARDS, SyncReport, SyncStandard, measure_sync

RenderProgress = Callable[[RenderPlan, Progress], None]
log = logging.getLogger(__name__)


def output_dir_for(job: Job, out_dir: Path | None) -> Path:
    """The command line's folder, else the job file's ``output.dir``.

    Raises:
        JobError: neither names a folder.
    """
    folder = out_dir or job.output.dir
    if folder is None:
        raise JobError("no output folder: pass --out DIR or set output.dir in the job file")
    return Path(folder).resolve()


def manifest_path(job: Job, out_dir: Path) -> Path:
    """Where a job's manifest goes."""
    return out_dir / f"{job.name}.manifest.json"


def unique_sources(job: Job) -> list[Path]:
    """Each source file once, in first-use order."""
    return list(dict.fromkeys(shot.source for shot in job.shots))


EDITORIAL_SUFFIXES = (".otio", ".edl", ".xml")
"""The editorial exports' suffixes after the job's name (see :mod:`pipeline.export.otio_export`)."""


def discard_outputs(plan: JobPlan, out_dir: Path) -> None:
    """Remove what a job wrote before it failed short of its manifest (deliverables, conformed
    media, QC reports, editorial exports), so no deliverable lies in the folder unrecorded."""
    paths = [output.path for render_plan in (*plan.renders, *plan.editorial_media) for output in render_plan.outputs]
    paths += [path.with_name(f"{path.stem}.qc.json") for path in paths]
    paths += [out_dir / f"{plan.job.name}{suffix}" for suffix in (".qc.html", *EDITORIAL_SUFFIXES)]
    for path in paths:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def recorded_or_removed(plan: JobPlan, out_dir: Path) -> Iterator[None]:
    """Run the steps from the renders to the manifest: if one fails, whatever of ``plan``'s
    outputs and reports was written is removed again.

    Raises:
        OutputWriteError: a file could not be written (a full disk), instead of the bare OSError.
    """
    try:
        yield
    except BaseException as error:
        discard_outputs(plan, out_dir)
        if isinstance(error, OSError):
            raise OutputWriteError(error.filename or out_dir, error) from error
        raise


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


def check_sync(job: Job, media: dict[Path, MediaInfo], cache: AnalysisCache | None = None,
               ) -> tuple[dict[Path, SyncReport], dict[Path, Fraction]]:
    """Measure every source with sound and apply the job's sync policy.

    Returns:
        The reports by source, and the corrections (seconds to move each source's sound) that the
        ``fix`` policy asks the planner to apply: out-of-sync sources only, undetermined ones left be.

    Raises:
        MediaError: the policy is ``fail`` and a source's sound is out of sync; the message gives
            the measured offset and the standard's limits.
    """
    standard = STANDARDS[job.sync.standard]
    cache = cache or AnalysisCache(None)
    reports = {
        path: cache.get_or_compute(
            "sync", path, {"standard": job.sync.standard}, lambda path=path, info=info: _measure_sync(path, info, standard, cache))
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


def _measure_sync(path: Path, info: MediaInfo, standard: SyncStandard, cache: AnalysisCache) -> SyncReport:
    """:func:`measure_sync` from the sync events of the source pass (run by :func:`analyse_sources`)."""
    events = analyse_source(path, info, SourceNeeds(sync_events=True), cache)
    return measure_sync(path, info, standard, picture=events.picture_events, sound=events.sound_onsets)


def analyse_sources(job: Job, media: dict[Path, MediaInfo], presets: dict[str, Preset],
                    cache: AnalysisCache | None = None, sync: bool = False) -> dict[Path, ReframeAnalysis]:
    """Reframing analysis (cuts, subjects, motion, burned-in bars) of each source that needs it, once,
    and with cut-downs each source's sound activity, from one decode of the source
    (:mod:`pipeline.analysis.source_pass`); the sound activity stays in ``cache`` for planning.
    With ``sync``, the same decode measures the events :func:`check_sync` (run after) matches, for
    each source with sound.

    A source needs the reframing analysis when a deliverable is ``smart`` or a cut-down, or has
    another aspect ratio than the source (burned-in bars then matter); it serves every deliverable.

    Raises:
        MediaError: a source does not decode.
    """
    expanded = _expanded(job)
    shapes = [picture_format(resolve_preset(expanded, index, presets), next(iter(media.values())))
              for index in range(len(expanded.deliverables))]
    specs = [resolve_preset(expanded, index, presets).video for index in range(len(expanded.deliverables))]
    every_source = any(spec.fit == "smart" for spec in specs) or any(
        deliverable.duration_s for deliverable in expanded.deliverables)
    analyses = {}
    cache = cache or AnalysisCache(None)
    cutdowns = any(deliverable.duration_s for deliverable in expanded.deliverables)
    for path, info in media.items():
        source_aspect = info.video.display_aspect_ratio
        reframe = every_source or any(Fraction(shape.width, shape.height) != source_aspect for shape in shapes)
        needs = SourceNeeds(reframe=reframe, sound_activity=cutdowns, sync_events=sync and info.audio is not None)
        facts = analyse_source(path, info, needs, cache)
        if facts.reframe is not None:
            analyses[path] = facts.reframe
    return analyses


def _expanded(job: Job) -> Job:
    """``job`` with each deliverable's cut-downs listed as deliverables of their own."""
    return job.model_copy(update={"deliverables": [each for d in job.deliverables for each in d.expanded()]})


def plan_with_analysis(
    job: Job, media: dict[Path, MediaInfo], presets: dict[str, Preset], out_dir: Path,
    analyses: dict[Path, ReframeAnalysis], cache: AnalysisCache | None = None, **options,
) -> JobPlan:
    """Plan the job's whole-length deliverables and each cut-down (a job of its own, see
    :mod:`pipeline.plan.cutdown`), reframed from ``analyses``; ``options`` go to :func:`plan_job`.
    The cut-downs' sound activity comes from ``cache`` where it holds it.

    Enhanced sources (:mod:`pipeline.prestage.enhance_stage`) are made once for all of them and listed in
    the plan's ``scratch_files``; if planning fails, the ones already made are removed here.

    Raises:
        JobError: as :func:`plan_job`, or a cut-down longer than the sequence.
    """
    made: dict[StageKey, Path] = {}
    try:
        return _plan_with_analysis(job, media, presets, out_dir, analyses, made, cache or AnalysisCache(None), **options)
    except BaseException:
        for path in made.values():
            path.unlink(missing_ok=True)
        raise


def _plan_with_analysis(
    job: Job, media: dict[Path, MediaInfo], presets: dict[str, Preset], out_dir: Path,
    analyses: dict[Path, ReframeAnalysis], made: dict[StageKey, Path], cache: AnalysisCache, **options,
) -> JobPlan:
    expanded = _expanded(job)
    whole = [d for d in expanded.deliverables if d.duration_s is None]
    renders = []
    if whole:
        renders += plan_enhanced_job(expanded.model_copy(update={"deliverables": whole}), media, presets, out_dir,
                                     made=made, reframe=analyses, **options).renders
    sounds: dict[Path, SoundActivity | None] = {}
    # Cut-downs re-time overlays against the whole sequence, counted at its own rate.
    edit_rate = sequence_rate(job, media)
    sequence_s = Fraction(sequence_layout(job, media).frame_count) / edit_rate
    for index, deliverable in enumerate(expanded.deliverables):
        if deliverable.duration_s is None:
            continue
        preset = resolve_preset(expanded, index, presets)
        rate = picture_format(preset, media[job.shots[0].source]).frame_rate
        for source in unique_sources(job):
            if source not in sounds:
                sounds[source] = cache.get_or_compute(
                    "sound-activity", source, {}, lambda source=source: sound_activity(source, media[source]))
        target = seconds_to_frames(Fraction(str(deliverable.duration_s)), rate)
        try:
            pieces = choose_pieces(units_of(job, media, analyses, rate), target, rate, sounds)
        except JobError as error:
            raise JobError(f"deliverables ({deliverable.label}): {error}") from None
        whole = build_timeline(job.shots, [media[shot.source] for shot in job.shots], rate, 48000, edit_rate)
        piece_starts = [Fraction(whole.spans[piece.unit.shot].timeline_start_frame + piece.first_frame
                                 - whole.spans[piece.unit.shot].source_start_frame) / rate for piece in pieces]
        cut, notes = cutdown_job(job, deliverable, pieces, rate, edit_rate, sequence_s, piece_starts)
        for note in notes:
            log.warning("%s: %s", deliverable.label, note)
        cut_options = dict(options)
        if options.get("loudness") is not None:
            # A cut-down is a programme of its own: its loudness is measured and corrected as such.
            cut_options["loudness"] = loudness_corrections(
                cut, media, presets, music=options.get("music"), sync_corrections=options.get("sync_corrections")
            )
        renders += plan_enhanced_job(cut, media, presets, out_dir, made=made, reframe=analyses, **cut_options).renders
    editorial_media = plan_conformed_media(
        job, media, presets, out_dir, options.get("sync_corrections"), analyses
    )
    return JobPlan(job=job, renders=tuple(renders), editorial_media=editorial_media, scratch_files=tuple(made.values()))


def preflight(job: Job, out_dir: Path | None) -> JobPlan:
    """Probe and plan without rendering or decoding: unreadable sources and job errors (presets,
    overrides, in/out points, transitions, overlays, editorial media) surface here, in seconds,
    before a Prefect server starts. What needs the analyses (a cut-down longer than the sequence,
    a learned upscale's model failing to load) surfaces when :func:`finish` plans with them.

    Raises:
        MediaError: a source is unreadable.
        JobError: the job cannot be planned (unknown preset, bad override, in/out outside a source),
            or the content-credentials signing configuration is incomplete or unreadable.
    """
    signing_config()
    media, presets, folder = probe_sources(job), load_presets(), output_dir_for(job, out_dir)
    plan = plan_job(job, media, presets, folder, music=probe_music(job))
    return replace(plan, editorial_media=plan_conformed_media(job, media, presets, folder))


def finish(
    job: Job,
    out_dir: Path | None = None,
    *,
    presets: dict[str, Preset] | None = None,
    one_process: bool = True,
    on_progress: RenderProgress | None = None,
) -> Path:
    """Render every deliverable of ``job``, verify each, export the cut for editors, write the manifest.

    Returns:
        The manifest's path.
    """
    folder = output_dir_for(job, out_dir)
    with output_folder_lock(folder, on_wait=log.warning):
        return _finish(job, folder, presets, one_process, on_progress)


def _finish(job: Job, folder: Path, presets: dict[str, Preset] | None, one_process: bool,
            on_progress: RenderProgress | None) -> Path:
    started = time.monotonic()
    media = probe_sources(job)
    cache = AnalysisCache.from_environment()
    presets = presets or load_presets()
    analyses = analyse_sources(job, media, presets, cache, sync=True)
    sync_reports, sync_corrections = check_sync(job, media, cache)
    probed = time.monotonic()
    music = probe_music(job)
    loudness = loudness_corrections(job, media, presets, music=music, sync_corrections=sync_corrections)
    plan: JobPlan = plan_with_analysis(
        job, media, presets, folder, analyses, cache, music=music,
        sync_corrections=sync_corrections, one_process=one_process, loudness=loudness,
    )
    rendered: list[RenderedOutput] = []
    conformed: list[RenderedOutput] = []
    with recorded_or_removed(plan, folder):
        try:
            for render_plan in plan.renders:
                report = (lambda progress, rp=render_plan: on_progress(rp, progress)) if on_progress else None
                rendered += render(render_plan, on_progress=report)
            for render_plan in plan.editorial_media:
                report = (lambda progress, rp=render_plan: on_progress(rp, progress)) if on_progress else None
                conformed += render(render_plan, on_progress=report)
        finally:
            remove_intermediates(plan)
        finished = time.monotonic()
        conformed_paths = [output.plan.path for output in conformed]
        exports = write_editorial_exports(job, media, folder, conformed_paths or None)
        qc = quality_check(job, rendered, sync_reports, sync_corrections, folder)
        timings = Timings(probe_s=probed - started, render_s=finished - probed, total_s=time.monotonic() - started)
        manifest = write_manifest(
            build_manifest(job.name, media, rendered, [*exports.written, *conformed_paths], sync_reports, timings,
                           qc=qc, skipped_exports=exports.skipped, analyses=cache.records),
            manifest_path(job, folder),
        )
    enforce_qc_policy(qc)
    return manifest


@dataclass(frozen=True)
class QcOutcome:
    """A deliverable's QC report and where it was written."""

    report: QcReport
    """What QC found."""
    json_path: Path
    """``NAME.qc.json`` beside the deliverable."""
    html_path: Path
    """The job's HTML report (one page for every deliverable)."""


def quality_check(
    job: Job,
    rendered: list[RenderedOutput],
    sync_reports: dict[Path, SyncReport],
    sync_corrections: dict[Path, Fraction],
    out_dir: Path,
) -> dict[str, QcOutcome]:
    """QC every deliverable (one decode each), write ``NAME.qc.json`` beside it and ``JOB.qc.html``.

    The sync check judges the sources' measured sync (a corrected source counts as in sync); the
    policy is the job's ``qc.policy``, else the deliverable's preset's.
    """
    sync = _programme_sync(job, sync_reports, sync_corrections)
    reports = []
    for output in rendered:
        plan = output.plan
        reports.append(run_qc(
            plan.path, plan.preset, expected=plan.expected, correction=plan.loudness, sync=sync,
            policy=job.qc.policy, info=output.info,
            out_of_sync="warn" if job.sync.policy == "report" else "fail",
        ))
    html_path = write_html(job.name, reports, out_dir / f"{job.name}.qc.html")
    outcomes = {}
    for output, report in zip(rendered, reports, strict=True):
        json_path = output.plan.path.with_name(f"{output.plan.path.stem}.qc.json")
        write_text_atomically(json_path, json.dumps(report.to_dict(), indent=2) + "\n")
        log.info("QC %s", report.summary())
        outcomes[output.plan.deliverable] = QcOutcome(report, json_path, html_path)
    return outcomes


def _programme_sync(
    job: Job, sync_reports: dict[Path, SyncReport], sync_corrections: dict[Path, Fraction]
) -> SyncReport | None:
    """The sources' sync verdict that speaks for the programme: an uncorrected out-of-sync source,
    else an in-sync one, else an undetermined one; None when nothing was measured."""
    reports = [report for path, report in sync_reports.items() if path not in sync_corrections]
    for verdict in ("out_of_sync", "in_sync", "undetermined"):
        for report in reports:
            if report.verdict == verdict:
                return report
    return None


def enforce_qc_policy(outcomes: dict[str, QcOutcome]) -> None:
    """Raise when a deliverable failed QC under the ``fail`` policy.

    Raises:
        QcFailedError: names each failing deliverable, its failing checks and its report.
    """
    failed = [outcome for outcome in outcomes.values() if not outcome.report.passed]
    if failed:
        lines = [
            f"{outcome.report.path.name}: " + "; ".join(
                f"{check.name} ({check.detail or check.value})" for check in outcome.report.checks
                if check.status == "fail"
            ) + f" - see {outcome.json_path}"
            for outcome in failed
        ]
        raise QcFailedError("QC failed (policy: fail):\n  " + "\n  ".join(lines))
