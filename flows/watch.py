"""The watch folder: run the nightly-batch flow on each inbox item as soon as it has finished arriving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prefect.states import State

from flows.nightly_batch import nightly_batch
from pipeline.inbox import InboxItem, WatchSettings, watch_inbox


def watch(
    inbox: Path,
    out: Path,
    settings: WatchSettings = WatchSettings(),
    concurrency: int = 2,
    clip_presets: list[str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[State], None] | None = None,
) -> None:
    """Watch ``inbox`` until ``should_stop``; each group of arrived items runs as one batch.

    Items already finished are skipped by the batch's fingerprints, so restarting the watcher (which
    sees every file in the inbox as new) renders nothing twice.
    """

    def run(items: list[InboxItem]) -> None:
        state = nightly_batch(
            inbox=inbox, out=out, concurrency=concurrency, clip_presets=clip_presets,
            only=[item.path for item in items], return_state=True,
        )
        if on_batch is not None:
            on_batch(state)

    watch_inbox(Path(inbox), run, settings, should_stop)
