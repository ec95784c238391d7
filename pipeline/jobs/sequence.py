"""The job's steps, written once: probe, sync check, analyses, cut-downs, loudness, the enhance
pre-stage, plan, render and verify, editorial exports, QC, manifest.

A :class:`~pipeline.jobs.steps.StepRunner` runs each step: the library path calls them directly,
the Prefect flow runs each as a task. What the analyses find travels to planning as one
:class:`~pipeline.plan.facts.JobFacts`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from pipeline.analysis.cache import AnalysisCache
from pipeline.export.manifest import Timings, build_manifest, write_manifest
from pipeline.export.otio_export import write_editorial_exports
from pipeline.jobs.analyses import analyse_sources, check_sync, probe_music, sound_activities, unique_sources
from pipeline.jobs.cutdowns import cutdown_programmes, whole_programme
from pipeline.jobs.enhanced_plan import make_intermediates, plan_enhanced_job
from pipeline.jobs.job_outputs import manifest_path, recorded_or_removed
from pipeline.jobs.job_qc import enforce_qc_policy, quality_check
from pipeline.jobs.loudness_plan import cached_loudness_corrections
from pipeline.jobs.steps import DirectSteps, StepRunner
from pipeline.media.probe import probe
from pipeline.model.job import Job
from pipeline.model.presets import Preset, load_presets
from pipeline.plan.facts import JobFacts
from pipeline.plan.outputs import JobPlan
from pipeline.plan.planner import plan_conformed_media
from pipeline.render.renderer import remove_intermediates


def finish_steps(job: Job, folder: Path, steps: StepRunner, presets: dict[str, Preset] | None = None,
                 one_process: bool = True) -> Path:
    """Run every step of ``job`` into ``folder`` (whose lock the caller holds) and return the
    manifest's path. A failure after the renders start removes what the job wrote.

    Raises:
        MediaError, JobError: bad input, before anything is rendered.
        RenderError, OutputWriteError: a render or its verification failed.
        QcFailedError: a deliverable failed QC under the ``fail`` policy (the manifest is written).
    """
    started = time.monotonic()
    sources = unique_sources(job)
    media = dict(zip(sources, steps.each("probe-source", probe, sources), strict=True))
    music = steps.step("probe-music", probe_music, job, retry=True) if job.music else None
    presets = presets or load_presets()
    found = analyse_sources(job, media, presets, steps.analyse, sync=True, loudness=True)
    for path, analysis in found.reframe.items():
        steps.note(f"analysed {path.name}: {len(analysis.cut_times_s) + 1} shot(s), active area {analysis.active}")
    sync_reports, sync_corrections = check_sync(job, media, steps.analyse, found.sync_facts)
    for path, report in sync_reports.items():
        offset = f"{report.offset_ms:+d} ms" if report.offset_ms is not None else "no offset"
        steps.note(f"sync {path.name}: {report.verdict}, {offset}{', corrected' if path in sync_corrections else ''}")
    probed = time.monotonic()
    facts = JobFacts(media, music, sync_corrections, found.reframe, found.sound_activity,
                     source_loudness=found.loudness, active_area=found.active_area)
    plan = plan_with_analysis(job, facts, presets, folder, steps, one_process=one_process)
    with recorded_or_removed(plan, folder):
        try:
            rendered = steps.render(plan.renders)
            conformed = steps.render(plan.editorial_media)
        finally:
            remove_intermediates(plan)
        finished = time.monotonic()
        conformed_paths = [output.plan.path for output in conformed]
        exports = steps.step("export-editorial", write_editorial_exports, job, media, folder, conformed_paths or None)
        for export in exports.skipped:
            steps.note(f"{export.path.name} not written: {export.reason}")
        qc = steps.step("qc", quality_check, job, rendered, sync_reports, sync_corrections, folder)
        steps.report_qc(job.name, qc)
        timings = Timings(probe_s=probed - started, render_s=finished - probed, total_s=time.monotonic() - started)
        manifest = write_manifest(
            build_manifest(job.name, media, rendered, [*exports.written, *conformed_paths], sync_reports, timings,
                           qc=qc, skipped_exports=exports.skipped, analyses=steps.records),
            manifest_path(job, folder),
        )
    enforce_qc_policy(qc)
    return manifest


def plan_with_analysis(job: Job, facts: JobFacts, presets: dict[str, Preset], out_dir: Path,
                       steps: StepRunner | None = None, *, one_process: bool = True,
                       measure_loudness: bool = True) -> JobPlan:
    """Plan the job's whole-length deliverables, each cut-down (a job of its own, see
    :mod:`pipeline.jobs.cutdowns`) and the editorial media, from ``facts``.

    The steps before planning run through ``steps`` (directly, without a cache, when None): the
    sources' sound activity where there are cut-downs (unless ``facts`` hold it), the choice of
    each cut-down's pieces, a loudness measurement per programme (the whole-length one and each
    cut-down, which is a programme of its own), and the enhanced intermediates, made once for all
    of them and listed in the plan's ``scratch_files``; if planning fails they are removed here.
    Without ``measure_loudness`` no loudness is measured and none corrected (a plan to look at).

    Raises:
        JobError: as :func:`pipeline.plan.planner.plan_job`, or a cut-down longer than the sequence.
    """
    steps = steps or DirectSteps(AnalysisCache(None))
    if not facts.sound_activity:
        facts = replace(facts, sound_activity=sound_activities(job, facts.media, steps.analyse))
    programmes = [whole_programme(job)]
    programmes += steps.step("choose-cut-downs", cutdown_programmes, job, facts, presets)
    programmes = [programme for programme in programmes if programme.deliverables]
    loudness = [cached_loudness_corrections(programme, facts, presets, steps.analyse)
                if measure_loudness else {} for programme in programmes]
    for corrections in loudness:
        for label, correction in corrections.items():
            steps.note(f"loudness {label}: {correction.reason}")
    intermediates = steps.step("enhance", make_intermediates, programmes, facts.media, presets, out_dir, retry=True)
    try:
        renders = tuple(
            render for programme, corrections in zip(programmes, loudness, strict=True)
            for render in plan_enhanced_job(programme, facts.with_loudness(corrections), presets, out_dir,
                                            intermediates, one_process=one_process).renders
        )
        editorial_media = plan_conformed_media(job, facts, presets, out_dir)
    except BaseException:
        for path in intermediates.values():
            path.unlink(missing_ok=True)
        raise
    return JobPlan(job=job, renders=renders, editorial_media=editorial_media,
                   scratch_files=tuple(intermediates.values()))
