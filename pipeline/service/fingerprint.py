"""Job fingerprints: what a job's outputs depend on, so a batch can skip a job that is already done.

A fingerprint covers the job as validated (so a comment or key order in the job file does not
count, a changed in point does), the content hash of every file the job reads (sources, music bed,
caption files, logo images, style fonts, learned-upscale models), the full contents of every preset
the job uses, and the postprod and ffmpeg versions. A finished job's
manifest carries its fingerprint; a rerun compares, and finds the outputs still in place, before
deciding there is nothing to do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.model.job import Job
from pipeline.export.manifest import write_manifest
from pipeline.model.presets import Preset, get_preset
from pipeline.plan.admission import job_inputs_by_field
from pipeline.inputs import sha256_of_input

MANIFEST_KEY = "batch"
"""The manifest's key for what the batch layer records about a job."""


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Fingerprint:
    """What a job's outputs depend on, as hashes."""

    parts: dict[str, str]
    """One SHA-256 per thing that can change: ``job``, ``inputs``, ``presets``, ``postprod``, ``ffmpeg``."""

    @property
    def digest(self) -> str:
        """One SHA-256 over every part."""
        return _digest(self.parts)


def job_inputs(job: Job, presets: dict[str, Preset]) -> list[Path]:
    """Every file a job reads, once each (see :func:`pipeline.plan.admission.job_inputs_by_field`)."""
    return list(dict.fromkeys(each.path for each in job_inputs_by_field(job, presets)))


def used_presets(job: Job, presets: dict[str, Preset]) -> dict[str, Preset]:
    """The presets a job renders with, by name: its deliverables', and the conformed media's.

    Raises:
        JobError: one of them is unknown.
    """
    names = [deliverable.preset for deliverable in job.deliverables]
    names += [job.editorial.media_preset] if job.editorial.conformed_media else []
    return {name: get_preset(name, presets) for name in names}


def job_fingerprint(job: Job, presets: dict[str, Preset], postprod_version: str, ffmpeg_version: str) -> Fingerprint:
    """Hash everything a job's outputs depend on; reads every input once, each through
    :func:`pipeline.inputs.open_input` (a regular file, read to its size when opened).

    Raises:
        MediaError: an input is missing, unreadable or not a regular file.
        JobError: a deliverable (or ``editorial.media_preset``) names an unknown preset.
    """
    inputs = {str(each.path): sha256_of_input(each.path, each.field) for each in job_inputs_by_field(job, presets)}
    used = {name: preset.model_dump(mode="json") for name, preset in used_presets(job, presets).items()}
    return Fingerprint({
        "job": _digest(job.model_dump(mode="json")),
        "inputs": _digest(inputs),
        "presets": _digest(used),
        "postprod": postprod_version,
        "ffmpeg": ffmpeg_version,
    })


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A manifest's contents; None if it is missing or not JSON (a rerun then renders again)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def why_stale(manifest_path: Path, fingerprint: Fingerprint) -> str | None:
    """Why a job must render again, or None when its manifest matches and its outputs are in place.

    Outputs are checked by presence and size, not hashed again: they were verified and hashed when
    written, and renaming into place is atomic, so a file of the recorded size is the one written.
    """
    manifest = read_manifest(manifest_path)
    if manifest is None:
        return "no manifest from an earlier run"
    recorded = manifest.get(MANIFEST_KEY, {}).get("fingerprint_parts")
    if not isinstance(recorded, dict):
        return "the manifest has no fingerprint"
    changed = sorted(key for key, value in fingerprint.parts.items() if recorded.get(key) != value)
    if changed:
        return "changed since the last run: " + ", ".join(changed)
    for output in manifest.get("outputs", []):
        path = Path(output["path"])
        if not path.is_file():
            return f"output missing: {path}"
        if path.stat().st_size != output.get("size_bytes"):
            return f"output changed size: {path}"
    return None


def stamp_manifest(manifest_path: Path, fingerprint: Fingerprint, origin: Path) -> None:
    """Record the fingerprint (and the inbox file the job came from) in a finished job's manifest."""
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest[MANIFEST_KEY] = {
        "fingerprint": fingerprint.digest,
        "fingerprint_parts": fingerprint.parts,
        "origin": str(origin),
    }
    write_manifest(manifest, manifest_path)


def _listed_files(manifest: dict[str, Any]) -> set[Path]:
    """The files a manifest says the job wrote: deliverables, their QC reports, editorial exports."""
    files = set()
    for output in manifest.get("outputs", []):
        files.add(Path(output["path"]))
        qc = output.get("qc")
        if isinstance(qc, dict):
            files.update(Path(qc[key]) for key in ("report", "html") if qc.get(key))
    files.update(Path(path) for path in manifest.get("editorial", []))
    return files


def remove_superseded_outputs(previous: dict[str, Any] | None, manifest_path: Path) -> list[Path]:
    """Delete what an earlier run of the job wrote that the run just finished did not write again
    (a deliverable dropped from the job, or renamed by a preset change), so the job's folder holds
    one version. Only files directly in the manifest's folder are touched.

    Returns:
        The files removed.
    """
    current = read_manifest(manifest_path)
    if previous is None or current is None:
        return []
    folder = manifest_path.parent.resolve()
    removed = []
    for path in sorted(_listed_files(previous) - _listed_files(current)):
        if path.parent.resolve() == folder and path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed
