"""A Prefect server of our own on loopback: ``prefect server start`` as a child process.

``postprod serve`` uses it when no ``PREFECT_API_URL`` is configured, so schedules fire (Prefect's
temporary per-run server has no scheduler); the server tests start and stop one the same way.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

STARTUP_POLL_S = 0.25
STOP_TIMEOUT_S = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe_socket:
        probe_socket.bind((host, 0))
        return probe_socket.getsockname()[1]


def server_environment(home: Path) -> dict[str, str]:
    """The environment for a server (and its clients) keeping its database and logs under ``home``."""
    return {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


@contextmanager
def local_prefect_server(home: Path, port: int | None = None, host: str = "127.0.0.1",
                         startup_timeout_s: float = 120.0) -> Iterator[str]:
    """Start ``prefect server start`` with its state in ``home``; yield its API URL; stop it.

    Raises:
        RuntimeError: the server exited or did not answer within ``startup_timeout_s``; the
            message carries the end of its log.
    """
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    url = f"http://{host}:{port}/api"
    log_path = home / "server.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
            env=server_environment(home), stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(process, url, log_path, startup_timeout_s)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(process: subprocess.Popen, url: str, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(STARTUP_POLL_S)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"the Prefect server at {url} did not start:\n{tail}")
