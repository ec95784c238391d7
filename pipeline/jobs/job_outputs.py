"""Where a job's outputs go, and removing them again when the job fails short of its manifest."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import JobError, OutputWriteError
from pipeline.model.job import Job
from pipeline.plan.outputs import JobPlan

EDITORIAL_SUFFIXES = (".otio", ".edl", ".xml")
"""The editorial exports' suffixes after the job's name (see :mod:`pipeline.export.otio_export`)."""


def output_dir_for(job: Job, out_dir: Path | None) -> Path:
    """The command line's folder, else the job file's ``output.dir``.

    Raises:
        JobError: neither names a folder.
    """
    folder = out_dir or job.output.dir
    if folder is None:
        raise JobError("no output folder: pass --out DIR or set output.dir in the job file")
    return Path(folder).resolve()


def manifest_path(job: Job, out_dir: Path) -> Path:
    """Where a job's manifest goes."""
    return out_dir / f"{job.name}.manifest.json"


def discard_outputs(plan: JobPlan, out_dir: Path) -> None:
    """Remove what a job wrote before it failed short of its manifest (deliverables, conformed
    media, QC reports, editorial exports), so no deliverable lies in the folder unrecorded."""
    paths = [output.path for render_plan in (*plan.renders, *plan.editorial_media) for output in render_plan.outputs]
    paths += [path.with_name(f"{path.stem}.qc.json") for path in paths]
    paths += [out_dir / f"{plan.job.name}{suffix}" for suffix in (".qc.html", *EDITORIAL_SUFFIXES)]
    for path in paths:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def recorded_or_removed(plan: JobPlan, out_dir: Path) -> Iterator[None]:
    """Run the steps from the renders to the manifest: if one fails, whatever of ``plan``'s
    outputs and reports was written is removed again.

    Raises:
        OutputWriteError: a file could not be written (a full disk), instead of the bare OSError.
    """
    try:
        yield
    except BaseException as error:
        discard_outputs(plan, out_dir)
        if isinstance(error, OSError):
            raise OutputWriteError(error.filename or out_dir, error) from error
        raise
