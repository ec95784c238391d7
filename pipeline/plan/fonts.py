"""Fonts by file path: libass and drawtext get a file, never a fontconfig lookup.

A slim container has no system fonts, so the default font ships as a Python dependency (Roboto,
Apache-2.0, from the ``font-roboto`` package).
"""

from __future__ import annotations

from pathlib import Path

import font_roboto

from pipeline.errors import MediaError


def default_font_path() -> Path:
    """The default font file (Roboto Regular).

    Raises:
        MediaError: the font package is installed without its font file.
    """
    path = Path(font_roboto.font_directory) / "Roboto-Regular.ttf"
    if not path.is_file():
        raise MediaError(path, "default font file is missing; reinstall the font-roboto package")
    return path
