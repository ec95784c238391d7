"""A QC report: each check's verdict with its measured value and the faults' times, as JSON
(schema :data:`QC_SCHEMA_VERSION`, documented in docs/finishing.md) and for the HTML page
(:mod:`pipeline.qc.html_report`).

Each check ends as ``pass``, ``warn`` or ``fail``. Fail-level checks are the ones a delivery spec
rejects (conformance, loudness, true peak, illegal levels, flash risk, sync); black, freeze,
silence and stutter may be intended, so they warn.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.analysis.loudness import LoudnessCorrection, LoudnessMeasurement
from pipeline.model.timebase import frames_to_timecode

QC_SCHEMA_VERSION = 1
Status = Literal["pass", "warn", "fail"]
_SEVERITY = {"pass": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class Fault:
    """A stretch of the file where a check found a problem."""

    start_s: float
    """Start, seconds from the first frame."""
    end_s: float
    """End (exclusive), seconds."""


def true_runs(flags: Iterable[bool]) -> list[tuple[int, int]]:
    """(first, last + 1) index of every run of True."""
    runs, start = [], None
    flags = list(flags)
    for index, flag in enumerate(flags):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index))
            start = None
    if start is not None:
        runs.append((start, len(flags)))
    return runs


def fault_status(faults: tuple[Fault, ...], level: Status) -> Status:
    """``level`` when there are faults, else ``pass``."""
    return level if faults else "pass"


@dataclass(frozen=True)
class Check:
    """One QC check's verdict."""

    name: str
    """Check name, e.g. ``black``."""
    status: Status
    """``pass``, ``warn`` or ``fail``."""
    value: float | int | str | None
    """The measured value (see ``unit``); None when there was nothing to measure."""
    unit: str
    """Unit or meaning of ``value``."""
    limit: str
    """What passes, in words."""
    detail: str = ""
    """What was found, in words."""
    faults: tuple[Fault, ...] = ()
    """Where, for checks that find stretches."""


@dataclass(frozen=True, eq=False)
class QcReport:
    """Everything QC found in one file, and what the HTML page draws."""

    path: Path
    """The file checked."""
    preset: str
    """Preset it was checked against."""
    policy: Literal["fail", "warn"]
    """Whether a failing check fails the job."""
    duration_s: float
    """Picture duration, seconds."""
    frame_rate: Fraction
    """Frames per second (timecodes count at this rate)."""
    frame_count: int
    """Frames decoded."""
    checks: tuple[Check, ...]
    """Every check, in report order."""
    loudness: LoudnessMeasurement | None
    """The sound's loudness; None without an audio stream."""
    correction: LoudnessCorrection | None
    """The loudness correction made while finishing, if any."""
    thumbnails: tuple[tuple[float, bytes], ...]
    """Contact sheet: (time in seconds, JPEG bytes)."""
    waveform: np.ndarray
    """Peak envelope, shape (2, blocks): minimum and maximum of all channels per 10 ms."""
    analysis_s: float
    """Seconds QC took: its checks, and its decode when it made one (verification's decode, which
    QC reuses for a deliverable finished here, is timed as verification)."""
    decoded_by: Literal["verification", "qc"] = "qc"
    """Which step decoded the file: verification, whose measures QC reused, or QC itself (a file
    checked on its own)."""
    legalised_share: float | None = None
    """Mean share of pixels per frame the broadcast legaliser changed by a 10-bit code or more (its
    knees undone on the same samples the gamut check uses); None when the preset does not legalise."""
    created_utc: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    """When the report was made."""

    @property
    def status(self) -> Status:
        """The worst status of any check."""
        return max((check.status for check in self.checks), key=_SEVERITY.__getitem__, default="pass")

    @property
    def passed(self) -> bool:
        """False when a check failed and the policy is ``fail``."""
        return not (self.policy == "fail" and self.status == "fail")

    def timecode(self, seconds: float) -> str:
        """SMPTE timecode of a time in the file, at its frame rate."""
        return frames_to_timecode(round(seconds * float(self.frame_rate)), self.frame_rate)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema version :data:`QC_SCHEMA_VERSION`)."""
        loudness = self.loudness.to_dict() if self.loudness else None
        return {
            "schema": "postprod.qc",
            "schema_version": QC_SCHEMA_VERSION,
            "file": str(self.path),
            "preset": self.preset,
            "policy": self.policy,
            "status": self.status,
            "passed": self.passed,
            "created_utc": self.created_utc,
            "duration_s": round(self.duration_s, 6),
            "frame_rate": str(self.frame_rate),
            "frame_count": self.frame_count,
            "loudness": None if loudness is None else {
                **loudness,
                "correction": self.correction.to_dict() if self.correction else None,
            },
            "checks": [
                {
                    "name": check.name,
                    "status": check.status,
                    "value": check.value,
                    "unit": check.unit,
                    "limit": check.limit,
                    "detail": check.detail,
                    "faults": [
                        {
                            "start_s": round(fault.start_s, 3),
                            "end_s": round(fault.end_s, 3),
                            "start_tc": self.timecode(fault.start_s),
                            "end_tc": self.timecode(fault.end_s),
                        }
                        for fault in check.faults
                    ],
                }
                for check in self.checks
            ],
            "legalised_share": None if self.legalised_share is None else round(self.legalised_share, 6),
            "analysis": {"decode_passes": 1, "decoded_by": self.decoded_by, "seconds": round(self.analysis_s, 3)},
        }

    def summary(self) -> str:
        """One line: status and the checks that did not pass."""
        problems = [f"{check.name} {check.status}" for check in self.checks if check.status != "pass"]
        return f"{self.path.name}: {self.status}" + (f" ({', '.join(problems)})" if problems else "")


def thumbnail_data_uri(jpeg: bytes) -> str:
    """A JPEG as a ``data:`` URI for a self-contained page."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
