"""The ``nightly-batch`` flow: finish everything in an inbox, each job a ``finish-job`` subflow.

Jobs run side by side up to ``concurrency``; a job that fails, however it fails, does not stop the
others, and the summary is always written. A job whose inputs, job, presets and tool versions are
unchanged since its manifest was written is skipped, so a batch rerun after a crash finishes only
what is missing. Each item is locked while it runs, so a second batch over the same inbox (a manual
``batch`` beside ``serve``, a second worker) leaves it to the first.

Failures are sorted into bins (:data:`pipeline.service.batch.FailureBin`): bad input (a bad job file,
unreadable media, a render ffmpeg refuses or that fails verification) is moved to
``INBOX/failed/`` with a ``reason.txt`` so the next night does not try it again; an operator error
(an unknown ``clip_presets`` name, a missing encoder) moves nothing; a transient fault (ffmpeg
killed, an I/O error) is retried by the render task, then on later runs, and set aside with its
history after ``max_attempts``; an internal error is logged with its traceback and treated the same.
The summary goes to ``OUT/batch-summary.json`` (the watch folder names one per batch) and to a
Prefect Markdown artifact, whose key's versions keep every batch's.
"""

from __future__ import annotations

import time
from dataclasses import replace
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
    failure_bin,
    finished_result,
    summarize,
    summary_markdown,
    write_summary,
)
from pipeline.plan.admission import JobAccess, check_job_access
from pipeline.errors import JobError
from pipeline.jobs.job_outputs import manifest_path
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
    clear_attempts,
    load_entries,
    quarantine,
    record_attempt,
    referenced_files,
    scan_inbox,
)
from pipeline.media.runner import ffmpeg_version
from pipeline.model.presets import Preset, load_presets, get_preset
from pipeline.inputs import display_path
from pipeline.render.locks import LockedError, item_lock
from pipeline.service.resources import default_render_slots

ARTIFACT_KEY = "nightly-batch-summary"
DEFAULT_MAX_ATTEMPTS = 3
"""Runs an item failing transiently (or on an internal error) is tried before it is set aside."""


class _OperatorError(JobError):
    """The inbox's set-up is wrong (its template), not the item."""


def _inputs_of(entry: BatchEntry, presets: dict[str, Preset]) -> set[Path]:
    if entry.job is not None:
        try:
            return set(job_inputs(entry.job, presets))
        except Exception:  # noqa: BLE001 - the item's own run reports what is wrong with it
            pass
    return referenced_files(entry.item.path) if entry.item.kind == "job_file" else {entry.item.path.resolve()}


@task(name="finish-inbox-item", cache_policy=NO_CACHE)
def finish_item(
    entry: BatchEntry, inbox: Path, out: Path, in_use: set[Path], one_process: bool, dask_address: str | None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> ItemResult:
    """Finish the item under its lock; another batch holding it skips it here."""
    started = time.monotonic()
    item = entry.item
    try:
        with item_lock(item.path):
            if not item.path.exists():
                return ItemResult(display_path(item.path), None, "skipped", "another batch finished or set it aside")
            return _finish_item(entry, inbox, out, in_use, one_process, dask_address, max_attempts)
    except (LockedError, FileNotFoundError) as error:
        reason = str(error) if isinstance(error, LockedError) else "another batch moved it away"
        get_run_logger().info("%s: skipped: %s", display_path(item.path), display_path(reason))
        return ItemResult(display_path(item.path), entry.job.name if entry.job else None, "skipped", reason,
                          seconds=round(time.monotonic() - started, 3))


def _finish_item(
    entry: BatchEntry, inbox: Path, out: Path, in_use: set[Path], one_process: bool, dask_address: str | None,
    max_attempts: int,
) -> ItemResult:
    """Skip the item if it is done and unchanged, else finish it in a subflow; bin a failure."""
    logger = get_run_logger()
    started = time.monotonic()
    item = entry.item
    try:
        if entry.job is None:
            raise (_OperatorError if entry.operator_error else JobError)(entry.error)
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
        clear_attempts(inbox, item)
        return finished_result(item.path, job.name, "succeeded", written, time.monotonic() - started, stale)
    except Exception as error:  # one item's failure, whatever it is, must not stop the batch
        reason = str(error) or type(error).__name__
        kind = "operator" if isinstance(error, _OperatorError) else failure_bin(error)
        if kind == "internal":
            reason = f"internal error in postprod ({type(error).__name__}: {reason}); please report it"
            logger.error("%s: %s", display_path(item.path), display_path(reason), exc_info=error)
        result = ItemResult(display_path(item.path), entry.job.name if entry.job else None, "failed", reason, kind,
                            seconds=round(time.monotonic() - started, 3))
        return _dispose(result, item, inbox, in_use, max_attempts)


def _dispose(result: ItemResult, item, inbox: Path, in_use: set[Path], max_attempts: int) -> ItemResult:
    """Set a failed item aside, or leave it for the next run, as its bin says; never raises."""
    logger = get_run_logger()
    name = display_path(item.path)
    reason = display_path(result.reason or "")
    if result.failure == "operator":
        logger.warning("%s failed (operator error), left where it is: %s", name, reason)
        return replace(result, retry_next_run=True)
    if result.failure in ("transient", "internal"):
        try:
            history = record_attempt(inbox, item, reason)
        except OSError as error:
            history = [{"utc": "", "reason": f"{reason} (the attempt could not be recorded: {error})"}]
        if len(history) < max_attempts:
            logger.warning("%s failed (%s, attempt %d of %d), stays in the inbox for the next run: %s",
                           name, result.failure, len(history), max_attempts, reason)
            return replace(result, retry_next_run=True)
        reason = f"{reason}\n\nfailed {len(history)} times:\n" + "\n".join(
            f"  {attempt['utc']}: {attempt['reason']}" for attempt in history)
    try:
        folder = quarantine(item, inbox, reason, in_use)
    except Exception as error:  # noqa: BLE001 - the summary must still be written
        logger.error("%s failed and could not be set aside (%s: %s): %s", name, type(error).__name__, error, reason)
        return replace(result, reason=f"{reason} (could not be set aside: {error})", retry_next_run=True)
    logger.warning("%s failed (%s) and was set aside in %s: %s", name, result.failure, display_path(folder), reason)
    return replace(result, reason=reason, set_aside_in=display_path(folder))


@flow(name="nightly-batch", log_prints=True)
def nightly_batch(
    inbox: Path,
    out: Path,
    concurrency: int | None = None,
    clip_presets: list[str] | None = None,
    one_process: bool = True,
    dask: str | None = None,
    dask_workers: int = 2,
    only: list[Path] | None = None,
    summary_name: str = SUMMARY_NAME,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> State:
    """Finish every job file and loose clip in ``inbox`` into ``out/JOB/``.

    Args:
        inbox: Folder of job files and loose clips.
        out: Output root; each job writes into ``out/JOB_NAME/``.
        concurrency: Jobs finished side by side; None: this machine's render slots
            (:func:`pipeline.service.resources.default_render_slots`), so every slot has a job's render
            waiting for it while other jobs probe, analyse or check.
        clip_presets: Presets for loose clips when the inbox has no ``_template.yaml`` (default
            ``web-h264-1080p``).
        one_process: One ffmpeg per job (False: one per deliverable, which can run side by side).
        dask: None to render on threads here; ``"local"`` for a local Dask cluster; or the address
            of a Dask scheduler (``tcp://host:8786``) shared by every job of the batch.
        dask_workers: Worker processes of the local Dask cluster.
        only: Finish only these inbox items (the watch folder hands over what has arrived).
        summary_name: File name of the summary in ``out`` (the watch folder gives each batch its own).
        max_attempts: Runs an item failing transiently is tried before it is set aside.

    Returns:
        Completed with the summary, or Failed naming how many items failed (the summary still
        written), so a failed night shows as one in the Prefect UI and its automations.

    Raises:
        JobError: ``clip_presets`` names an unknown preset (an operator error: nothing is moved).
    """
    logger = get_run_logger()
    started_utc = datetime.now(UTC).isoformat(timespec="seconds")
    inbox, out = Path(inbox).resolve(), Path(out).resolve()
    presets = load_presets()
    for name in clip_presets or DEFAULT_CLIP_PRESETS:
        get_preset(name, presets)
    items = scan_inbox(inbox)
    # Files that job files left out of this batch (``only``) name: never set aside with a failed item.
    left_out: set[Path] = set()
    if only is not None:
        wanted = {Path(path).resolve() for path in only}
        left_out = set().union(*(referenced_files(item.path) for item in items
                                 if item.kind == "job_file" and item.path.resolve() not in wanted))
        items = [item for item in items if item.path.resolve() in wanted]
    entries = load_entries(items, inbox, clip_presets or DEFAULT_CLIP_PRESETS, known_presets=presets.keys())
    concurrency = max(1, concurrency or default_render_slots())
    logger.info("%d item(s) in %s, %d at a time", len(entries), inbox, concurrency)
    needed_by = [_inputs_of(entry, presets) for entry in entries]
    with dask_scheduler(dask, dask_workers) as address:
        futures = []
        running = []
        for index, entry in enumerate(entries):
            while len(running) >= concurrency:
                running.remove(next(as_completed(running)))
            others = left_out.union(*(paths for other, paths in enumerate(needed_by) if other != index))
            future = finish_item.with_options(task_run_name=f"item-{display_path(entry.item.path.name)}").submit(
                entry, inbox, out, others, one_process, address, max_attempts
            )
            futures.append(future)
            running.append(future)
        wait(futures)
        results = [_result_of(entry, future.result(raise_on_failure=False))
                   for entry, future in zip(entries, futures, strict=True)]
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


def _result_of(entry: BatchEntry, outcome: ItemResult | BaseException) -> ItemResult:
    """The item's result; a task that crashed outside its own error handling is an internal error."""
    if isinstance(outcome, ItemResult):
        return outcome
    get_run_logger().error("%s: the item's task crashed", display_path(entry.item.path), exc_info=outcome)
    return ItemResult(display_path(entry.item.path), entry.job.name if entry.job else None, "failed",
                      f"internal error in postprod ({type(outcome).__name__}: {outcome}); please report it",
                      "internal", retry_next_run=True)


def _final_state(summary: dict[str, Any], message: str) -> State:
    return (Failed if summary["counts"]["failed"] else Completed)(message=message, data=summary)
