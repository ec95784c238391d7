"""How the job's steps are run. The sequence (:mod:`pipeline.jobs.sequence`) is written once and
hands every step to a :class:`StepRunner`: :class:`DirectSteps` (the library path, ``--no-prefect``)
calls each one and caches analyses on disk; the Prefect flow (``flows/finish_job.py``) runs each as
a named task, retrying transient faults, with analyses cached as Prefect results."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pipeline.analysis.cache import AnalysisCache, AnalysisRecord
from pipeline.jobs.job_qc import QcOutcome
from pipeline.media.runner import Progress
from pipeline.plan.outputs import RenderPlan
from pipeline.render.renderer import RenderedOutput, render

Result = TypeVar("Result")
RenderProgress = Callable[[RenderPlan, Progress], None]
log = logging.getLogger(__name__)


class StepRunner(Protocol):
    """Runs the job's steps; the sequence does not know how."""

    @property
    def records(self) -> list[AnalysisRecord]:
        """Every analysis this job ran, in order, and whether each came from a cache."""

    def step(self, name: str, function: Callable[..., Result], *args: Any, retry: bool = False) -> Result:
        """``function(*args)`` as the step ``name``; with ``retry``, a transient fault
        (:func:`pipeline.errors.is_transient`) may be retried. Its exception propagates."""

    def each(self, name: str, function: Callable[[Any], Result], items: Sequence[Any]) -> list[Result]:
        """``function(item)`` for every item as one step each, side by side where the runner can;
        the results in item order. Transient faults may be retried."""

    def analyse(self, analysis: str, source: Path, parameters: Mapping[str, Any],
                compute: Callable[[], Result]) -> Result:
        """``compute()``'s result, or the same analysis of the same content from a cache keyed by
        :func:`pipeline.analysis.cache.analysis_key`; recorded in :attr:`records` either way."""

    def render(self, renders: Sequence[RenderPlan]) -> list[RenderedOutput]:
        """Render and verify every plan (one waiting for those whose intermediates it reads); the
        outputs in plan order."""

    def note(self, message: str) -> None:
        """Log what a step found (a sync verdict, an analysis, a loudness correction, an export
        left out): in the process's log, or in the run's logs in the Prefect UI."""

    def report_qc(self, job_name: str, outcomes: dict[str, QcOutcome]) -> None:
        """Show the QC verdicts (a log line each; a table in the Prefect UI)."""


@dataclass
class DirectSteps:
    """The library path's runner: each step called in this process, analyses cached in ``cache``."""

    cache: AnalysisCache
    """The on-disk analysis cache (or none: ``AnalysisCache(None)``)."""
    on_progress: RenderProgress | None = None
    """Told how each render progresses (the CLI's progress bars)."""

    @property
    def records(self) -> list[AnalysisRecord]:
        return self.cache.records

    def step(self, name: str, function: Callable[..., Result], *args: Any, retry: bool = False) -> Result:
        return function(*args)

    def each(self, name: str, function: Callable[[Any], Result], items: Sequence[Any]) -> list[Result]:
        return [function(item) for item in items]

    def analyse(self, analysis: str, source: Path, parameters: Mapping[str, Any],
                compute: Callable[[], Result]) -> Result:
        return self.cache.get_or_compute(analysis, source, parameters, compute)

    def render(self, renders: Sequence[RenderPlan]) -> list[RenderedOutput]:
        rendered = []
        for plan in renders:
            listener = self.on_progress
            report = (lambda progress, plan=plan: listener(plan, progress)) if listener else None
            rendered += render(plan, on_progress=report)
        return rendered

    def note(self, message: str) -> None:
        log.info("%s", message)

    def report_qc(self, job_name: str, outcomes: dict[str, QcOutcome]) -> None:
        for outcome in outcomes.values():
            self.note(f"QC {outcome.report.summary()}")
