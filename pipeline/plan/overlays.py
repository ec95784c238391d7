"""Overlay planning: the job's text, captions, logos, timecode and motion graphics laid out inside a
deliverable's safe area, as ASS scripts for libass and ffmpeg layers.

This module picks the overlays a deliverable gets and puts the parts together:
:mod:`~pipeline.plan.overlay_timing` (when each shows), :mod:`~pipeline.plan.overlay_layout`
(fonts, wrapping, the safe box), :mod:`~pipeline.plan.ass_script` (text as libass events) and
:mod:`~pipeline.plan.overlay_layers` (the plan and its ffmpeg layers). The planner uses it through
the names in ``__all__``.

**Fonts** are files: each deliverable's fonts are linked into one folder that libass reads as its
only fonts (``fontsdir``). Reading font metrics (a file read, cached) is the only I/O; the planner
stays repeatable.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

from pipeline.errors import JobError
from pipeline.model.job import Job
from pipeline.model.overlay_schema import DEFAULT_STYLES, Overlay, Style
from pipeline.model.presets import AiLabel, Insets
from pipeline.plan.ass_script import ass_script_text, ass_style, text_events
from pipeline.plan.conform import PictureFormat
from pipeline.plan.fonts import default_font_path
from pipeline.plan.overlay_layers import OVERLAY_FILTERS, LogoInputs, OverlayPlan, PixelLayer, apply_overlays
from pipeline.plan.overlay_layout import SafeBox, font_face
from pipeline.plan.overlay_timing import TimedOverlay, time_overlay, timed_captions
from pipeline.plan.workfiles import FontLink, GraphicsRender, PreparedFile, TextFile
from pipeline.timeline.sequence import Timeline

__all__ = ["OVERLAY_FILTERS", "LogoInputs", "OverlayPlan", "apply_overlays", "overlays_for", "plan_overlays",
           "timed_captions"]


def plan_overlays(job: Job, label: str, safe_insets: Insets, picture: PictureFormat, timeline: Timeline,
                  sequence_rate: Fraction, work_dir: Path, ai_label: AiLabel = AiLabel()) -> OverlayPlan | None:
    """Lay out every overlay of ``job`` that applies to deliverable ``label``.

    Args:
        job: The job; ``job.overlays`` in layer order.
        label: The deliverable's name.
        safe_insets: Insets text must respect (``preset.safe_area.text``).
        picture: The deliverable's raster and rate.
        timeline: The deliverable's whole timeline (not a window of it).
        sequence_rate: The rate fade lengths and frame counts in the job are given at.
        work_dir: A folder of the deliverable's own for scripts, font links and graphics.
        ai_label: The deliverable's wording and place for ``ai_label`` overlays (its preset's); with
            ``provenance.disclose`` and no ``ai_label`` in the job, one is added on top.

    Returns:
        The layers, or None when no overlay applies.

    Raises:
        JobError: an overlay starts outside the sequence, a caption file is broken, a font cannot
            be read or lacks characters of its text, or a graphics callable cannot be found.
    """
    chosen = [(number, _with_label_defaults(overlay, ai_label)) for number, overlay in overlays_for(job, label)]
    if not chosen:
        return None
    box = SafeBox.of(safe_insets, picture.width, picture.height)
    fonts_dir = work_dir / "fonts"
    default_font = default_font_path()
    font_paths: dict[Path, None] = {default_font: None}
    layers: list[tuple[str, object]] = []
    files: list[PreparedFile] = []
    events: list[str] = []
    styles: list[str] = []

    def flush_script() -> None:
        if events:
            script = work_dir / f"layer{len(layers):02d}.ass"
            files.append(TextFile(script, ass_script_text(picture, styles, events)))
            layers.append(("ass", script))
            events.clear()
            styles.clear()

    for number, overlay in chosen:
        timed = time_overlay(overlay, number, job, timeline, sequence_rate)
        style = job.styles[overlay.style] if overlay.style else DEFAULT_STYLES.get(overlay.kind, Style())
        if overlay.kind in ("logo", "graphics", "timecode"):
            flush_script()
            source = overlay.image
            if overlay.kind == "graphics":
                source = work_dir / f"graphics{number:02d}.mov"
                files.append(_graphics_render(timed, picture, source))
            layers.append((overlay.kind, PixelLayer(timed, picture, box, source, style, sequence_rate,
                                                     timed.start_frame)))
            continue
        font = style.font or default_font
        font_paths[font] = None
        faces = (font_face(font), *(font_face(path) for path in font_paths if path != font))
        style_name = f"o{number}"
        styles.append(ass_style(style_name, style, faces[0], picture))
        events += text_events(timed, style, style_name, faces, picture, box, sequence_rate, timeline)
    flush_script()
    files += [FontLink(fonts_dir / f"{index:02d}{path.suffix.lower()}", path) for index, path in enumerate(font_paths)]
    return OverlayPlan(tuple(layers), tuple(files), work_dir, picture.frame_rate)


def overlays_for(job: Job, label: str) -> list[tuple[int, Overlay]]:
    """The overlays deliverable ``label`` gets, numbered as in the job, bottom layer first; with
    ``provenance.disclose`` and no ``ai_label`` in the job, an ``ai_label`` on top."""
    overlays = list(job.overlays)
    if job.provenance.disclose and not any(overlay.kind == "ai_label" for overlay in overlays):
        overlays.append(Overlay(kind="ai_label"))
    return [(number, overlay) for number, overlay in enumerate(overlays)
            if overlay.deliverables is None or label in overlay.deliverables]


def _with_label_defaults(overlay: Overlay, ai_label: AiLabel) -> Overlay:
    """An ``ai_label`` overlay with the deliverable's wording and place where the job gives none."""
    if overlay.kind != "ai_label":
        return overlay
    return overlay.model_copy(update={"text": overlay.text or ai_label.text, "anchor": overlay.anchor or ai_label.anchor})


def _graphics_render(timed: TimedOverlay, picture: PictureFormat, path: Path) -> GraphicsRender:
    field = f"overlays.{timed.number}.callable"
    module = timed.overlay.callable.partition(":")[0]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise JobError(f"{field}: no module {module!r} on the Python path")
    frame_count = timed.end_frame - timed.start_frame
    return GraphicsRender(path, timed.overlay.callable, picture.width, picture.height, picture.frame_rate,
                          frame_count, 0, frame_count, field)
