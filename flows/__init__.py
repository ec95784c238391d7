"""Prefect flows that orchestrate the ``pipeline`` library."""

import os

# The server's telemetry call fails (and logs at ERROR) on machines with no outside network, and
# users finishing client footage expect nothing to phone home. An explicit setting still wins.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
