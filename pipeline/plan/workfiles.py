"""Files a render needs before ffmpeg starts: generated ASS scripts, links to font files, motion
graphics rendered from Python. The planner describes them here as data;
:func:`pipeline.render.prepare.prepared` makes them for the length of a render.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


@dataclass(frozen=True)
class TextFile:
    """A small generated text file (an ASS script)."""

    path: Path
    """Where it is written."""
    text: str
    """Its content, written as UTF-8."""


@dataclass(frozen=True)
class FontLink:
    """A font file made visible in a folder that libass reads as its only fonts (``fontsdir``)."""

    path: Path
    """The link's path."""
    target: Path
    """The font file."""


@dataclass(frozen=True)
class GraphicsRender:
    """A motion graphic from a Python callable, rendered to ProRes 4444 with alpha before the render."""

    path: Path
    """The .mov file to write."""
    callable: str
    """``package.module:function`` returning a MoviePy clip with a mask."""
    width: int
    """Frame width of the deliverable, in pixels (passed to the callable)."""
    height: int
    """Frame height of the deliverable, in pixels (passed to the callable)."""
    frame_rate: Fraction
    """Frames per second to render at."""
    frame_count: int
    """Frames of the whole graphic: its duration, as the callable is told it."""
    first_frame: int
    """The graphic's first frame written to the file (0, or where a window of a long sequence starts)."""
    end_frame: int
    """The graphic's frame after the last one written: a window writes only the frames it shows."""
    field: str
    """The job field that asked for it, for error messages (``overlays.3.callable``)."""


PreparedFile = TextFile | FontLink | GraphicsRender
