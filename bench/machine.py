"""The lines every benchmark prints first: which ffmpeg, how many cores, how busy the machine was."""

from __future__ import annotations

import os

from rich.console import Console

from pipeline.media.runner import ffmpeg_executable, ffmpeg_version


def print_machine(console: Console) -> None:
    """Print the ffmpeg build, the core count and the 1-minute load average before the run."""
    console.print(f"ffmpeg {ffmpeg_version()} ({ffmpeg_executable()})", highlight=False)
    console.print(f"{os.cpu_count()} CPU cores; 1-min load average before: {os.getloadavg()[0]:.2f} "
                  "(other work on the machine skews wall times; CPU seconds less so)")
