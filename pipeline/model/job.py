"""The job file: a versioned YAML schema validated into typed models.

A job names its shots (sources with optional in/out points), its deliverables (presets with
overrides) and where outputs go. Later capabilities (transitions, overlays, loudness) extend the
schema; version 1 keys keep working.
"""

from __future__ import annotations

import json
import os
import re
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import JobError
from pipeline.model.overlay_schema import (
    Overlay,
    Style,
    check_references,
    resolve_overlay_paths,
    MAX_OVERLAYS,
    MAX_STYLES,
)
from pipeline.model.presets import FrameRate, TimeValue, format_validation_error
from pipeline.model.timebase import parse_time
from pipeline.inputs import display_path, resolve_path
from pipeline.model.job_file import read_job_document

JOB_SCHEMA_VERSION = 1
NAMING_FIELDS = frozenset({"job", "preset", "deliverable"})
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
"""Job and deliverable names, and output file names made from them: no hidden files, no separators."""
MAX_NAME_CHARS = 100
"""Longest job, deliverable or shot name; two of them and a template stay under the file system's
255-byte name limit."""
NAMING_LITERAL = re.compile(r"^[A-Za-z0-9._-]*$")
MAX_OUTPUT_STEM_CHARS = 200
"""Longest output file name, without extension (a name ends up with ``.qc.json`` and more added)."""
MAX_SHOTS = 1000
MAX_DELIVERABLES = 50
MAX_CUTDOWNS = 20
MAX_VALIDATED_JOB_BYTES = 400_000
"""A job as validated, written as JSON, stays under Prefect's 512 KB limit on flow parameters."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


TRANSITION_ALIASES: dict[str, str] = {
    "dissolve": "fade",  # ffmpeg's own "dissolve" is a random-pixel dither, not an editor's dissolve
    "dip_to_black": "fadeblack",
    "dip_to_white": "fadewhite",
    **{f"wipe_{d}": f"wipe{d}" for d in ("left", "right", "up", "down")},
    # An editor's slide moves the incoming shot over the outgoing one (xfade's cover); a push moves
    # both (xfade's slide).
    **{f"slide_{d}": f"cover{d}" for d in ("left", "right", "up", "down")},
    **{f"push_{d}": f"slide{d}" for d in ("left", "right", "up", "down")},
    "push": "slideleft",
    "zoom": "zoomin",
    "circle_open": "circleopen",
    "circle_close": "circleclose",
}
"""Editor-facing transition names and the xfade transition each renders with."""

XFADE_TRANSITIONS = frozenset({
    "fade", "wipeleft", "wiperight", "wipeup", "wipedown", "slideleft", "slideright", "slideup",
    "slidedown", "circlecrop", "rectcrop", "distance", "fadeblack", "fadewhite", "radial",
    "smoothleft", "smoothright", "smoothup", "smoothdown", "circleopen", "circleclose", "vertopen",
    "vertclose", "horzopen", "horzclose", "dissolve", "pixelize", "diagtl", "diagtr", "diagbl",
    "diagbr", "hlslice", "hrslice", "vuslice", "vdslice", "hblur", "fadegrays", "wipetl", "wipetr",
    "wipebl", "wipebr", "squeezeh", "squeezev", "zoomin", "fadefast", "fadeslow", "hlwind",
    "hrwind", "vuwind", "vdwind", "coverleft", "coverright", "coverup", "coverdown", "revealleft",
    "revealright", "revealup", "revealdown",
})
"""ffmpeg's xfade catalogue, usable by name as well."""

COLOR_PATTERN = r"^(#[0-9A-Fa-f]{6}|[a-z]+)$"


class Transition(_Model):
    """How one shot hands over to the next."""

    type: str = "cut"
    """``cut``, an editor's name (``dissolve``, ``dip_to_black``, ``wipe_left``, ``push``...) or any
    xfade transition name (``radial``, ``pixelize``...)."""
    frames: int = Field(default=0, ge=0)
    """Length of the overlap, in frames at the sequence rate; 0 for a cut."""
    easing: Literal["linear", "smooth"] = "linear"
    """``smooth`` eases a dissolve in and out (smoothstep); other transitions are linear."""
    audio: Literal["crossfade", "cut"] = "crossfade"
    """Equal-power crossfade of the sound under the picture transition, or a hard cut at its middle."""

    @field_validator("type")
    @classmethod
    def _known_type(cls, name: str) -> str:
        if name != "cut" and name not in TRANSITION_ALIASES and name not in XFADE_TRANSITIONS:
            raise ValueError(
                f"unknown transition {name!r}; use cut, {', '.join(TRANSITION_ALIASES)} "
                "or an ffmpeg xfade name"
            )
        return name

    @model_validator(mode="after")
    def _consistent(self) -> Transition:
        if (self.type == "cut") != (self.frames == 0):
            raise ValueError("a cut has 0 frames and any other transition at least 1")
        if self.easing == "smooth" and self.type != "dissolve":
            raise ValueError("smooth easing is available for dissolve only")
        return self

    @property
    def xfade_name(self) -> str | None:
        """The xfade transition that renders this one; None for a cut."""
        if self.type == "cut":
            return None
        return TRANSITION_ALIASES.get(self.type, self.type)


class Shot(_Model):
    """One source clip, optionally trimmed."""

    source: Path
    """Media file; a relative path is relative to the job file's folder."""
    in_point: TimeValue | None = Field(default=None, alias="in")
    """Where the shot starts in the source; None for the first frame."""
    out_point: TimeValue | None = Field(default=None, alias="out")
    """Where the shot ends in the source (exclusive); None for the end of the source."""
    transition: Transition = Field(default_factory=Transition)
    """How this shot hands over to the next one (ignored on the last shot)."""
    audio_offset_frames: int = 0
    """Split edit at the join into the next shot, in frames at the sequence rate: positive is an
    L-cut (this shot's sound runs on under the next picture), negative a J-cut (the next shot's sound
    starts early). Needs that much source material beyond the out (or before the next in) point."""
    fill: str | None = Field(default=None, pattern=COLOR_PATTERN)
    """Overrides the sequence's ``fill`` for this shot."""
    id: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    """A name overlays can time themselves from (``shot: ID``); None: refer to the shot by index."""

    @model_validator(mode="after")
    def _in_before_out(self) -> Shot:
        if _is_seconds(self.in_point) and _is_seconds(self.out_point):
            if parse_time(self.in_point, 1) >= parse_time(self.out_point, 1):
                raise ValueError(f"in point {self.in_point} is not before out point {self.out_point}")
        return self


def _is_seconds(value: TimeValue | None) -> bool:
    return isinstance(value, (int, float)) or (
        isinstance(value, str) and not value.endswith("f") and ":" not in value and ";" not in value
    )


class Deliverable(_Model):
    """One output file made from a preset."""

    preset: str
    """Preset name, e.g. ``web-h264-1080p``."""
    name: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=MAX_NAME_CHARS)
    """Distinguishes two deliverables of the same preset in file names; defaults to the preset name."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """Preset fields to change for this job, e.g. ``{video: {fit: crop}}``."""
    duration_s: float | None = Field(default=None, gt=0)
    """Make a cut-down of this many seconds (to the frame) instead of the whole sequence."""
    cutdowns: list[float] = Field(default_factory=list, max_length=MAX_CUTDOWNS)
    """Also make a cut-down of each of these many seconds, named ``{name}-{seconds}s``."""

    @field_validator("cutdowns")
    @classmethod
    def _positive_lengths(cls, lengths: list[float]) -> list[float]:
        if any(length <= 0 for length in lengths):
            raise ValueError("cut-down lengths must be positive seconds")
        return lengths

    def expanded(self) -> list[Deliverable]:
        """This deliverable and one cut-down deliverable per entry of :attr:`cutdowns`."""
        whole = self.model_copy(update={"cutdowns": []})
        return [whole] + [
            whole.model_copy(update={"duration_s": length, "name": f"{self.label}-{length:g}s"})
            for length in self.cutdowns
        ]

    @property
    def label(self) -> str:
        """The deliverable's name in file names and reports."""
        return self.name or self.preset


class Output(_Model):
    """Where outputs go and what they are called."""

    dir: Path | None = None
    """Output folder, relative to the job file; the CLI's ``--out`` wins."""
    naming: str = Field(default="{job}_{deliverable}", max_length=MAX_NAME_CHARS)
    """File name template (no extension) with ``{job}``, ``{deliverable}`` and ``{preset}``, and
    between them letters, digits, ``.``, ``_`` and ``-``. With several deliverables it needs
    ``{deliverable}`` (or another field that tells them apart) so their files do not collide."""

    @field_validator("naming")
    @classmethod
    def _known_fields(cls, template: str) -> str:
        if "/" in template or "\\" in template:
            raise ValueError("naming template must not contain path separators")
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as error:
            raise ValueError(f"naming template {template!r} is not a template: {error}") from None
        used = {field for _, field, _, _ in parts if field is not None}
        unknown = used - NAMING_FIELDS
        if unknown:
            raise ValueError(
                f"unknown field(s) {sorted(unknown)} in naming template; use {sorted(NAMING_FIELDS)}"
            )
        if any(spec or conversion for _, field, spec, conversion in parts if field is not None):
            raise ValueError(f"naming template {template!r}: write fields plainly, as {{job}}, without a "
                             "format (':...') or conversion ('!...')")
        if not used:
            raise ValueError(f"naming template {template!r} names no field; use {sorted(NAMING_FIELDS)}")
        if not all(NAMING_LITERAL.match(literal) for literal, _, _, _ in parts):
            raise ValueError(f"naming template {template!r}: between fields use only letters, digits, "
                             "'.', '_' and '-'")
        return template


class SequenceSettings(_Model):
    """Settings of the edit itself, shared by every deliverable."""

    frame_rate: FrameRate | None = None
    """Rate at which transition and split-edit frames are counted; None: the first shot's rate."""
    fill: str = Field(default="black", pattern=COLOR_PATTERN)
    """What surrounds a shot of another aspect ratio when a deliverable fits (pads) it: a colour
    (``black``, ``#202020``) or ``blur`` (a blurred, scaled copy of the shot itself)."""
    shots_per_render: int = Field(default=8, ge=2)
    """Longest run of shots one ffmpeg graph decodes at once. A longer sequence renders in windows
    of about this many shots whose encoded pictures are joined without re-encoding, so memory stays
    bounded however many shots there are."""


class Music(_Model):
    """A music bed mixed under the whole sequence."""

    source: Path
    """Audio or video file with sound; relative to the job file."""
    gain_db: float = Field(default=-12.0, le=12.0)
    """Gain applied to the music, in dB."""
    fade_out_frames: int = Field(default=0, ge=0)
    """Fade the music out over the sequence's last frames (sequence rate)."""


class SyncPolicy(_Model):
    """What a job does with each source's measured sound-to-picture offset."""

    policy: Literal["report", "fix", "fail"] = "report"
    """``report``: record the verdict in the manifest and go on. ``fix``: move an out-of-sync
    source's sound by the measured offset as it is conformed. ``fail``: stop the job on an
    out-of-sync source."""
    standard: Literal["ebu-r37", "itu-bt1359", "atsc-is191"] = "ebu-r37"
    """The limits the verdict is judged against."""


class QcSettings(_Model):
    """What a job does when a deliverable fails a QC check."""

    policy: Literal["fail", "warn"] | None = None
    """``fail``: a failing check fails the job (exit 4, reports still written). ``warn``: it is
    reported and the job succeeds. None: each deliverable's preset decides (broadcast presets fail)."""


class Editorial(_Model):
    """What the editorial exports (OTIO, EDL, FCP XML) point at."""

    conformed_media: bool = False
    """Also render every shot, conformed to the sequence's raster and rate with the handles its
    transitions and split edits use, as edit-ready files in ``<job>_media/``, and point the exports
    at those instead of the original sources."""
    media_preset: str = "prores-lt-1080p"
    """Codec and sound of the conformed media; the raster is the first deliverable's and the frame
    rate the sequence's, so one media frame is one timeline frame."""


class EnhanceOverride(_Model):
    """Enhancement settings for every deliverable of a job; a field left out keeps each preset's."""

    rate_conversion: Literal["duplicate", "blend", "mci", "flow", "speed"] | None = None
    """How shots reach each deliverable's frame rate (see ``VideoSpec.rate_conversion``)."""
    upscale: Literal["lanczos", "spline36", "learned"] | None = None
    """Scaler (see ``VideoSpec.upscale``)."""
    sharpen: float | None = Field(default=None, gt=0, le=2)
    """unsharp luma amount after scaling."""
    destutter: bool | None = None
    """Rebuild frames that repeat their predecessor while the picture moves."""
    model: Path | None = None
    """ONNX super-resolution model for ``upscale: learned``; relative to the job file."""

    def as_video_overrides(self) -> dict[str, Any]:
        """The settings given, as preset ``video`` overrides."""
        values = self.model_dump(exclude_none=True, exclude={"model"})
        if self.model is not None:
            values["upscale_model"] = str(self.model)
        return values


class Provenance(_Model):
    """What the job declares about its material, for content credentials and platform labels."""

    ai_generated: bool = False
    """The sources are generated by a model: every deliverable's C2PA manifest says so with the
    IPTC ``trainedAlgorithmicMedia`` source type (a source whose own credentials say so counts
    without this)."""
    disclose: bool = False
    """Also show each deliverable's visible AI label (its preset's wording and place), as an
    ``ai_label`` overlay over the whole programme, unless the job places one itself."""

    @model_validator(mode="after")
    def _disclose_generated(self) -> Provenance:
        if self.disclose and not self.ai_generated:
            raise ValueError("'disclose' labels generated material: set 'ai_generated: true' too")
        return self


class Slate(_Model):
    """What the slate (clock) of a leader shows; a field left out is not shown. The programme's
    duration is filled in per deliverable."""

    clock_number: str | None = Field(default=None, max_length=80)
    """The clock number the broadcaster registered the spot under, e.g. ``ABC/DEFG123/030``."""
    title: str | None = Field(default=None, max_length=200)
    """Title of the spot or programme."""
    agency: str | None = Field(default=None, max_length=200)
    """Agency that made it."""
    advertiser: str | None = Field(default=None, max_length=200)
    """Advertiser or brand."""
    date: str | None = Field(default=None, max_length=40)
    """Date as the slate shows it, e.g. ``2026-12-05``."""


class Job(_Model):
    """A finishing job: shots joined in order, rendered into every deliverable."""

    version: Literal[1]
    """Job schema version."""
    name: str = Field(pattern=NAME_PATTERN, max_length=MAX_NAME_CHARS)
    """Job name, used in output file names."""
    shots: list[Shot] = Field(min_length=1, max_length=MAX_SHOTS)
    """Shots in playback order, each handing over to the next with its ``transition``."""
    deliverables: list[Deliverable] = Field(min_length=1, max_length=MAX_DELIVERABLES)
    """Output files to make."""
    output: Output = Field(default_factory=Output)
    """Output folder and naming."""
    sequence: SequenceSettings = Field(default_factory=SequenceSettings)
    """Edit settings: transition frame rate and fill."""
    music: Music | None = None
    """Optional music bed."""
    sync: SyncPolicy = Field(default_factory=SyncPolicy)
    """Sound-to-picture sync check of every source with sound."""
    enhance: EnhanceOverride = Field(default_factory=EnhanceOverride)
    """Rate conversion, upscaling and de-stutter for every deliverable, over the presets' settings."""
    editorial: Editorial = Field(default_factory=Editorial)
    """Editorial exports: whether they reference the sources or conformed copies."""
    qc: QcSettings = Field(default_factory=QcSettings)
    """QC of every deliverable: whether a failing check fails the job."""
    overlays: list[Overlay] = Field(default_factory=list, max_length=MAX_OVERLAYS)
    """Text, captions, logos, timecode and motion graphics burnt in, bottom layer first."""
    styles: dict[str, Style] = Field(default_factory=dict, max_length=MAX_STYLES)
    """Named text styles overlays refer to."""
    provenance: Provenance = Field(default_factory=Provenance)
    """AI-generated material: declared in the content credentials, and optionally labelled on screen."""
    slate: Slate = Field(default_factory=Slate)
    """Fields of the slate in the leader of deliverables whose preset has one."""

    @model_validator(mode="after")
    def _distinct_outputs(self) -> Job:
        labels = [each.label for deliverable in self.deliverables for each in deliverable.expanded()]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(
                f"deliverables {repeated} appear more than once; give each a distinct 'name'"
            )
        shot_ids = [shot.id for shot in self.shots if shot.id is not None]
        if len(set(shot_ids)) < len(shot_ids):
            raise ValueError("shot ids must be distinct")
        check_references(self.overlays, self.styles, [shot.id for shot in self.shots], labels)
        self._check_output_names()
        return self

    def _check_output_names(self) -> None:
        """Every deliverable's file name is a plain, visible, distinct name of a sensible length."""
        stems: dict[str, str] = {}
        for deliverable in self.deliverables:
            for each in deliverable.expanded():
                stem = self.output_stem(each)
                if not re.match(NAME_PATTERN, stem) or stem.endswith("."):
                    raise ValueError(f"output.naming: {self.output.naming!r} makes the file name {stem!r} for "
                                     f"{each.label}; a name must start with a letter or digit and not end with '.'")
                if len(stem) > MAX_OUTPUT_STEM_CHARS:
                    raise ValueError(f"output.naming: {self.output.naming!r} makes a file name of {len(stem)} "
                                     f"characters for {each.label}; the limit is {MAX_OUTPUT_STEM_CHARS}")
                if stem in stems:
                    raise ValueError(f"output.naming: {self.output.naming!r} gives {stems[stem]} and {each.label} "
                                     f"the same file name {stem!r}; add {{deliverable}} to the template")
                stems[stem] = each.label

    def output_stem(self, deliverable: Deliverable) -> str:
        """File name of a deliverable's output, without extension."""
        return self.output.naming.format(
            job=self.name, deliverable=deliverable.label, preset=deliverable.preset
        )


def parse_job(data: Any, base_dir: Path, origin: str = "job") -> Job:
    """Validate job data; relative source paths are resolved against ``base_dir``.

    Raises:
        JobError: the message names ``origin`` and each bad field, e.g. ``shots.0.in``.
    """
    if not isinstance(data, dict):
        raise JobError(f"{origin}: expected a mapping with version, name, shots and deliverables")
    try:
        job = Job.model_validate(data)
    except ValidationError as error:
        raise JobError(f"{origin}:\n{format_validation_error(error)}") from error
    size = len(json.dumps(job.model_dump(mode="json")))  # ASCII-escaped, as a non-UTF-8 path may be in it
    if size > MAX_VALIDATED_JOB_BYTES:
        raise JobError(f"{origin}: the job is too large ({size} bytes as validated; the limit is "
                       f"{MAX_VALIDATED_JOB_BYTES}): split it, or put long captions in a caption file")
    shots = [shot.model_copy(update={"source": resolve_path(base_dir, shot.source)}) for shot in job.shots]
    output_dir = resolve_path(base_dir, job.output.dir) if job.output.dir else None
    music = job.music.model_copy(update={"source": resolve_path(base_dir, job.music.source)}) if job.music else None
    model = resolve_path(base_dir, job.enhance.model) if job.enhance.model else None
    try:
        overlays, styles = resolve_overlay_paths(job.overlays, job.styles, base_dir)
    except ValueError as error:
        raise JobError(f"{origin}:\n{error}") from None
    return job.model_copy(
        update={
            "shots": shots,
            "output": job.output.model_copy(update={"dir": output_dir}),
            "music": music,
            "enhance": job.enhance.model_copy(update={"model": model}),
            "overlays": overlays,
            "styles": styles,
        }
    )


def load_job(path: str | Path) -> Job:
    """Read and validate a job file (YAML, or JSON for ``*.json``; see :mod:`pipeline.model.job_file`).

    Raises:
        JobError: the file is missing, too large, is not YAML, or a field is invalid (named in the
            message).
    """
    path = Path(path)
    data = read_job_document(path)
    return parse_job(data, Path(os.path.realpath(path)).parent, origin=display_path(path))


def job_name_for_clip(clip: Path) -> str:
    """A valid job name from a clip's file name: characters other than ASCII letters, digits and
    ``._-`` become ``_`` (job names end up in output file names)."""
    safe = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "._-" else "_" for ch in clip.stem)
    return safe.lstrip("._-") or "clip"


def job_for_clips(sources: list[Path], presets: list[str], name: str, origin: str = "command line") -> Job:
    """A one-shot-per-source job, as ``postprod finish`` makes for loose clips; errors name ``origin``."""
    return parse_job(
        {
            "version": JOB_SCHEMA_VERSION,
            "name": name,
            "shots": [{"source": str(source)} for source in sources],
            "deliverables": [{"preset": preset} for preset in presets],
        },
        Path.cwd(),
        origin=origin,
    )
