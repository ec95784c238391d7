"""The job file's overlays and text styles: what to burn into the picture, when, where and how it looks.

Times count from the start of the sequence, or from a shot's first frame when the overlay names a
``shot``; sizes are shares of the frame height, so one job lays out alike in 16:9 and 9:16. The
planner (``pipeline.plan.overlays``) turns these into ASS events and ffmpeg layers per deliverable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.model.presets import TimeValue, Anchor
from pipeline.inputs import resolve_path

HEX_COLOUR = r"^#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$"
"""``#RRGGBB``, or ``#RRGGBBAA`` with an opacity byte (``FF`` opaque)."""

OverlayKind = Literal[
    "title", "lower_third", "end_card", "captions", "logo", "timecode", "watermark", "graphics", "ai_label"
]
TEXT_KINDS = frozenset({"title", "lower_third", "end_card", "watermark"})
"""Kinds whose ``text`` is required."""
MAX_TEXT_CHARS = 2000
"""Longest title, subtext or caption cue: more than a frame can show legibly at the smallest size."""
MAX_OVERLAYS = 100
MAX_STYLES = 100
MAX_CUES = 2000
"""Inline cues of one captions overlay; a longer programme belongs in a caption file."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Style(_Model):
    """How text looks: a reusable, named set of font, size and colours."""

    font: Path | None = None
    """Font file (.ttf, .otf); relative to the job file. None: the bundled Roboto."""
    size: float = Field(default=0.06, gt=0, le=0.5)
    """Line height as a share of the frame height (0.06 is 65 px at 1080 high)."""
    colour: str = Field(default="#FFFFFF", pattern=HEX_COLOUR)
    """Text colour."""
    bold: bool = False
    """Bold (a bold face of the font's family if it is in the same folder, else synthesised)."""
    italic: bool = False
    """Italic."""
    outline: float = Field(default=0.0, ge=0, le=0.05)
    """Outline width as a share of the frame height; 0 for none."""
    outline_colour: str = Field(default="#000000", pattern=HEX_COLOUR)
    """Outline colour."""
    shadow: float = Field(default=0.0, ge=0, le=0.05)
    """Drop-shadow offset as a share of the frame height; 0 for none."""
    shadow_colour: str = Field(default="#00000080", pattern=HEX_COLOUR)
    """Shadow colour."""
    box: bool = False
    """An opaque box behind each line (captions on busy pictures)."""
    box_colour: str = Field(default="#000000A0", pattern=HEX_COLOUR)
    """Colour of the box behind each line."""
    bar_colour: str | None = Field(default=None, pattern=HEX_COLOUR)
    """Lower third: a bar behind the name and role. End card: the background. None: no bar."""

    @field_validator("font")
    @classmethod
    def _font_type(cls, font: Path | None) -> Path | None:
        if font is not None and font.suffix.lower() not in (".ttf", ".otf", ".ttc"):
            raise ValueError(f"font {str(font)!r} is not a .ttf, .otf or .ttc file")
        return font


DEFAULT_STYLES: dict[str, Style] = {
    "title": Style(size=0.08, outline=0.002, shadow=0.003),
    "lower_third": Style(size=0.055, bar_colour="#000000B0"),
    "end_card": Style(size=0.08, bar_colour="#000000"),
    "captions": Style(size=0.05, box=True),
    "timecode": Style(size=0.045, box=True),
    "watermark": Style(size=0.16, colour="#FFFFFF50", bold=True),
    "ai_label": Style(size=0.035, box=True, box_colour="#00000090"),
}
"""The style each kind uses when an overlay names none."""


class InlineCue(_Model):
    """One caption written in the job file."""

    start: TimeValue
    """When the caption appears, from the overlay's start."""
    end: TimeValue
    """When it goes (exclusive)."""
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    """Caption text; a newline breaks the line."""


class Overlay(_Model):
    """A layer burnt into the picture: text, captions, a logo, timecode or a motion graphic."""

    kind: OverlayKind
    """What the layer is."""
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    """Title, lower-third name, end-card headline or watermark, shown exactly as typed; for an
    ``ai_label``, other wording than the deliverable's preset gives."""
    subtext: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    """Lower-third role, or the end card's call to action."""
    style: str | None = None
    """A style from the job's ``styles``; None: the kind's default style."""
    shot: int | str | None = None
    """Time from this shot's first frame (index from 0, or the shot's ``id``) instead of the sequence's."""
    start: TimeValue = 0
    """When the layer appears."""
    end: TimeValue | None = None
    """When it goes (exclusive); None: at the end of the shot, or of the sequence."""
    duration: TimeValue | None = None
    """How long it stays, instead of ``end``."""
    anchor: Anchor | None = None
    """Where in the deliverable's safe area it sits; None: the kind's usual place."""
    fade_in_frames: int = Field(default=0, ge=0)
    """Fade-in length, in frames at the sequence rate."""
    fade_out_frames: int = Field(default=0, ge=0)
    """Fade-out length, in frames at the sequence rate."""
    slide_in: Literal["left", "right", "up", "down"] | None = None
    """Text slides in this way (by a tenth of the frame height, clipped to the safe area) over the
    fade-in, or half a second without one; None: no slide."""
    captions: Path | None = None
    """Captions file (.srt, .vtt, .ass or .ssa); relative to the job file. Its styling is not used."""
    cues: list[InlineCue] | None = Field(default=None, max_length=MAX_CUES)
    """Captions written in the job file, instead of a file."""
    image: Path | None = None
    """Logo image (PNG with alpha); relative to the job file."""
    size: float = Field(default=0.1, gt=0, le=1)
    """Logo height as a share of the frame height."""
    opacity: float = Field(default=1.0, ge=0, le=1)
    """Logo or motion-graphic opacity."""
    callable: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """Motion graphic: ``package.module:function`` returning a MoviePy clip with a mask."""
    deliverables: list[str] | None = None
    """Deliverables (by name) that get this layer; None: every deliverable."""

    @model_validator(mode="after")
    def _fields_for_kind(self) -> Overlay:
        kind = self.kind
        if kind in TEXT_KINDS and not (self.text and self.text.strip()):
            raise ValueError(f"a {kind} overlay needs 'text'")
        if self.subtext is not None and kind not in ("lower_third", "end_card"):
            raise ValueError("'subtext' is for lower_third and end_card overlays")
        if kind == "captions":
            if (self.captions is None) == (self.cues is None):
                raise ValueError("a captions overlay needs either 'captions' (a file) or 'cues', not both")
        elif self.captions is not None or self.cues is not None:
            raise ValueError("'captions' and 'cues' are for captions overlays")
        if (kind == "logo") != (self.image is not None):
            raise ValueError("a logo overlay needs 'image', and only a logo has one")
        if (kind == "graphics") != (self.callable is not None):
            raise ValueError("a graphics overlay needs 'callable', and only a graphics overlay has one")
        if self.end is not None and self.duration is not None:
            raise ValueError("give 'end' or 'duration', not both")
        if kind not in TEXT_KINDS | {"ai_label"} and self.text is not None:
            raise ValueError(f"a {kind} overlay has no 'text'")
        if kind in ("logo", "graphics") and self.style is not None:
            raise ValueError(f"a {kind} overlay has no 'style'")
        return self


def check_references(overlays: list[Overlay], styles: dict[str, Style], shot_ids: list[str | None],
                     deliverable_labels: list[str]) -> None:
    """Every style, shot and deliverable an overlay names exists.

    Raises:
        ValueError: the message names the overlay field, e.g. ``overlays.2.style``.
    """
    problems = []
    for number, overlay in enumerate(overlays):
        where = f"overlays.{number}"
        if overlay.style is not None and overlay.style not in styles:
            known = ", ".join(sorted(styles)) or "none defined"
            problems.append(f"{where}.style: unknown style {overlay.style!r} (styles: {known})")
        if isinstance(overlay.shot, int) and not 0 <= overlay.shot < len(shot_ids):
            problems.append(f"{where}.shot: no shot {overlay.shot}; shots are numbered 0 to {len(shot_ids) - 1}")
        if isinstance(overlay.shot, str) and overlay.shot not in shot_ids:
            problems.append(f"{where}.shot: no shot has id {overlay.shot!r}")
        for label in overlay.deliverables or ():
            if label not in deliverable_labels:
                problems.append(f"{where}.deliverables: no deliverable is called {label!r}")
    if problems:
        raise ValueError("\n".join(problems))


def resolve_overlay_paths(overlays: list[Overlay], styles: dict[str, Style], base_dir: Path,
                          ) -> tuple[list[Overlay], dict[str, Style]]:
    """Relative font, caption and image paths made absolute against the job file's folder.

    Raises:
        ValueError: a named file does not exist; one line per file, naming the field.
    """
    missing = []
    resolved_styles = {}
    for name, style in styles.items():
        if style.font is not None:
            font = resolve_path(base_dir, style.font)
            if not font.is_file():
                missing.append(f"styles.{name}.font: font file {font} not found")
            style = style.model_copy(update={"font": font})
        resolved_styles[name] = style
    resolved = []
    for number, overlay in enumerate(overlays):
        update = {}
        for field in ("captions", "image"):
            value = getattr(overlay, field)
            if value is not None:
                path = resolve_path(base_dir, value)
                if not path.is_file():
                    missing.append(f"overlays.{number}.{field}: file {path} not found")
                update[field] = path
        resolved.append(overlay.model_copy(update=update) if update else overlay)
    if missing:
        raise ValueError("\n".join(missing))
    return resolved, resolved_styles
