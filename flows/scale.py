"""Scale-out: a job's renders as tasks on the flow's task runner, threads by default or a Dask cluster
through prefect-dask, with the order between renders that share intermediate files kept.

Every machine that runs renders needs the same paths for sources, outputs and intermediates (one
shared file system), since a render task reads and writes files, not data passed by Dask.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import Task
from prefect.futures import PrefectFuture, wait

from pipeline.plan.outputs import RenderPlan
from pipeline.render.renderer import RenderedOutput
from pipeline.service.resources import uses_gpu

if TYPE_CHECKING:
    from prefect_dask import DaskTaskRunner

GPU_TAG = "gpu"
"""Tag of tasks that need a GPU; a Prefect tag concurrency limit on it (``prefect concurrency-limit
create gpu 1``) keeps them from sharing one card across the whole server."""


def render_tags(plan: RenderPlan) -> set[str]:
    """``gpu`` when the plan's encoders or filters run on one, else none: every tag of a task run
    costs a concurrency-limit round trip to the server, and the task's name already says render."""
    return {GPU_TAG} if uses_gpu(plan.encoders, plan.filters) else set()


def submit_renders(render_task: Task, renders: tuple[RenderPlan, ...] | list[RenderPlan]) -> list[list[RenderedOutput]]:
    """Submit every render at once, each waiting for the renders whose intermediates it reads.

    Independent renders (one ffmpeg per deliverable) then run side by side, as far as the task runner
    and the machine's render slots allow. Waits for all of them before returning or raising, so a
    failed render never leaves another still writing when the caller cleans up.

    Returns:
        Each render's outputs, in plan order.
    """
    producers: dict[Path, PrefectFuture] = {}
    futures = []
    for plan in renders:
        upstream = list({id(producers[path]): producers[path] for path in plan.consumes if path in producers}.values())
        future = render_task.with_options(tags=render_tags(plan)).submit(plan, wait_for=upstream)
        producers.update({path: future for path in plan.intermediates})
        futures.append(future)
    wait(futures)
    return [future.result() for future in futures]


def dask_task_runner(address: str) -> DaskTaskRunner:
    """A task runner that sends tasks to the Dask scheduler at ``address``.

    prefect-dask and distributed are imported here, not with the module: they cost every command
    half a CPU second of imports, and only ``--dask`` uses them.
    """
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=address)


@contextmanager
def dask_scheduler(dask: str | None, workers: int) -> Iterator[str | None]:
    """The scheduler address to render on: None for the default thread runner, ``"local"`` for a new
    ``LocalCluster`` of ``workers`` single-threaded worker processes (ffmpeg brings its own threads)
    that lives as long as the context, anything else a running scheduler's address."""
    if dask != "local":
        yield dask
        return
    from distributed import LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address
