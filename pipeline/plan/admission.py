"""What a job may touch on this machine: which files it may read, and which Python it may run.

Job files are treated as untrusted: a service finishes what agencies and colleagues drop into an
inbox, and a deliverable must never carry ``/etc/passwd`` burnt in as captions. The rule, the same
for ``run``, ``preview``, ``frame``, ``batch``, ``watch`` and ``serve``:

* A job reads only files inside its **read roots**: the job file's folder (for a batch, the inbox)
  and its sub-folders, plus the folders the operator adds (``$POSTPROD_READ_ROOTS``, folders
  separated by ``os.pathsep``, or ``--allow-read DIR``). Paths are taken relative to the job file;
  an absolute path, a ``..`` or a symbolic link is allowed when it ends up inside a read root once
  links are followed. ``postprod finish CLIP`` reads the clips it is given. A model a preset names
  is the operator's and is not confined.
* Each input is a regular, readable file with a UTF-8 name (see :mod:`pipeline.inputs`), within a
  size limit for its kind, and not the job file itself.
* A ``graphics`` overlay's callable runs only from a module the operator allows
  (``$POSTPROD_GRAPHICS_MODULES``, comma-separated, or ``--allow-graphics MODULE``; a package allows
  its sub-modules). None is allowed by default. The module name is checked before anything imports it.

:func:`check_job_access` applies all of it before anything hashes, probes, decodes or imports.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import JobError
from pipeline.inputs import check_input_file, display_path
from pipeline.model.job import Job
from pipeline.plan.outputs import resolve_preset
from pipeline.model.presets import Preset

READ_ROOTS_ENV_VAR = "POSTPROD_READ_ROOTS"
GRAPHICS_MODULES_ENV_VAR = "POSTPROD_GRAPHICS_MODULES"

MAX_CAPTION_FILE_BYTES = 16 * 1024 * 1024
"""A caption file is parsed whole: hours of subtitles are a few hundred kilobytes."""
MAX_FONT_BYTES = 64 * 1024 * 1024
"""The largest CJK font families are about 30 MB."""
MAX_IMAGE_BYTES = 64 * 1024 * 1024
"""A logo is decoded whole; a 4K RGBA PNG is well under this."""
MAX_MODEL_BYTES = 4 * 1024 * 1024 * 1024
"""A super-resolution ONNX model is tens of megabytes."""


@dataclass(frozen=True)
class JobInput:
    """One file a job reads, and the job field that names it."""

    field: str
    """Where the job names it, e.g. ``shots.0.source``."""
    path: Path
    """The absolute path."""
    max_bytes: int | None = None
    """Size limit for its kind; None for media (a master may be hundreds of gigabytes)."""
    confined: bool = True
    """False for a file the operator named (a preset's model), which may lie outside the read roots."""


def job_inputs_by_field(job: Job, presets: dict[str, Preset]) -> list[JobInput]:
    """Every file a job reads, in job order: sources, music bed, caption files, logo images, style
    fonts, and the ONNX model of each deliverable that upscales with one (``enhance.model``, an
    override, or the preset's own ``upscale_model``). A deliverable whose preset cannot be resolved
    adds no model (planning reports it)."""
    inputs = [JobInput(f"shots.{number}.source", shot.source) for number, shot in enumerate(job.shots)]
    if job.music:
        inputs.append(JobInput("music.source", job.music.source))
    for number, overlay in enumerate(job.overlays):
        if overlay.captions is not None:
            inputs.append(JobInput(f"overlays.{number}.captions", overlay.captions, MAX_CAPTION_FILE_BYTES))
        if overlay.image is not None:
            inputs.append(JobInput(f"overlays.{number}.image", overlay.image, MAX_IMAGE_BYTES))
    inputs += [JobInput(f"styles.{name}.font", style.font, MAX_FONT_BYTES)
               for name, style in job.styles.items() if style.font is not None]
    for index, deliverable in enumerate(job.deliverables):
        try:
            video = resolve_preset(job, index, presets).video
        except JobError:
            continue
        if video.upscale != "learned" or not video.upscale_model:
            continue
        model = Path(os.path.realpath(video.upscale_model))
        if job.enhance.model is not None:
            inputs.append(JobInput("enhance.model", model, MAX_MODEL_BYTES))
        elif "upscale_model" in deliverable.overrides.get("video", {}):
            inputs.append(JobInput(f"deliverables.{index}.overrides.video.upscale_model", model, MAX_MODEL_BYTES))
        else:
            inputs.append(JobInput(f"preset {deliverable.preset}: video.upscale_model", model,
                                   MAX_MODEL_BYTES, confined=False))
    return inputs


def _env_list(name: str, separator: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(separator) if part.strip()]


@dataclass(frozen=True)
class JobAccess:
    """What one job may read and import."""

    read_roots: tuple[Path, ...]
    """Folders (symbolic links followed) whose files the job may read."""
    job_file: Path | None = None
    """The job file, which must not be one of its own inputs; None for a job made from clips."""
    graphics_modules: frozenset[str] = field(default_factory=frozenset)
    """Modules (or packages) a graphics overlay's callable may come from."""

    @classmethod
    def configured(cls, roots: Iterable[Path], job_file: Path | None = None,
                   extra_roots: Iterable[Path] = (), graphics_modules: Iterable[str] = ()) -> JobAccess:
        """``roots`` plus the operator's settings (environment) plus ``extra_roots`` and
        ``graphics_modules`` (command-line options)."""
        every_root = [*roots, *(Path(part).expanduser() for part in _env_list(READ_ROOTS_ENV_VAR, os.pathsep)),
                      *extra_roots]
        modules = {*_env_list(GRAPHICS_MODULES_ENV_VAR, ","), *graphics_modules}
        return cls(
            read_roots=tuple(dict.fromkeys(Path(os.path.realpath(root)) for root in every_root)),
            job_file=Path(os.path.realpath(job_file)) if job_file is not None else None,
            graphics_modules=frozenset(modules),
        )

    @classmethod
    def for_job_file(cls, job_file: Path, extra_roots: Iterable[Path] = (),
                     graphics_modules: Iterable[str] = ()) -> JobAccess:
        """A job file's access: its own folder, plus what the operator allows."""
        return cls.configured([Path(os.path.realpath(job_file)).parent], job_file, extra_roots, graphics_modules)

    def may_read(self, path: Path) -> bool:
        """True when ``path`` (absolute, links followed) lies inside a read root."""
        return any(path == root or path.is_relative_to(root) for root in self.read_roots)

    def may_import(self, module: str) -> bool:
        """True when ``module`` is an allowed module or inside an allowed package."""
        return any(module == allowed or module.startswith(allowed + ".") for allowed in self.graphics_modules)


def check_job_access(job: Job, access: JobAccess, presets: dict[str, Preset], origin: str = "job") -> None:
    """Check everything a job would read or import against ``access``, before anything does.

    Raises:
        JobError: a deliverable's preset is unknown or its overrides invalid (an encoder option off
            the allow-list), a graphics callable from a module not allowed, an input outside the
            read roots, or the job file named as its own input; one line per problem, each naming
            the field.
        MediaError: an input is missing, not a regular file, unreadable, a link loop, too large,
            empty or has a non-UTF-8 name; names the file and the field.
    """
    problems = []
    for index in range(len(job.deliverables)):
        try:
            resolve_preset(job, index, presets)  # an unknown preset, a bad override or encoder option
        except JobError as error:
            problems.append(str(error))
    for number, overlay in enumerate(job.overlays):
        if overlay.callable is None:
            continue
        module = overlay.callable.partition(":")[0]
        if not access.may_import(module):
            allowed = ", ".join(sorted(access.graphics_modules)) or "none"
            problems.append(
                f"overlays.{number}.callable: module {module!r} is not allowed to run here (allowed: "
                f"{allowed}); the operator allows modules with ${GRAPHICS_MODULES_ENV_VAR} or --allow-graphics"
            )
    inputs = job_inputs_by_field(job, presets)
    for each in inputs:
        if each.confined and not access.may_read(each.path):
            roots = ", ".join(display_path(root) for root in access.read_roots)
            problems.append(
                f"{each.field}: {display_path(each.path)} is outside the folders this job may read ({roots}); "
                f"the operator adds folders with ${READ_ROOTS_ENV_VAR} or --allow-read"
            )
        elif access.job_file is not None and each.path == access.job_file:
            problems.append(f"{each.field}: names the job file itself, not a media file")
    if problems:
        raise JobError(f"{origin}:\n" + "\n".join(problems))
    for each in inputs:
        check_input_file(each.path, each.field, each.max_bytes)
