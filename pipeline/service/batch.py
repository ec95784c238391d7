"""A batch's outcome per inbox item, and its summary as JSON and as a Markdown table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.files import write_text_atomically
from pipeline.errors import MissingCapabilityError, PostprodError, is_transient
from pipeline.service.fingerprint import read_manifest
from pipeline.inputs import display_path

SUMMARY_NAME = "batch-summary.json"
SUMMARY_SCHEMA_VERSION = 1

Status = Literal["succeeded", "skipped", "failed"]
FailureBin = Literal["bad_input", "operator", "transient", "internal"]
"""Why an item failed, which decides what becomes of it:

- ``bad_input``: the job or its media; set aside in ``failed/`` with the reason at once.
- ``operator``: the machine or the inbox's set-up (a missing encoder, a broken template); the item
  stays where it is and is not counted against it.
- ``transient``: may pass next time (ffmpeg killed, a full disk); tried again on later runs, and set
  aside with its history after ``max_attempts``.
- ``internal``: a fault in postprod itself, reported with its traceback; tried again like a
  transient failure (an upgrade may fix it), never forever.
"""


@dataclass(frozen=True)
class ItemResult:
    """What became of one inbox item."""

    item: str
    """The job file or loose clip, as found in the inbox (a byte of a non-UTF-8 name as ``\\xNN``)."""
    job: str | None
    """The job's name; None when the job file could not be read."""
    status: Status
    """``succeeded``: rendered now; ``skipped``: already done and unchanged; ``failed``."""
    reason: str | None = None
    """Why it failed, or why it was rendered again (what changed)."""
    failure: FailureBin | None = None
    """Which kind of failure it was (see :data:`FailureBin`); None unless ``failed``."""
    retry_next_run: bool = False
    """A failure that may pass next time (ffmpeg killed, an I/O error): the item stays in the inbox."""
    set_aside_in: str | None = None
    """The ``failed/`` folder the item was moved to, for a failure that would recur."""
    qc: str | None = None
    """The QC status the job's manifest reports, when it has a QC report."""
    outputs: tuple[str, ...] = ()
    """The verified deliverables."""
    manifest: str | None = None
    """The job's manifest."""
    seconds: float = 0.0
    """Wall-clock seconds spent on the item in this batch."""


def failure_bin(error: BaseException) -> FailureBin:
    """The kind of failure ``error`` is: bad job, bad media, refused or unverifiable render are bad
    input; a missing ffmpeg encoder is the operator's; a render stopped from outside or an I/O fault
    is transient; anything postprod did not raise on purpose is internal."""
    if isinstance(error, MissingCapabilityError):
        return "operator"
    if is_transient(error):
        return "transient"
    if isinstance(error, PostprodError | OSError):
        return "bad_input"
    return "internal"


QC_SEVERITY = ("pass", "warn", "fail")
"""QC statuses from best to worst."""


def qc_status(manifest: dict[str, Any]) -> str | None:
    """The job's QC verdict: the worst status among its deliverables' reports (``outputs[].qc``,
    as :func:`pipeline.export.manifest.build_manifest` writes them); None when none was checked."""
    statuses = [
        output["qc"]["status"]
        for output in manifest.get("outputs", [])
        if isinstance(output.get("qc"), dict) and output["qc"].get("status") in QC_SEVERITY
    ]
    return max(statuses, key=QC_SEVERITY.index) if statuses else None


def finished_result(item: Path, job: str, status: Status, manifest_path: Path, seconds: float,
                    reason: str | None = None) -> ItemResult:
    """The result of an item whose manifest is in place (rendered now, or skipped)."""
    manifest = read_manifest(manifest_path) or {}
    return ItemResult(
        item=display_path(item), job=job, status=status, reason=reason, qc=qc_status(manifest),
        outputs=tuple(output["path"] for output in manifest.get("outputs", [])),
        manifest=str(manifest_path), seconds=round(seconds, 3),
    )


def summarize(inbox: Path, out_dir: Path, started_utc: str, finished_utc: str,
              results: list[ItemResult]) -> dict[str, Any]:
    """The batch summary as a JSON-ready dict."""
    counts = {status: sum(result.status == status for result in results)
              for status in ("succeeded", "skipped", "failed")}
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "inbox": str(inbox),
        "out": str(out_dir),
        "started_utc": started_utc,
        "finished_utc": finished_utc,
        "counts": counts,
        "items": [asdict(result) for result in results],
    }


def write_summary(summary: dict[str, Any], path: Path) -> Path:
    """Write the summary atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, json.dumps(summary, indent=2) + "\n")


def _cell(text: str) -> str:
    return display_path(text).replace("|", "\\|").replace("\n", " ")


def summary_markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown: counts, then one table row per item."""
    counts = summary["counts"]
    lines = [
        f"**{counts['succeeded']} rendered, {counts['skipped']} already done, {counts['failed']} failed** "
        f"from `{summary['inbox']}` into `{summary['out']}`",
        "",
        "| item | job | status | QC | outputs | reason |",
        "|---|---|---|---|---|---|",
    ]
    for item in summary["items"]:
        status = item["status"]
        if item["set_aside_in"]:
            status += f" (set aside in `{item['set_aside_in']}`)"
        elif item["retry_next_run"]:
            status += " (retried next run)"
        outputs = "<br>".join(f"`{Path(path).name}`" for path in item["outputs"])
        lines.append(
            f"| `{_cell(Path(item['item']).name)}` | {item['job'] or ''} | {_cell(status)} | {item['qc'] or ''} | "
            f"{outputs} | {_cell(item['reason'] or '')} |"
        )
    return "\n".join(lines)
