"""Finishing a job without an orchestrator: the job's steps (:mod:`pipeline.jobs.sequence`) run
directly in this process, analyses cached on disk (:mod:`pipeline.analysis.cache`).

The Prefect flow in ``flows/finish_job.py`` runs the same sequence with each step as a task; this
module is the plain library path (``--no-prefect``, scripts, benchmarks, tests of the library).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from pipeline.analysis.cache import AnalysisCache
from pipeline.jobs.analyses import probe_music, probe_sources
from pipeline.jobs.job_outputs import output_dir_for
from pipeline.jobs.sequence import finish_steps
from pipeline.jobs.steps import DirectSteps, RenderProgress
from pipeline.media.content_credentials import signing_config
from pipeline.model.job import Job
from pipeline.model.presets import Preset, load_presets
from pipeline.plan.facts import JobFacts
from pipeline.plan.outputs import JobPlan
from pipeline.plan.planner import plan_conformed_media, plan_job
from pipeline.render.locks import output_folder_lock

log = logging.getLogger(__name__)


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
    facts = JobFacts(media, music=probe_music(job))
    plan = plan_job(job, facts, presets, folder)
    return replace(plan, editorial_media=plan_conformed_media(job, facts, presets, folder))


def finish(
    job: Job,
    out_dir: Path | None = None,
    *,
    presets: dict[str, Preset] | None = None,
    one_process: bool = True,
    on_progress: RenderProgress | None = None,
) -> Path:
    """Render every deliverable of ``job``, verify each, export the cut for editors, QC, write the
    manifest; the output folder's lock is held throughout (a second run into it waits).

    Returns:
        The manifest's path.
    """
    folder = output_dir_for(job, out_dir)
    steps = DirectSteps(AnalysisCache.from_environment(), on_progress)
    with output_folder_lock(folder, on_wait=log.warning):
        return finish_steps(job, folder, steps, presets, one_process)
