"""Prefect flows that orchestrate the ``pipeline`` library."""

import os

# The server's telemetry call fails (and logs at ERROR) on machines with no outside network, and
# users finishing client footage expect nothing to phone home. An explicit setting still wins.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The job's steps log through the ``pipeline`` loggers (sync verdicts, analyses, loudness, QC): in a
# flow run those lines belong in the run's logs, beside Prefect's own.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "pipeline")
