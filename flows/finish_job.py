"""The ``finish_job`` flow: probe sources in parallel, plan, render and verify, export the cut for
editors (OTIO, EDL, FCP XML), write the manifest.

With no ``PREFECT_API_URL`` set, Prefect runs it on a temporary local server; with one set, the run
reports to that server. Only transient faults are retried: bad input and failed verification fail
at once, since running them again cannot help.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline.errors import FFmpegError
from pipeline.finish import (
    RenderProgress,
    check_sync,
    manifest_path,
    output_dir_for,
    probe_music,
    unique_sources,
)
from pipeline.job import Job
from pipeline.manifest import Timings, build_manifest, write_manifest
from pipeline.media import Progress
from pipeline.otio_export import write_editorial_exports
from pipeline.plan import RenderPlan, plan_job
from pipeline.presets import load_presets
from pipeline.probe import AudioStreamInfo, MediaInfo, probe
from pipeline.render import RenderedOutput, render

progress_listener: ContextVar[RenderProgress | None] = ContextVar("progress_listener", default=None)
"""Set by a caller in the same process (the CLI's progress bars) to watch renders."""

PROGRESS_LOG_STEP = 0.1


def _is_transient(task, task_run, state) -> bool:
    """Retry only when ffmpeg was killed (out of memory, shutdown) or the OS failed an I/O call."""
    try:
        state.result()
    except FFmpegError as error:
        return error.transient
    except OSError:
        return True
    except Exception:
        return False
    return False


@task(name="probe-source", cache_policy=NO_CACHE)
def probe_source(path: Path) -> MediaInfo:
    """Probe one source; bad media fails here, before any render starts."""
    return probe(path)


@task(name="probe-music", cache_policy=NO_CACHE)
def probe_music_task(job: Job) -> AudioStreamInfo | None:
    """Probe the music bed; a bad file fails here, before any render starts."""
    return probe_music(job)


@task(name="check-sync", cache_policy=NO_CACHE)
def check_sync_task(job: Job, media: dict[Path, MediaInfo]):
    """Measure sound against picture in every source and apply the job's sync policy."""
    reports, corrections = check_sync(job, media)
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
    names = ", ".join(output.path.name for output in render_plan.outputs)
    logger.info("rendering %s (%.2f s of media)", names, float(render_plan.duration_s))
    listener = progress_listener.get()
    next_report = PROGRESS_LOG_STEP

    def report(progress: Progress) -> None:
        nonlocal next_report
        if progress.fraction >= next_report:
            eta = f", about {progress.eta_s:.0f} s left" if progress.eta_s is not None else ""
            logger.info("%3.0f%% of %s%s", progress.fraction * 100, names, eta)
            next_report += PROGRESS_LOG_STEP
        if listener is not None:
            listener(render_plan, progress)

    rendered = render(render_plan, on_progress=report)
    for output in rendered:
        logger.info("verified %s", output.plan.path)
    return rendered


@task(name="export-editorial", cache_policy=NO_CACHE)
def export_editorial(job: Job, media: dict[Path, MediaInfo], out_dir: Path) -> list[Path]:
    """The assembled cut as OpenTimelineIO, CMX 3600 EDL and FCP 7 XML, for editors to relink."""
    return write_editorial_exports(job, media, out_dir)


@flow(name="finish-job", log_prints=True)
def finish_job(job: Job, out_dir: Path | None = None, one_process: bool = True) -> Path:
    """Finish every deliverable of ``job`` and return the manifest's path."""
    started = time.monotonic()
    folder = output_dir_for(job, out_dir)
    sources = unique_sources(job)
    futures = [probe_source.submit(source) for source in sources]
    music = probe_music_task.submit(job) if job.music else None
    media = {source: future.result() for source, future in zip(sources, futures, strict=True)}
    sync_reports, sync_corrections = check_sync_task(job, media)
    probed = time.monotonic()
    plan = plan_job(
        job, media, load_presets(), folder, music=music.result() if music else None,
        sync_corrections=sync_corrections, one_process=one_process,
    )
    rendered: list[RenderedOutput] = []
    for render_plan in plan.renders:
        rendered += render_task(render_plan)
    finished = time.monotonic()
    editorial = export_editorial(job, media, folder)
    timings = Timings(probe_s=probed - started, render_s=finished - probed, total_s=time.monotonic() - started)
    path = write_manifest(
        build_manifest(job.name, media, rendered, editorial, sync_reports, timings),
        manifest_path(job, folder),
    )
    get_run_logger().info("manifest: %s", path)
    return path
