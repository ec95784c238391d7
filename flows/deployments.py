"""The scheduled nightly deployment, served from this process with ``flow.serve``'s runner.

``prefect.yaml`` describes the same deployment for a work pool, for process workers on several
machines (``prefect deploy``); this module is the one-machine path behind ``postprod serve``.
"""

from __future__ import annotations

import os
from pathlib import Path

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.nightly_batch import nightly_batch

DEPLOYMENT_NAME = "nightly"
DEFAULT_CRON = "0 2 * * *"
"""02:00 every night."""
TIMEZONE_ENV = "POSTPROD_TIMEZONE"


def default_timezone() -> str:
    """``$POSTPROD_TIMEZONE`` (an IANA name such as ``Europe/London``), else UTC."""
    return os.environ.get(TIMEZONE_ENV) or "UTC"


def nightly_deployment(
    inbox: Path,
    out: Path,
    cron: str = DEFAULT_CRON,
    timezone: str | None = None,
    concurrency: int | None = None,
    clip_presets: list[str] | None = None,
    dask: str | None = None,
) -> RunnerDeployment:
    """The nightly batch of ``inbox`` into ``out`` on ``cron`` in ``timezone``.

    Its concurrency limit of 1 queues a night's run behind a previous one still going, rather than
    two batches racing over one inbox.
    """
    parameters = {"inbox": str(Path(inbox).resolve()), "out": str(Path(out).resolve()),
                  "concurrency": concurrency, "dask": dask}
    if clip_presets:
        parameters["clip_presets"] = list(clip_presets)
    return nightly_batch.to_deployment(
        name=DEPLOYMENT_NAME,
        schedules=[Cron(cron, timezone=timezone or default_timezone())],
        parameters=parameters,
        concurrency_limit=1,
        description=f"Finish what arrived in {inbox} overnight",
        tags=["postprod"],
    )


def serve_nightly(deployment: RunnerDeployment) -> None:
    """Register the deployment and run its scheduled and triggered runs here until interrupted."""
    serve(deployment)
