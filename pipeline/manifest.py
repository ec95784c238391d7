"""The job manifest: what went in, what came out, how long it took, and with which tools."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pipeline
from pipeline.media import ffmpeg_version
from pipeline.probe import MediaInfo
from pipeline.render import RenderedOutput
from pipeline.sync import SyncReport

MANIFEST_SCHEMA_VERSION = 1
_HASH_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
) -> dict[str, Any]:
    """The manifest as a JSON-ready dict; ``qc`` maps deliverable labels to
    :class:`pipeline.finish.QcOutcome` (status and report paths per output)."""
    return {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "job": job_name,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"postprod": pipeline.__version__, "ffmpeg": ffmpeg_version()},
        "inputs": [
            {
                "path": str(path),
                "sha256": sha256_of(path),
                "probe": probe_summary(info),
                "sync": sync[path].to_dict() if path in sync else None,
            }
            for path, info in sources.items()
        ],
        "outputs": [
            {
                "deliverable": output.plan.deliverable,
                "preset": output.plan.preset.name,
                "path": str(output.plan.path),
                "sha256": sha256_of(output.plan.path),
                "size_bytes": output.plan.path.stat().st_size,
                "probe": probe_summary(output.info),
                "verified": True,
                "encode_s": round(output.encode_s, 3),
                "verify_s": round(output.verify_s, 3),
                "loudness": output.plan.loudness.to_dict() if output.plan.loudness else None,
                "qc": _qc_entry((qc or {}).get(output.plan.deliverable)),
                "caption_files": [{"format": file.format, "path": str(file.path), "cues": len(output.plan.captions)}
                                  for file in output.plan.caption_files],
            }
            for output in outputs
        ],
        "editorial": [str(path) for path in editorial],
        "timings": {key: round(value, 3) for key, value in vars(timings).items()},
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
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
