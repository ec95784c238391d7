"""Quality control of a job's deliverables: one report per deliverable, the job's HTML page, and
the ``qc.policy`` that decides whether a failed check fails the job."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pipeline.analysis.sync import SyncReport
from pipeline.errors import QcFailedError
from pipeline.files import write_text_atomically
from pipeline.model.job import Job
from pipeline.qc.checks import QcReport, run_qc
from pipeline.qc.html_report import write_html
from pipeline.render.renderer import RenderedOutput


@dataclass(frozen=True)
class QcOutcome:
    """A deliverable's QC report and where it was written."""

    report: QcReport
    """What QC found."""
    json_path: Path
    """``NAME.qc.json`` beside the deliverable."""
    html_path: Path
    """The job's HTML report (one page for every deliverable)."""


def quality_check(
    job: Job,
    rendered: list[RenderedOutput],
    sync_reports: dict[Path, SyncReport],
    sync_corrections: dict[Path, Fraction],
    out_dir: Path,
) -> dict[str, QcOutcome]:
    """QC every deliverable on verification's measures (no second decode), write ``NAME.qc.json``
    beside it and ``JOB.qc.html``.

    The sync check judges the sources' measured sync (a corrected source counts as in sync); the
    policy is the job's ``qc.policy``, else the deliverable's preset's.
    """
    sync = _programme_sync(job, sync_reports, sync_corrections)
    reports = []
    for output in rendered:
        plan = output.plan
        reports.append(run_qc(
            plan.path, plan.preset, expected=plan.expected, correction=plan.loudness, sync=sync,
            policy=job.qc.policy, info=output.info, measured=output.measured, mismatches=output.mismatches,
            out_of_sync="warn" if job.sync.policy == "report" else "fail",
        ))
    html_path = write_html(job.name, reports, out_dir / f"{job.name}.qc.html")
    outcomes = {}
    for output, report in zip(rendered, reports, strict=True):
        json_path = output.plan.path.with_name(f"{output.plan.path.stem}.qc.json")
        write_text_atomically(json_path, json.dumps(report.to_dict(), indent=2) + "\n")
        outcomes[output.plan.deliverable] = QcOutcome(report, json_path, html_path)
    return outcomes


def _programme_sync(
    job: Job, sync_reports: dict[Path, SyncReport], sync_corrections: dict[Path, Fraction]
) -> SyncReport | None:
    """The sources' sync verdict that speaks for the programme: an uncorrected out-of-sync source,
    else an in-sync one, else an undetermined one; None when nothing was measured."""
    reports = [report for path, report in sync_reports.items() if path not in sync_corrections]
    for verdict in ("out_of_sync", "in_sync", "undetermined"):
        for report in reports:
            if report.verdict == verdict:
                return report
    return None


def enforce_qc_policy(outcomes: dict[str, QcOutcome]) -> None:
    """Raise when a deliverable failed QC under the ``fail`` policy.

    Raises:
        QcFailedError: names each failing deliverable, its failing checks and its report.
    """
    failed = [outcome for outcome in outcomes.values() if not outcome.report.passed]
    if failed:
        lines = [
            f"{outcome.report.path.name}: " + "; ".join(
                f"{check.name} ({check.detail or check.value})" for check in outcome.report.checks
                if check.status == "fail"
            ) + f" - see {outcome.json_path}"
            for outcome in failed
        ]
        raise QcFailedError("QC failed (policy: fail):\n  " + "\n  ".join(lines))
