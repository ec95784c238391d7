"""The ``nightly-batch`` flow: finish everything in an inbox, each job a ``finish-job`` subflow.

Jobs run side by side up to ``concurrency``; a job that fails does not stop the others. A job whose
inputs, job, presets and tool versions are unchanged since its manifest was written is skipped, so
a batch rerun after a crash finishes only what is missing. Bad input (a bad job file, unreadable
media, a render ffmpeg refuses or that fails verification) is moved to ``INBOX/failed/`` with a
``reason.txt`` so the next night does not try it again; a transient fault (ffmpeg killed, an I/O
error) is retried by the render task, and if it persists the item stays in the inbox for next time.
The summary goes to ``OUT/batch-summary.json`` (the watch folder names one per batch) and to a
Prefect Markdown artifact, whose key's versions keep every batch's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed, wait
from prefect.states import Completed, Failed, State

import pipeline
from flows.finish_job import finish_job
from flows.scale import dask_scheduler, dask_task_runner
from pipeline.service.batch import (
    SUMMARY_NAME,
    ItemResult,
    finished_result,
    is_permanent,
    summarize,
    summary_markdown,
    write_summary,
)
from pipeline.plan.admission import JobAccess, check_job_access
from pipeline.errors import JobError
from pipeline.jobs.finish import manifest_path
from pipeline.service.fingerprint import (
    job_fingerprint,
    job_inputs,
    read_manifest,
    remove_superseded_outputs,
    stamp_manifest,
    why_stale,
)
from pipeline.service.inbox import (
    DEFAULT_CLIP_PRESETS,
    BatchEntry,
    load_entries,
    quarantine,
    referenced_files,
    scan_inbox,
)
from pipeline.media.runner import ffmpeg_version
from pipeline.model.presets import Preset, load_presets
from pipeline.inputs import display_path

ARTIFACT_KEY = "nightly-batch-summary"


def _inputs_of(entry: BatchEntry, presets: dict[str, Preset]) -> set[Path]:
    if entry.job is not None:
        return set(job_inputs(entry.job, presets))
    return referenced_files(entry.item.path) if entry.item.kind == "job_file" else {entry.item.path.resolve()}


@task(name="finish-inbox-item", cache_policy=NO_CACHE)
def finish_item(
    entry: BatchEntry, inbox: Path, out: Path, in_use: set[Path], one_process: bool, dask_address: str | None
) -> ItemResult:
    """Skip the item if it is done and unchanged, else finish it in a subflow; record a failure."""
    logger = get_run_logger()
    started = time.monotonic()
    item = entry.item
    try:
        if entry.job is None:
            raise JobError(entry.error)
        job = entry.job
        folder = out / job.name
        presets = load_presets()
        job_file = item.path if item.kind == "job_file" else None
        check_job_access(job, JobAccess.configured([inbox], job_file), presets, origin=display_path(item.path))
        fingerprint = job_fingerprint(job, presets, pipeline.__version__, ffmpeg_version())
        manifest = manifest_path(job, folder)
        stale = why_stale(manifest, fingerprint)
        if stale is None:
            logger.info("%s: done and unchanged since its manifest was written; skipped", job.name)
            return finished_result(item.path, job.name, "skipped", manifest, time.monotonic() - started)
        logger.info("%s: rendering (%s)", job.name, stale)
        subflow = finish_job.with_options(flow_run_name=f"finish-{job.name}")
        if dask_address is not None:
            subflow = subflow.with_options(task_runner=dask_task_runner(dask_address))
        previous = read_manifest(manifest)
        written = subflow(job=job, out_dir=folder, one_process=one_process)
        stamp_manifest(written, fingerprint, item.path)
        for path in remove_superseded_outputs(previous, written):
            logger.info("%s: removed %s, which this run no longer makes", job.name, path.name)
        return finished_result(item.path, job.name, "succeeded", written, time.monotonic() - started, stale)
    except Exception as error:  # one item's failure, whatever it is, must not stop the batch
        reason = str(error) or type(error).__name__
        job_name = entry.job.name if entry.job else None
        seconds = round(time.monotonic() - started, 3)
        if is_permanent(error):
            folder = quarantine(item, inbox, reason, in_use)
            logger.warning("%s failed and was set aside in %s: %s", display_path(item.path.name),
                           display_path(folder), reason)
            return ItemResult(display_path(item.path), job_name, "failed", reason, set_aside_in=display_path(folder),
                              seconds=seconds)
        logger.warning("%s failed, stays in the inbox for the next run: %s", display_path(item.path.name), reason)
        return ItemResult(display_path(item.path), job_name, "failed", reason, retry_next_run=True, seconds=seconds)


@flow(name="nightly-batch", log_prints=True)
def nightly_batch(
    inbox: Path,
    out: Path,
    concurrency: int = 2,
    clip_presets: list[str] | None = None,
    one_process: bool = True,
    dask: str | None = None,
    dask_workers: int = 2,
    only: list[Path] | None = None,
    summary_name: str = SUMMARY_NAME,
) -> State:
    """Finish every job file and loose clip in ``inbox`` into ``out/JOB/``.

    Args:
        inbox: Folder of job files and loose clips.
        out: Output root; each job writes into ``out/JOB_NAME/``.
        concurrency: Jobs finished side by side.
        clip_presets: Presets for loose clips when the inbox has no ``_template.yaml`` (default
            ``web-h264-1080p``).
        one_process: One ffmpeg per job (False: one per deliverable, which can run side by side).
        dask: None to render on threads here; ``"local"`` for a local Dask cluster; or the address
            of a Dask scheduler (``tcp://host:8786``) shared by every job of the batch.
        dask_workers: Worker processes of the local Dask cluster.
        only: Finish only these inbox items (the watch folder hands over what has arrived).
        summary_name: File name of the summary in ``out`` (the watch folder gives each batch its own).

    Returns:
        Completed with the summary, or Failed naming how many items failed (the summary still
        written), so a failed night shows as one in the Prefect UI and its automations.
    """
    logger = get_run_logger()
    started_utc = datetime.now(UTC).isoformat(timespec="seconds")
    inbox, out = Path(inbox).resolve(), Path(out).resolve()
    items = scan_inbox(inbox)
    # Files that job files left out of this batch (``only``) name: never set aside with a failed item.
    left_out: set[Path] = set()
    if only is not None:
        wanted = {Path(path).resolve() for path in only}
        left_out = set().union(*(referenced_files(item.path) for item in items
                                 if item.kind == "job_file" and item.path.resolve() not in wanted))
        items = [item for item in items if item.path.resolve() in wanted]
    entries = load_entries(items, inbox, clip_presets or DEFAULT_CLIP_PRESETS)
    logger.info("%d item(s) in %s, %d at a time", len(entries), inbox, concurrency)
    presets = load_presets()
    needed_by = [_inputs_of(entry, presets) for entry in entries]
    with dask_scheduler(dask, dask_workers) as address:
        futures = []
        running = []
        for index, entry in enumerate(entries):
            while len(running) >= max(1, concurrency):
                running.remove(next(as_completed(running)))
            others = left_out.union(*(paths for other, paths in enumerate(needed_by) if other != index))
            future = finish_item.with_options(task_run_name=f"item-{display_path(entry.item.path.name)}").submit(
                entry, inbox, out, others, one_process, address
            )
            futures.append(future)
            running.append(future)
        wait(futures)
        results: list[ItemResult] = [future.result() for future in futures]
    summary = summarize(inbox, out, started_utc, datetime.now(UTC).isoformat(timespec="seconds"), results)
    summary_path = write_summary(summary, out / summary_name)
    create_markdown_artifact(
        key=ARTIFACT_KEY,
        markdown=summary_markdown(summary) + f"\n\nSummary file: `{summary_path}`",
        description=f"nightly batch of {inbox}",
    )
    counts = summary["counts"]
    message = (f"{counts['succeeded']} rendered, {counts['skipped']} already done, "
               f"{counts['failed']} failed of {len(results)}; summary in {summary_path}")
    logger.info(message)
    return _final_state(summary, message)


def _final_state(summary: dict[str, Any], message: str) -> State:
    return (Failed if summary["counts"]["failed"] else Completed)(message=message, data=summary)
