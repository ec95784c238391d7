"""Writing a small text file so that readers see the old file or the whole new one, never a part."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` as UTF-8 to a hidden partial name beside ``path``, then rename it into place.

    A failed write (a full disk) removes the partial file and leaves ``path`` as it was.

    Raises:
        OSError: the file could not be written.
    """
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
