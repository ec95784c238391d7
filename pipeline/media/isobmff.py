"""Top-level box layout of MP4/MOV (ISO base media) files: enough to tell faststart and truncation."""

from __future__ import annotations

import struct
from pathlib import Path


def top_level_boxes(path: Path) -> list[tuple[str, int]]:
    """Types and sizes of the top-level boxes, in file order.

    Stops at the first box whose header is cut off or whose size runs past the end of the file (a
    truncated file), so the list ends with the last box that is whole.
    """
    boxes: list[tuple[str, int]] = []
    file_size = path.stat().st_size
    with path.open("rb") as handle:
        offset = 0
        while offset + 8 <= file_size:
            handle.seek(offset)
            size, box_type = struct.unpack(">I4s", handle.read(8))
            if size == 1:
                (size,) = struct.unpack(">Q", handle.read(8))
            elif size == 0:
                size = file_size - offset
            if size < 8 or offset + size > file_size:
                break
            boxes.append((box_type.decode("latin-1"), size))
            offset += size
    return boxes


def is_faststart(path: Path) -> bool:
    """True when the ``moov`` index comes before the ``mdat`` media data (plays while downloading)."""
    order = [box for box, _ in top_level_boxes(path) if box in ("moov", "mdat")]
    return bool(order) and order[0] == "moov"


def major_brand(path: Path) -> str | None:
    """The ``ftyp`` major brand (``qt  `` for QuickTime .mov, ``isom``/``mp42`` for .mp4), if any."""
    with path.open("rb") as handle:
        header = handle.read(12)
    if len(header) == 12 and header[4:8] == b"ftyp":
        return header[8:12].decode("latin-1")
    return None
