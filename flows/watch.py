"""The watch folder: run the nightly-batch flow on each inbox item as soon as it has finished arriving."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from prefect.states import State

from flows.nightly_batch import nightly_batch
from pipeline.service.inbox import InboxItem, WatchSettings, watch_inbox


def summary_name_now() -> str:
    """A batch summary file name unique to this moment (to the microsecond), sorting by time."""
    return f"batch-summary-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.json"


def items_to_retry(items: list[InboxItem], state: State) -> list[Path]:
    """The items a batch left in the inbox for another try: those its summary marks
    ``retry_next_run``, or all of them when the flow ended without a summary (it crashed)."""
    summary = state.result(raise_on_failure=False)
    if not isinstance(summary, dict):
        return [item.path for item in items]
    again = {Path(result["item"]) for result in summary["items"] if result["retry_next_run"]}
    return [item.path for item in items if item.path.resolve() in again]


def watch(
    inbox: Path,
    out: Path,
    settings: WatchSettings = WatchSettings(),
    concurrency: int | None = None,
    clip_presets: list[str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[State], None] | None = None,
) -> None:
    """Watch ``inbox`` until ``should_stop``; each group of arrived items runs as one batch.

    Items already finished are skipped by the batch's fingerprints, so restarting the watcher (which
    sees every file in the inbox as new) renders nothing twice. An item that failed transiently is
    tried again with a back-off (``settings.retry_s``). Each batch writes its own summary,
    ``OUT/batch-summary-<UTC time>.json``, so one arrival's summary does not replace another's; the
    Prefect artifact keeps one key, whose versions are the batches' history.
    """

    def run(items: list[InboxItem]) -> list[Path]:
        state = nightly_batch(
            inbox=inbox, out=out, concurrency=concurrency, clip_presets=clip_presets,
            only=[item.path for item in items], summary_name=summary_name_now(), return_state=True,
        )
        if on_batch is not None:
            on_batch(state)
        return items_to_retry(items, state)

    watch_inbox(Path(inbox), run, settings, should_stop)
