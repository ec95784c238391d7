"""The ``finish_job`` flow: probe sources in parallel, check sync, analyse for reframing, measure
loudness, plan, render and verify (independent renders side by side, up to the machine's render
slots), QC every deliverable (a Prefect artifact), export the cut for editors (OTIO, EDL, FCP
XML), write the manifest.

With no ``PREFECT_API_URL`` set, Prefect runs it on a temporary local server; with one set, the run
reports to that server. Only transient faults are retried: bad input and failed verification fail
at once, since running them again cannot help.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.scale import submit_renders
from pipeline.analysis.cache import AnalysisCache
from pipeline.errors import StoppedError, is_transient
from pipeline.jobs.loudness_plan import loudness_corrections
from pipeline.jobs.finish import (
    RenderProgress,
    analyse_sources,
    check_sync,
    enforce_qc_policy,
    manifest_path,
    output_dir_for,
    plan_with_analysis,
    probe_music,
    quality_check,
    recorded_or_removed,
    unique_sources,
)
from pipeline.model.job import Job
from pipeline.export.manifest import Timings, build_manifest, write_manifest
from pipeline.media.runner import Progress
from pipeline.export.otio_export import write_editorial_exports, EditorialExports
from pipeline.plan.planner import RenderPlan
from pipeline.model.presets import load_presets
from pipeline.media.probe import AudioStreamInfo, MediaInfo, probe
from pipeline.render.renderer import RenderedOutput, remove_intermediates, render
from pipeline.service.resources import default_render_slots, machine_slot
from pipeline.render.locks import output_folder_lock

progress_listener: ContextVar[RenderProgress | None] = ContextVar("progress_listener", default=None)
"""Set by a caller in the same process (the CLI's progress bars) to watch renders."""

PROGRESS_LOG_STEP = 0.1


def _progress_listener() -> RenderProgress | None:
    """The listener, read through a module function: Dask ships render_task by value, and a
    ContextVar it named directly could not be pickled."""
    return progress_listener.get()


def _is_transient(task, task_run, state) -> bool:
    """Retry only what may pass next time: a render stopped from outside (ffmpeg killed, or cut
    short before its output was complete) or an I/O fault; never once postprod itself is stopping."""
    try:
        state.result()
    except StoppedError:
        return False
    except Exception as error:
        return is_transient(error)
    return False


@task(name="probe-source", cache_policy=NO_CACHE)
def probe_source(path: Path) -> MediaInfo:
    """Probe one source; bad media fails here, before any render starts."""
    return probe(path)


@task(name="probe-music", cache_policy=NO_CACHE)
def probe_music_task(job: Job) -> AudioStreamInfo | None:
    """Probe the music bed; a bad file fails here, before any render starts."""
    return probe_music(job)


@task(name="analyse-sources", cache_policy=NO_CACHE)
def analyse_task(job: Job, media: dict[Path, MediaInfo], presets, cache: AnalysisCache) -> dict:
    """Reframing analysis (cuts, subjects, burned-in bars) of the sources that need it, once each
    (and never again for a source whose analysis ``cache`` holds)."""
    analyses = analyse_sources(job, media, presets, cache, sync=True)
    for path, analysis in analyses.items():
        get_run_logger().info("analysed %s: %d shot(s), active area %s", path.name,
                              len(analysis.cut_times_s) + 1, analysis.active)
    return analyses


@task(name="check-sync", cache_policy=NO_CACHE)
def check_sync_task(job: Job, media: dict[Path, MediaInfo], cache: AnalysisCache):
    """Measure sound against picture in every source (unless ``cache`` holds the measurement) and
    apply the job's sync policy."""
    reports, corrections = check_sync(job, media, cache)
    logger = get_run_logger()
    for path, report in reports.items():
        offset = f"{report.offset_ms:+d} ms" if report.offset_ms is not None else "no offset"
        logger.info("sync %s: %s, %s%s", path.name, report.verdict, offset,
                    ", corrected" if path in corrections else "")
    return reports, corrections


@task(name="render", retries=2, retry_delay_seconds=2, retry_condition_fn=_is_transient,
      cache_policy=NO_CACHE)
def render_task(render_plan: RenderPlan) -> list[RenderedOutput]:
    """One ffmpeg invocation and the verification of what it wrote."""
    logger = get_run_logger()
    names = render_plan.title
    logger.info("rendering %s (%.2f s of media)", names, float(render_plan.duration_s))
    listener = _progress_listener()
    next_report = PROGRESS_LOG_STEP

    def report(progress: Progress) -> None:
        nonlocal next_report
        if progress.fraction >= next_report:
            eta = f", about {progress.eta_s:.0f} s left" if progress.eta_s is not None else ""
            logger.info("%3.0f%% of %s%s", progress.fraction * 100, names, eta)
            next_report += PROGRESS_LOG_STEP
        if listener is not None:
            listener(render_plan, progress)

    with machine_slot("render", default_render_slots()):  # this machine's render limit, see pipeline/service/resources.py
        rendered = render(render_plan, on_progress=report)
    for output in rendered:
        logger.info("verified %s", output.plan.path)
    return rendered


@task(name="export-editorial", cache_policy=NO_CACHE)
def export_editorial(
    job: Job, media: dict[Path, MediaInfo], out_dir: Path, conformed_media: list[Path] | None = None
) -> EditorialExports:
    """The assembled cut as OpenTimelineIO, CMX 3600 EDL and FCP 7 XML, for editors to relink; a
    format that cannot express the cut is skipped with a warning."""
    exports = write_editorial_exports(job, media, out_dir, conformed_media)
    for export in exports.skipped:
        get_run_logger().warning("%s not written: %s", export.path.name, export.reason)
    return exports


@flow(name="finish-job", log_prints=True)
def finish_job(job: Job, out_dir: Path | None = None, one_process: bool = True) -> Path:
    """Finish every deliverable of ``job`` and return the manifest's path.

    The job holds its output folder's lock throughout: a second run into the folder waits.
    """
    folder = output_dir_for(job, out_dir)
    with output_folder_lock(folder, on_wait=get_run_logger().warning):
        return _finish_job(job, folder, one_process)


def _finish_job(job: Job, folder: Path, one_process: bool) -> Path:
    started = time.monotonic()
    sources = unique_sources(job)
    futures = [probe_source.submit(source) for source in sources]
    music = probe_music_task.submit(job) if job.music else None
    media = {source: future.result() for source, future in zip(sources, futures, strict=True)}
    cache = AnalysisCache.from_environment()
    presets = load_presets()
    analyses = analyse_task(job, media, presets, cache)
    sync_reports, sync_corrections = check_sync_task(job, media, cache)
    probed = time.monotonic()
    music_info = music.result() if music else None
    loudness = measure_loudness_task(job, media, presets, music_info, sync_corrections)
    plan = plan_with_analysis(
        job, media, presets, folder, analyses, cache, music=music_info,
        sync_corrections=sync_corrections, one_process=one_process, loudness=loudness,
    )
    rendered: list[RenderedOutput] = []
    conformed: list[RenderedOutput] = []
    with recorded_or_removed(plan, folder):
        try:
            for outputs in submit_renders(render_task, plan.renders):
                rendered += outputs
            for outputs in submit_renders(render_task, plan.editorial_media):
                conformed += outputs
        finally:
            remove_intermediates(plan)
        finished = time.monotonic()
        conformed_paths = [output.plan.path for output in conformed]
        exports = export_editorial(job, media, folder, conformed_paths or None)
        qc = qc_task(job, rendered, sync_reports, sync_corrections, folder)
        timings = Timings(probe_s=probed - started, render_s=finished - probed, total_s=time.monotonic() - started)
        path = write_manifest(
            build_manifest(job.name, media, rendered, [*exports.written, *conformed_paths], sync_reports, timings,
                           qc=qc, skipped_exports=exports.skipped, analyses=cache.records),
            manifest_path(job, folder),
        )
    get_run_logger().info("manifest: %s", path)
    enforce_qc_policy(qc)
    return path


@task(name="measure-loudness", cache_policy=NO_CACHE)
def measure_loudness_task(job, media, presets, music, sync_corrections):
    """Each deliverable's programme sound measured as mixed, and the gain (and limiter) that meets its target."""
    corrections = loudness_corrections(job, media, presets, music=music, sync_corrections=sync_corrections)
    for label, correction in corrections.items():
        get_run_logger().info("loudness %s: %s", label, correction.reason)
    return corrections


@task(name="qc", cache_policy=NO_CACHE)
def qc_task(job, rendered, sync_reports, sync_corrections, out_dir):
    """QC every deliverable, write the reports, and publish the summary as a table artifact."""
    outcomes = quality_check(job, rendered, sync_reports, sync_corrections, out_dir)
    rows = [
        {
            "deliverable": label,
            "status": outcome.report.status,
            "policy": outcome.report.policy,
            "integrated_lufs": outcome.report.loudness.integrated_lufs if outcome.report.loudness else None,
            "true_peak_dbtp": outcome.report.loudness.true_peak_dbtp if outcome.report.loudness else None,
            "not_passed": ", ".join(f"{c.name} {c.status}" for c in outcome.report.checks if c.status != "pass"),
            "report": str(outcome.json_path),
        }
        for label, outcome in outcomes.items()
    ]
    create_table_artifact(table=rows, key=_artifact_key(job.name), description=f"QC of {job.name}")
    for outcome in outcomes.values():
        get_run_logger().info("QC %s", outcome.report.summary())
    return outcomes


def _artifact_key(job_name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in job_name.lower()).strip("-")
    return f"qc-{cleaned or 'job'}"
