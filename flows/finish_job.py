"""The ``finish_job`` flow: the job's steps (:mod:`pipeline.jobs.sequence`, the same sequence the
library path runs) with each step a Prefect task: probing (sources side by side), the sync check,
the reframing and cut-down analyses, the loudness passes, the enhance pre-stage, planning, renders
(independent ones side by side, up to the machine's render slots), editorial exports and QC (a
table artifact).

Only transient faults are retried: bad input and failed verification fail at once, since running
them again cannot help. Analyses are cached by content: a task's cache key is the on-disk cache's
key (:func:`pipeline.analysis.cache.analysis_key`: the source's SHA-256, the analysis's parameters
and the analysis code's fingerprint) and its result is persisted under the analysis cache folder,
so a rerun (another preset, a second job over the same clip) analyses nothing. Renders are never
cached: their outputs are files.

With no ``PREFECT_API_URL`` set, Prefect runs it on a temporary local server; with one set, the run
reports to that server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE, CacheKeyFnPolicy

from flows.scale import submit_renders
from pipeline.analysis.cache import AnalysisCache, AnalysisRecord, analysis_key, naming
from pipeline.errors import StoppedError, is_transient
from pipeline.jobs.job_outputs import output_dir_for
from pipeline.jobs.job_qc import QcOutcome
from pipeline.jobs.sequence import finish_steps
from pipeline.jobs.steps import RenderProgress
from pipeline.media.runner import Progress
from pipeline.model.job import Job
from pipeline.plan.outputs import RenderPlan
from pipeline.render.locks import output_folder_lock
from pipeline.render.renderer import RenderedOutput, render
from pipeline.service.resources import default_render_slots, machine_slot

progress_listener: ContextVar[RenderProgress | None] = ContextVar("progress_listener", default=None)
"""Set by a caller in the same process (the CLI's progress bars) to watch renders."""

PROGRESS_LOG_STEP = 0.1
STEP_RETRIES = 2
"""Retries of a step that failed transiently (an I/O fault, ffmpeg stopped from outside)."""
STEP_RETRY_DELAY_S = 2
Result = TypeVar("Result")


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


@task(name="render", retries=STEP_RETRIES, retry_delay_seconds=STEP_RETRY_DELAY_S, retry_condition_fn=_is_transient,
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


class PrefectSteps:
    """The flow's step runner: every step a named task, analyses cached by content as Prefect
    results in ``cache``'s folder (none when the cache is off)."""

    def __init__(self, cache: AnalysisCache) -> None:
        self.records: list[AnalysisRecord] = []
        self._cache_folder = cache.folder

    def step(self, name: str, function: Callable[..., Result], *args: Any, retry: bool = False) -> Result:
        return self._task(name, function, retry)(*args)

    def each(self, name: str, function: Callable[[Any], Result], items: Sequence[Any]) -> list[Result]:
        step = self._task(name, function, retry=True)
        futures = [step.submit(item) for item in items]
        return [future.result() for future in futures]

    def analyse(self, analysis: str, source: Path, parameters: Mapping[str, Any],
                compute: Callable[[], Result]) -> Result:
        options: dict[str, Any] = {"cache_policy": NO_CACHE}
        if self._cache_folder is not None:
            key = analysis_key(analysis, source, parameters)
            # A folder, not a saved storage block: Prefect then writes and reads the results there
            # itself, where a block would cost a round trip to the server on every cached task.
            options = {"cache_policy": CacheKeyFnPolicy(cache_key_fn=lambda *_: key), "persist_result": True,
                       "result_storage": self._cache_folder / "prefect"}
        step = self._task(analysis, compute, retry=True).with_options(
            task_run_name=f"{analysis}-{source.name}", **options)
        state = step(return_state=True)
        result = state.result()
        cached = state.name == "Cached"
        self.records.append(AnalysisRecord(source, analysis, cached))
        return naming(result, source) if cached else result

    def render(self, renders: Sequence[RenderPlan]) -> list[RenderedOutput]:
        return [output for outputs in submit_renders(render_task, renders) for output in outputs]

    def report_qc(self, job_name: str, outcomes: dict[str, QcOutcome]) -> None:
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
        create_table_artifact(table=rows, key=_artifact_key(job_name), description=f"QC of {job_name}")
        for outcome in outcomes.values():
            self.note(f"QC {outcome.report.summary()}")

    def note(self, message: str) -> None:
        get_run_logger().info("%s", message)

    @staticmethod
    def _task(name: str, function: Callable[..., Result], retry: bool):
        return task(function, name=name, cache_policy=NO_CACHE, retries=STEP_RETRIES if retry else 0,
                    retry_delay_seconds=STEP_RETRY_DELAY_S, retry_condition_fn=_is_transient)


@flow(name="finish-job", log_prints=True)
def finish_job(job: Job, out_dir: Path | None = None, one_process: bool = True) -> Path:
    """Finish every deliverable of ``job`` and return the manifest's path.

    The job holds its output folder's lock throughout: a second run into the folder waits.
    """
    folder = output_dir_for(job, out_dir)
    steps = PrefectSteps(AnalysisCache.from_environment())
    with output_folder_lock(folder, on_wait=get_run_logger().warning):
        path = finish_steps(job, folder, steps, one_process=one_process)
    get_run_logger().info("manifest: %s", path)
    return path


def _artifact_key(job_name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in job_name.lower()).strip("-")
    return f"qc-{cleaned or 'job'}"
