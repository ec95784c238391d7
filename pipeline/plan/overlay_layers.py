"""Overlay layers in ffmpeg: a deliverable's planned layers and how each render composites them.

Text goes through libass (``subtitles``, fonts from the plan's own folder: no fontconfig lookup
and no system font); logos, rendered motion graphics and burnt-in timecode are ``overlay`` and
``drawtext`` layers placed at their anchor of the safe area and enabled on their frames only.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import ffmpeg

from pipeline.model.overlay_schema import Style
from pipeline.model.timebase import format_rate, frames_to_timecode
from pipeline.plan.conform import PictureFormat
from pipeline.plan.fonts import default_font_path
from pipeline.plan.overlay_layout import DEFAULT_ANCHORS, SafeBox
from pipeline.plan.overlay_timing import TimedOverlay
from pipeline.plan.workfiles import GraphicsRender, PreparedFile


OVERLAY_FILTERS = ("subtitles", "drawtext", "overlay", "colorchannelmixer", "fade", "scale", "format",
                   "setpts")


@dataclass(frozen=True)
class OverlayPlan:
    """A deliverable's layers, resolved to frames and pixels; applied to each render of it."""

    layers: tuple[tuple[str, object], ...]
    """(kind of layer, its data) bottom first: ``ass`` (path of the script), ``logo``, ``graphics``
    or ``timecode`` (a :class:`PixelLayer`)."""
    files: tuple[PreparedFile, ...]
    """Scripts, font links and motion graphics to make before ffmpeg starts."""
    work_dir: Path
    """The folder of this plan's files."""
    frame_rate: Fraction
    """The deliverable's frame rate."""

    @property
    def fonts_dir(self) -> Path:
        """The folder libass reads its fonts from."""
        return self.work_dir / "fonts"

    def for_window(self, number: int, first_frame: int, frame_count: int) -> OverlayPlan:
        """The plan for window ``number`` of a long sequence, sequence frames ``first_frame`` to
        ``first_frame + frame_count - 1``.

        Its files live in a folder of the window's own, so windows rendered side by side never
        overwrite or remove one another's, and each motion graphic is rendered only for the frames
        the window shows: across the windows every frame of it is rendered once, as in one render.
        """
        work_dir = self.work_dir.with_name(f"{self.work_dir.name}.w{number:03d}")
        end_frame = first_frame + frame_count

        def moved(path: Path) -> Path:
            return work_dir / path.relative_to(self.work_dir)

        shown: dict[Path, tuple[int, int]] = {}
        layers: list[tuple[str, object]] = []
        for kind, data in self.layers:
            if kind == "ass":
                layers.append((kind, moved(data)))
            elif kind == "graphics":
                start, end = max(data.timed.start_frame, first_frame), min(data.timed.end_frame, end_frame)
                if start < end:
                    shown[data.source] = (start - data.timed.start_frame, end - data.timed.start_frame)
                    layers.append((kind, replace(data, source=moved(data.source), source_start_frame=start)))
            else:
                layers.append((kind, data))
        files: list[PreparedFile] = []
        for item in self.files:
            if isinstance(item, GraphicsRender):
                if item.path in shown:
                    first, end = shown[item.path]
                    files.append(replace(item, path=moved(item.path), first_frame=first, end_frame=end))
            else:
                files.append(replace(item, path=moved(item.path)))
        return replace(self, layers=tuple(layers), files=tuple(files), work_dir=work_dir)


@dataclass(frozen=True)
class PixelLayer:
    """A logo, motion graphic or timecode layer: composited by ffmpeg rather than drawn by libass."""

    timed: TimedOverlay
    """The overlay and its frames."""
    picture: PictureFormat
    """The deliverable's raster and rate."""
    box: SafeBox
    """The safe area it is anchored in."""
    source: Path | None
    """The logo's still or the motion graphic's render; None for timecode."""
    style: Style | None
    """The text style (timecode's font, size and colours)."""
    sequence_rate: Fraction
    """The rate the job's fade lengths are given at."""
    source_start_frame: int
    """Sequence frame showing the source's first frame (a motion graphic's file may start late)."""


class LogoInputs:
    """The logo stills of one ffmpeg run, each opened once and split into one branch per use.

    ffmpeg-python merges inputs (and filters) with equal arguments into one node, so one logo on two
    deliverables of a run, or twice on one, would otherwise be one scaled stream feeding two
    overlays, which ffmpeg refuses without a split.
    """

    def __init__(self, plans: list[OverlayPlan | None]):
        """Count the logo layers of every plan of the run (None: a deliverable without overlays)."""
        uses = Counter(
            _logo_input(data) for plan in plans if plan is not None for kind, data in plan.layers if kind == "logo"
        )
        self._branches = {}
        for (path, options), count in uses.items():
            still = ffmpeg.input(path, **dict(options)).video
            if count == 1:
                self._branches[(path, options)] = iter([still])
            else:
                node = still.filter_multi_output("split", count)
                self._branches[(path, options)] = iter([node[index] for index in range(count)])

    def take(self, layer: PixelLayer):
        """The next unused branch of ``layer``'s still."""
        return next(self._branches[_logo_input(layer)])


def _logo_input(layer: PixelLayer) -> tuple[str, tuple[tuple[str, object], ...]]:
    """The file and input options of a logo layer: its still looped at the deliverable's rate until
    the layer's last frame."""
    rate = layer.picture.frame_rate
    end_s = Fraction(layer.timed.end_frame) / rate
    return str(layer.source), (("loop", 1), ("framerate", format_rate(rate)), ("t", f"{float(end_s):.6f}"))


def apply_overlays(video, plan: OverlayPlan | None, logos: LogoInputs, start_frame: int = 0):
    """``video`` (a render of the deliverable from sequence frame ``start_frame``) with the layers on;
    ``logos`` holds the logo inputs of every deliverable rendered by the same ffmpeg run."""
    if plan is None:
        return video
    shift = Fraction(start_frame) / plan.frame_rate
    if shift:
        # Layers are timed in sequence time; a window of a long sequence starts later.
        video = video.filter("setpts", f"PTS+({shift.numerator}/{shift.denominator})/TB")
    for kind, data in plan.layers:
        if kind == "ass":
            video = video.filter("subtitles", filename=str(data), fontsdir=str(plan.fonts_dir))
        elif kind == "timecode":
            video = _timecode_layer(video, data, start_frame)
        else:
            video = _image_layer(video, kind, data, logos)
    if shift:
        video = video.filter("setpts", f"PTS-({shift.numerator}/{shift.denominator})/TB")
    return video


def _enable(timed: TimedOverlay, rate: Fraction) -> str:
    """Frames ``start`` to ``end - 1`` by their time, with half a frame to spare on each side."""
    start = float((Fraction(timed.start_frame) - Fraction(1, 2)) / rate)
    end = float((Fraction(timed.end_frame) - Fraction(1, 2)) / rate)
    return f"gte(t,{start:.6f})*lt(t,{end:.6f})"


def _xy(anchor: str, box: SafeBox, width_expr: str, height_expr: str) -> tuple[str, str]:
    """Position expressions of a layer ``width_expr`` x ``height_expr`` at ``anchor``. ffmpeg moves a
    layer on subsampled chroma to even positions, down and left, so the box's left and top edges
    are rounded up to even numbers, and positions from the right and bottom round inwards anyway."""
    x, y = box.anchor_point(anchor)
    x = 2 * math.ceil(x / 2) if anchor.endswith("left") else x
    y = 2 * math.ceil(y / 2) if anchor.startswith("top") else y
    horizontal = anchor.rpartition("_")[2] if anchor != "center" else "center"
    vertical = anchor.partition("_")[0] if anchor != "center" else "middle"
    x_expr = {"left": f"{x:.1f}", "center": f"{x:.1f}-{width_expr}/2", "right": f"{x:.1f}-{width_expr}"}[horizontal]
    y_expr = {"top": f"{y:.1f}", "middle": f"{y:.1f}-{height_expr}/2", "bottom": f"{y:.1f}-{height_expr}"}[vertical]
    return x_expr, y_expr


def _image_layer(video, kind: str, layer: PixelLayer, logos: LogoInputs):
    """A logo (a still image, looped; its branch taken from ``logos``) or a rendered motion graphic,
    composited at its anchor."""
    timed, picture = layer.timed, layer.picture
    rate = picture.frame_rate
    overlay = timed.overlay
    anchor = overlay.anchor or DEFAULT_ANCHORS[kind]
    end_s = Fraction(timed.end_frame) / rate
    if kind == "logo":
        height = max(2, round(overlay.size * picture.height))
        stream = logos.take(layer).filter("format", "rgba").filter("scale", -1, height)
    else:
        # The file's first frame goes on at its sequence frame; before it the picture passes untouched.
        offset = Fraction(layer.source_start_frame) / rate
        stream = ffmpeg.input(str(layer.source)).video.filter("format", "yuva444p").filter(
            "setpts", f"PTS-STARTPTS+({offset.numerator}/{offset.denominator})/TB"
        )
    if overlay.opacity < 1:
        stream = stream.filter("format", "rgba").filter("colorchannelmixer", aa=f"{overlay.opacity:.4f}")
    if overlay.fade_in_frames:
        stream = stream.filter("fade", type="in", alpha=1, start_time=f"{float(Fraction(timed.start_frame) / rate):.6f}",
                               duration=f"{float(Fraction(overlay.fade_in_frames) / layer.sequence_rate):.6f}")
    if overlay.fade_out_frames:
        fade_s = Fraction(overlay.fade_out_frames) / layer.sequence_rate
        stream = stream.filter("fade", type="out", alpha=1, start_time=f"{float(end_s - fade_s):.6f}",
                               duration=f"{float(fade_s):.6f}")
    x, y = _xy(anchor, layer.box, "overlay_w", "overlay_h")
    return ffmpeg.filter([video, stream], "overlay", x=x, y=y, eof_action="pass",
                         enable=_enable(timed, rate))


def _timecode_layer(video, layer: PixelLayer, start_frame: int):
    """Record timecode of each frame from sequence frame ``start_frame`` (where this render starts),
    drawn inside the safe area."""
    timed, picture, style = layer.timed, layer.picture, layer.style
    anchor = timed.overlay.anchor or DEFAULT_ANCHORS["timecode"]
    x, y = _xy(anchor, layer.box, "text_w", "text_h")
    size = max(8, round(style.size * picture.height))
    colour = style.colour[1:7]
    opacity = int(style.colour[7:9], 16) / 255 if len(style.colour) == 9 else 1.0
    options = {}
    if style.box:
        box_opacity = int(style.box_colour[7:9], 16) / 255 if len(style.box_colour) == 9 else 1.0
        options = {"box": 1, "boxcolor": f"0x{style.box_colour[1:7]}@{box_opacity:.3f}",
                   "boxborderw": max(2, size // 6)}
        pad = max(2, size // 6)
        x, y = f"{x}+{pad}" if "left" in anchor else f"{x}-{pad}" if "right" in anchor else x, \
            f"{y}+{pad}" if anchor.startswith("top") else f"{y}-{pad}" if anchor.startswith("bottom") else y
    return video.filter(
        "drawtext",
        fontfile=str(style.font or default_font_path()),
        timecode=frames_to_timecode(start_frame, picture.frame_rate),
        rate=format_rate(picture.frame_rate),
        fontsize=size,
        fontcolor=f"0x{colour}@{opacity:.3f}",
        x=x,
        y=y,
        enable=_enable(timed, picture.frame_rate),
        **options,
    )
