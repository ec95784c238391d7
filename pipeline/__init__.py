"""postprod's library: probe, plan, render and verify deliverables from generated clips.

Plain Python over ffmpeg and PyAV; nothing here imports Prefect.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("postprod")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
