"""Per-machine limits on heavy work, and telling which renders need a GPU.

A render slot is one of N lock files in a per-machine folder, held with ``flock`` for as long as a
render runs. Every process on the machine that renders (Prefect workers, Dask workers, a CLI run)
takes its slot from the same folder, so N bounds the renders of the whole machine, not of one
process; and the kernel releases a slot when its holder dies, so a killed worker cannot leak one.
A Prefect global or tag concurrency limit would count renders across every machine of a server
instead, and a slot held by a crashed worker stays taken until its lease runs out.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

RENDER_SLOTS_ENV = "POSTPROD_RENDER_SLOTS"
SLOT_DIR_ENV = "POSTPROD_SLOT_DIR"
MEMORY_PER_RENDER_BYTES = 4 << 30
"""What one render is budgeted: a 4K ProRes encode with its decoders peaks near 3 GiB."""
SLOT_POLL_S = 0.2
"""How often a waiting render tries the slots again, in seconds."""
GPU_CODEC_MARKERS = ("_nvenc", "_cuvid", "_qsv", "_vaapi", "_amf", "_videotoolbox", "_vulkan")
"""Name parts of ffmpeg's hardware encoders and decoders."""
GPU_FILTER_MARKERS = ("_cuda", "_npp", "_opencl", "_vaapi", "_qsv", "_vulkan")
"""Name parts of ffmpeg's hardware filters (``scale_cuda``, ``overlay_opencl``...)."""


def default_render_slots() -> int:
    """``$POSTPROD_RENDER_SLOTS``, else one render per 4 GiB of memory, at most one per CPU core."""
    configured = os.environ.get(RENDER_SLOTS_ENV)
    if configured:
        return max(1, int(configured))
    by_memory = psutil.virtual_memory().total // MEMORY_PER_RENDER_BYTES
    return max(1, min(os.cpu_count() or 1, by_memory))


def slot_dir() -> Path:
    """``$POSTPROD_SLOT_DIR``, else a folder in the machine's temporary directory."""
    return Path(os.environ.get(SLOT_DIR_ENV) or Path(tempfile.gettempdir()) / "postprod-slots")


@contextmanager
def machine_slot(pool: str, slots: int, folder: Path | None = None) -> Iterator[int]:
    """Hold one of ``slots`` slots of ``pool`` on this machine; wait while all are taken.

    Yields:
        The slot's number, 0 to ``slots - 1``.
    """
    folder = folder or slot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        for number in range(slots):
            handle = (folder / f"{pool}.{number}.lock").open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield number
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        time.sleep(SLOT_POLL_S)


def uses_gpu(encoders: Iterable[str], filters: Iterable[str]) -> bool:
    """True when a render's encoders or filters run on a GPU."""
    return any(marker in name for name in encoders for marker in GPU_CODEC_MARKERS) or any(
        marker in name for name in filters for marker in GPU_FILTER_MARKERS
    )
