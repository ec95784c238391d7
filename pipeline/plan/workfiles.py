"""Files a render needs before ffmpeg starts: generated ASS scripts, links to font files, motion
graphics rendered from Python. The planner describes them; :func:`prepared` makes them and removes
them again, so the plan stays pure data and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
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


@contextlib.contextmanager
def prepared(files: tuple[PreparedFile, ...]) -> Iterator[None]:
    """Make ``files`` for the duration of the block, then remove them and the folders made for them.

    Raises:
        JobError: a motion-graphics callable cannot be imported or returns something unusable.
        FFmpegError: encoding a motion graphic failed.
    """
    made_dirs: list[Path] = []
    try:
        for item in files:
            folder = item.path.parent
            if not folder.exists():
                missing = [folder, *(parent for parent in folder.parents if not parent.exists())]
                folder.mkdir(parents=True)
                made_dirs += reversed(missing)
            if isinstance(item, TextFile):
                item.path.write_text(item.text, encoding="utf-8")
            elif isinstance(item, FontLink):
                item.path.unlink(missing_ok=True)
                try:
                    os.symlink(item.target, item.path)
                except OSError:
                    shutil.copyfile(item.target, item.path)
            else:
                from pipeline.render.graphics import render_graphics

                render_graphics(item)
        yield
    finally:
        for item in files:
            item.path.unlink(missing_ok=True)
        for folder in reversed(made_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()
