"""Making the files a plan describes (:mod:`pipeline.plan.workfiles`) for the length of a render,
and removing them and the folders made for them afterwards, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from pipeline.plan.workfiles import FontLink, PreparedFile, TextFile
from pipeline.render.graphics import render_graphics


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
                render_graphics(item)
        yield
    finally:
        for item in files:
            item.path.unlink(missing_ok=True)
        for folder in reversed(made_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()
