"""postprod's own Prefect server: ``prefect server start`` on loopback, started in the background on
first use and reused by every later command until ``postprod server stop``.

Prefect's temporary per-run server costs 6 to 12 s to start and 1 to 4 s to stop on every command,
and has no scheduler; a server that stays up costs that once. Its database, log and a record of the
process (``server.json``: pid, start time, API URL) live in :func:`server_home`. A lock file there
makes two commands starting at once share one server. A configured ``PREFECT_API_URL`` always wins;
``POSTPROD_PREFECT_SERVER=temporary`` goes back to Prefect's temporary server per command (the test
suite does, so it leaves no server behind).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil
from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from pipeline.errors import JobError, PostprodError

SERVER_HOME_ENV = "POSTPROD_SERVER_HOME"
SERVER_MODE_ENV = "POSTPROD_PREFECT_SERVER"
BACKGROUND, TEMPORARY = "background", "temporary"
DEFAULT_PORT = 4200
"""Prefect's own default port; taken when free, so the UI is where Prefect's documentation says."""
RECORD_NAME = "server.json"
LOG_NAME = "server.log"
STARTUP_POLL_S = 0.25
STARTUP_TIMEOUT_S = 120.0
HEALTH_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 20.0


class ServerError(PostprodError, RuntimeError):
    """The background server did not start, or a recorded one does not answer (exit 4: the work
    could not run)."""

    exit_code = 4


@dataclass(frozen=True)
class BackgroundServer:
    """A ``prefect server start`` process this module started, as recorded in ``server.json``."""

    pid: int
    created: float
    """The process's start time (``psutil``), so a pid the system has since reused is not taken for it."""
    url: str
    """Its API URL, ``http://127.0.0.1:PORT/api``."""
    home: Path
    """Its ``PREFECT_HOME``: database ``prefect.db``, log ``server.log``, this record."""

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")

    def to_dict(self) -> dict:
        return {**asdict(self), "home": str(self.home), "ui_url": self.ui_url}


def server_home(environ: Mapping[str, str] = os.environ) -> Path:
    """``$POSTPROD_SERVER_HOME``, else ``$XDG_CACHE_HOME/postprod/prefect-server``, else
    ``~/.cache/postprod/prefect-server``."""
    configured = environ.get(SERVER_HOME_ENV)
    if configured:
        return Path(configured)
    cache = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "postprod" / "prefect-server"


def server_mode(environ: Mapping[str, str] = os.environ) -> str:
    """``background`` (the default) or ``temporary``, from ``$POSTPROD_PREFECT_SERVER``.

    Raises:
        JobError: any other value (a usage error, exit 2).
    """
    mode = environ.get(SERVER_MODE_ENV) or BACKGROUND
    if mode not in (BACKGROUND, TEMPORARY):
        raise JobError(f"{SERVER_MODE_ENV}={mode!r}: expected {BACKGROUND!r} or {TEMPORARY!r}")
    return mode


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe_socket:
        probe_socket.bind((host, 0))
        return probe_socket.getsockname()[1]


def _port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe_socket:
        try:
            probe_socket.bind((host, port))
        except OSError:
            return False
        return True


def server_environment(home: Path) -> dict[str, str]:
    """The environment for a server (and its clients) keeping its database and logs under ``home``."""
    return {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def running_server(home: Path) -> BackgroundServer | None:
    """The server recorded in ``home`` if its process still runs, else None (a stale record is removed)."""
    record_path = home / RECORD_NAME
    try:
        record = json.loads(record_path.read_text())
        server = BackgroundServer(int(record["pid"]), float(record["created"]), str(record["url"]), home)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _process_of(server) is None:
        record_path.unlink(missing_ok=True)
        return None
    return server


def _process_of(server: BackgroundServer) -> psutil.Process | None:
    try:
        process = psutil.Process(server.pid)
        if abs(process.create_time() - server.created) > 1 or process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except psutil.Error:
        return None


def is_healthy(url: str, timeout_s: float = HEALTH_TIMEOUT_S) -> bool:
    """True when the server at ``url`` answers its health check."""
    try:
        return httpx.get(f"{url}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """Held while a command looks for, starts or stops the server, so two never start one each."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "server.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_server(home: Path, port: int | None = None,
                  startup_timeout_s: float = STARTUP_TIMEOUT_S) -> tuple[BackgroundServer, bool]:
    """The server running from ``home``, started in the background if there is none.

    Args:
        port: Port for a new server; default :data:`DEFAULT_PORT` when free, else any free port.

    Returns:
        The server, and whether this call started it.

    Raises:
        ServerError: a new server did not answer within ``startup_timeout_s`` (the message carries the
            end of its log), or the recorded one runs but does not answer.
    """
    with _home_lock(home):
        server = running_server(home)
        if server is not None:
            if not is_healthy(server.url):
                raise ServerError(f"the Prefect server postprod started (pid {server.pid}, {server.ui_url}) "
                                  f"does not answer; see {home / LOG_NAME}, or stop it with `postprod server stop`")
            return server, False
        return _start(home, port, startup_timeout_s), True


DETACHED_LAUNCHER = """
import subprocess, sys
log_path, argv = sys.argv[1], sys.argv[2:]
with open(log_path, "w") as log:
    server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
print(server.pid)
"""
"""Starts the server and exits at once, so the server is no child of the command that needed it: the
command's Ctrl-C (which stops the command's children, see ``postprod/interrupts.py``) and its exit
leave it running, and its own session keeps the terminal's signals away from it."""


def _start(home: Path, port: int | None, startup_timeout_s: float) -> BackgroundServer:
    host = "127.0.0.1"
    port = port or (DEFAULT_PORT if _port_is_free(DEFAULT_PORT, host) else free_port(host))
    url = f"http://{host}:{port}/api"
    log_path = home / LOG_NAME
    launched = subprocess.run(
        [sys.executable, "-c", DETACHED_LAUNCHER, str(log_path),
         sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        env=server_environment(home), stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True,
    )
    process = psutil.Process(int(launched.stdout))
    server = BackgroundServer(process.pid, process.create_time(), url, home)
    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline and _process_of(server) is not None:
        if is_healthy(url, timeout_s=2):
            record = home / f".{RECORD_NAME}.partial"
            record.write_text(json.dumps({"pid": server.pid, "created": server.created, "url": url}))
            record.replace(home / RECORD_NAME)
            return server
        time.sleep(STARTUP_POLL_S)
    _terminate(process)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
    raise ServerError(f"the Prefect server at {url} did not start:\n{tail}")


def _terminate(process: psutil.Process) -> None:
    """SIGTERM, then SIGKILL if the process has not ended after :data:`STOP_TIMEOUT_S`."""
    with contextlib.suppress(psutil.NoSuchProcess):
        process.terminate()
        if not _ended(process, STOP_TIMEOUT_S):
            process.kill()
            _ended(process, STOP_TIMEOUT_S)


def _ended(process: psutil.Process, timeout_s: float) -> bool:
    """Wait until the process has exited: reaped if it is our child; a zombie another parent has
    yet to reap counts as ended (``wait`` on a process that is not our child would wait for it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(psutil.Error, ChildProcessError):
                    process.wait(timeout=0)
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(STARTUP_POLL_S)
    return False


def stop_server(home: Path) -> BackgroundServer | None:
    """Stop the server running from ``home``; return it, or None when none ran. Its database stays."""
    with _home_lock(home):
        server = running_server(home)
        if server is not None:
            process = _process_of(server)
            if process is not None:
                _terminate(process)
        (home / RECORD_NAME).unlink(missing_ok=True)
        return server


def configured_api_url() -> str | None:
    """``PREFECT_API_URL`` from the environment or the active Prefect profile, if set."""
    return os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value() or None


@contextmanager
def command_api(on_start: Callable[[BackgroundServer], None] = lambda server: None) -> Iterator[str | None]:
    """The Prefect API this command's flow runs report to, for as long as the context lasts.

    A configured ``PREFECT_API_URL`` as it is; else, unless ``POSTPROD_PREFECT_SERVER=temporary``
    (yields None: Prefect starts its temporary server), the background server of
    :func:`server_home`, started first when none runs (``on_start`` is told). The URL is set in the
    environment too, so processes the flow starts (Dask workers) report to the same server.

    The command's flow runs send no heartbeats unless ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` is set:
    heartbeats let an automation mark a deployment's run crashed when its worker vanishes, but a
    command reports its own run's end (see ``postprod/interrupts.py`` for signals), and the
    heartbeat thread holds every flow run's end for up to a second (it sleeps in whole seconds).
    """
    configured = configured_api_url()
    if configured or server_mode() == TEMPORARY:
        with temporary_settings(set_defaults={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield configured
        return
    server, started = ensure_server(server_home())
    if started:
        on_start(server)
    os.environ["PREFECT_API_URL"] = server.url
    try:
        with temporary_settings({PREFECT_API_URL: server.url},
                                set_defaults={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield server.url
    finally:
        os.environ.pop("PREFECT_API_URL", None)


def flush_reports() -> None:
    """Send what this process's Prefect client still holds (logs, events) to the server and stop
    its senders: what Prefect's own exit handlers do, for a command that then ends at once."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()
    EventsWorker.drain_all()
