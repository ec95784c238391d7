"""Writing a text file so that no reader ever sees half of it: reports, manifests, summaries, exports.

The text goes to a hidden ``.NAME.partial`` beside the target and is renamed over it once complete
(a rename within one folder is atomic), the same way deliverables are put in place.
"""

from __future__ import annotations

import os
from pathlib import Path


def partial_path(path: Path) -> Path:
    """The hidden name a file is written under until it is complete."""
    return path.with_name(f".{path.name}.partial")


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` under its partial name, then rename it into place; on failure
    the partial file is removed and ``path`` is left as it was. Returns ``path``."""
    partial = partial_path(path)
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
