"""The job manifest: what went in, what came out, how long it took, and with which tools."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pipeline
from pipeline.inputs import sha256_of_input
from pipeline.files import write_text_atomically
from pipeline.media.runner import ffmpeg_version
from pipeline.media.probe import MediaInfo
from pipeline.render.renderer import RenderedOutput
from pipeline.analysis.sync import SyncReport
from pipeline.analysis.cache import AnalysisRecord
from pipeline.media.content_credentials import source_credentials
from pipeline.export.otio_export import SkippedExport
from pipeline.plan.legalise import OPERATOR as LEGALISER_OPERATOR
from pipeline.model.presets import Preset

MANIFEST_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Timings:
    """Wall-clock seconds per stage of a job."""

    probe_s: float
    """Probing every source and measuring its sync."""
    render_s: float
    """Encoding and verifying every output."""
    total_s: float
    """The whole job."""


def probe_summary(info: MediaInfo) -> dict[str, Any]:
    """The facts a reader of a manifest wants about one file."""
    video, audio = info.video, info.audio
    summary: dict[str, Any] = {
        "duration_s": float(info.duration_s),
        "container": info.container,
        "timecode": info.timecode,
        "video": {
            "codec": video.codec,
            "profile": video.profile,
            "size": f"{video.display_width}x{video.display_height}",
            "frame_rate": str(video.frame_rate),
            "frame_count": video.frame_count,
            "pix_fmt": video.pix_fmt,
            "field_order": video.field_order,
        },
        "audio": None,
        "audio_tracks": [{"codec": track.codec, "channels": track.channels, "layout": track.layout}
                         for track in info.audio_tracks],
    }
    if audio is not None:
        summary["audio"] = {
            "codec": audio.codec,
            "sample_rate": audio.sample_rate,
            "channels": audio.channels,
            "layout": audio.layout,
        }
    return summary


def build_manifest(
    job_name: str,
    sources: dict[Path, MediaInfo],
    outputs: list[RenderedOutput],
    editorial: list[Path],
    sync: dict[Path, SyncReport],
    timings: Timings,
    qc: dict[str, Any] | None = None,
    skipped_exports: tuple[SkippedExport, ...] = (),
    analyses: list[AnalysisRecord] | None = None,
) -> dict[str, Any]:
    """The manifest as a JSON-ready dict; ``qc`` maps deliverable labels to
    :class:`pipeline.jobs.finish.QcOutcome` (status and report paths per output); ``skipped_exports``
    are the editorial files a format could not express, listed with the reason under
    ``editorial_skipped``; ``analyses`` says which analyses of which sources this job computed and
    which it read from the cache."""
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "job": job_name,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"postprod": pipeline.__version__, "ffmpeg": ffmpeg_version()},
        "inputs": [
            {
                "path": str(path),
                "sha256": sha256_of_input(path),
                "probe": probe_summary(info),
                "sync": sync[path].to_dict() if path in sync else None,
                "credentials": _credentials_entry(path),
            }
            for path, info in sources.items()
        ],
        "outputs": [
            {
                "deliverable": output.plan.deliverable,
                "preset": output.plan.preset.name,
                "path": str(output.plan.path),
                "sha256": sha256_of_input(output.plan.path),
                "size_bytes": output.plan.path.stat().st_size,
                "probe": probe_summary(output.info),
                "verified": True,
                "encode_s": round(output.encode_s, 3),
                "verify_s": round(output.verify_s, 3),
                "loudness": output.plan.loudness.to_dict() if output.plan.loudness else None,
                "qc": _qc_entry((qc or {}).get(output.plan.deliverable)),
                "credentials": output.credentials.to_dict() if output.credentials else None,
                "legalise": _legalise_entry(output.plan.preset, (qc or {}).get(output.plan.deliverable)),
                "caption_files": [{"format": file.format, "path": str(file.path), "cues": len(output.plan.captions)}
                                  for file in output.plan.caption_files],
            }
            for output in outputs
        ],
        "editorial": [str(path) for path in editorial],
        "analyses": [record.to_dict() for record in analyses or []],
        "editorial_skipped": [export.to_dict() for export in skipped_exports],
        "timings": {key: round(value, 3) for key, value in vars(timings).items()},
    }


def _credentials_entry(path: Path) -> dict[str, Any] | None:
    """A source's own C2PA manifest, summarised; None when it carries none."""
    credentials = source_credentials(path)
    return credentials.to_dict() if credentials else None


def _legalise_entry(preset: Preset, outcome) -> dict[str, Any] | None:
    """The broadcast legaliser's operator and the share of pixels it changed, as QC measured it on
    the output (None without QC); None when the preset does not legalise."""
    if not preset.video.legalise:
        return None
    return {
        "operator": LEGALISER_OPERATOR,
        "touched_share": None if outcome is None else outcome.report.legalised_share,
        "measured_on": "QC decode of the output: pixels its knees moved by a 10-bit code or more",
    }


def _qc_entry(outcome) -> dict[str, Any] | None:
    if outcome is None:
        return None
    return {
        "status": outcome.report.status,
        "passed": outcome.report.passed,
        "policy": outcome.report.policy,
        "report": str(outcome.json_path),
        "html": str(outcome.html_path),
        "failed": [check.name for check in outcome.report.checks if check.status == "fail"],
        "warned": [check.name for check in outcome.report.checks if check.status == "warn"],
    }


def write_manifest(manifest: dict[str, Any], path: Path) -> Path:
    """Write the manifest atomically (temporary name, then rename)."""
    return write_text_atomically(path, json.dumps(manifest, indent=2) + "\n")
