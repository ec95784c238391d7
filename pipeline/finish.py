"""Finishing a job without an orchestrator: probe and sync-check the sources, plan, render and
verify, export the cut for editors, write the manifest.

The Prefect flow in ``flows/finish_job.py`` runs these same steps as tasks; this module is the plain
library path (scripts, benchmarks, tests of the library).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from pipeline.errors import JobError, MediaError
from pipeline.job import Job
from pipeline.manifest import Timings, build_manifest, write_manifest
from pipeline.media import Progress
from pipeline.otio_export import write_editorial_exports
from pipeline.plan import JobPlan, RenderPlan, plan_job
from pipeline.presets import Preset, load_presets
from pipeline.probe import AudioStreamInfo, MediaInfo, probe, probe_audio
from pipeline.render import RenderedOutput, render
from pipeline.sync import STANDARDS, SyncReport, measure_sync

RenderProgress = Callable[[RenderPlan, Progress], None]


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


def check_sync(job: Job, media: dict[Path, MediaInfo]) -> tuple[dict[Path, SyncReport], dict[Path, Fraction]]:
    """Measure every source with sound and apply the job's sync policy.

    Returns:
        The reports by source, and the corrections (seconds to move each source's sound) that the
        ``fix`` policy asks the planner to apply: out-of-sync sources only, undetermined ones left be.

    Raises:
        MediaError: the policy is ``fail`` and a source's sound is out of sync; the message gives
            the measured offset and the standard's limits.
    """
    standard = STANDARDS[job.sync.standard]
    reports = {
        path: measure_sync(path, info, standard) for path, info in media.items() if info.audio is not None
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


def preflight(job: Job, out_dir: Path | None) -> JobPlan:
    """Probe and plan without rendering: every bad input or job error surfaces here, in seconds.

    Raises:
        MediaError: a source is unreadable.
        JobError: the job cannot be planned (unknown preset, bad override, in/out outside a source).
    """
    return plan_job(
        job, probe_sources(job), load_presets(), output_dir_for(job, out_dir), music=probe_music(job)
    )


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
    started = time.monotonic()
    folder = output_dir_for(job, out_dir)
    media = probe_sources(job)
    sync_reports, sync_corrections = check_sync(job, media)
    probed = time.monotonic()
    plan: JobPlan = plan_job(
        job, media, presets or load_presets(), folder, music=probe_music(job),
        sync_corrections=sync_corrections, one_process=one_process,
    )
    rendered: list[RenderedOutput] = []
    for render_plan in plan.renders:
        report = (lambda progress, rp=render_plan: on_progress(rp, progress)) if on_progress else None
        rendered += render(render_plan, on_progress=report)
    finished = time.monotonic()
    editorial = write_editorial_exports(job, media, folder)
    timings = Timings(probe_s=probed - started, render_s=finished - probed, total_s=time.monotonic() - started)
    return write_manifest(
        build_manifest(job.name, media, rendered, editorial, sync_reports, timings), manifest_path(job, folder)
    )
