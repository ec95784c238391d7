"""How commands find postprod's background Prefect server, without starting one: the record of a
running server, a stale or reused pid, a configured ``PREFECT_API_URL``, a bad mode. Starting,
reusing and stopping a real server is in tests/test_server.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

from flows.server import (
    RECORD_NAME,
    SERVER_HOME_ENV,
    SERVER_MODE_ENV,
    command_api,
    running_server,
    server_home,
    server_mode,
)
from pipeline.errors import JobError
from postprod.cli import main


def _record(home: Path, pid: int, created: float) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / RECORD_NAME
    path.write_text(json.dumps({"pid": pid, "created": created, "url": "http://127.0.0.1:1/api"}))
    return path


def test_a_recorded_server_counts_only_while_its_own_process_runs(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        created = psutil.Process(process.pid).create_time()
        _record(tmp_path, process.pid, created)
        assert running_server(tmp_path).pid == process.pid

        _record(tmp_path, process.pid, created - 3600)  # the pid, reused by another process since
        assert running_server(tmp_path) is None
        assert not (tmp_path / RECORD_NAME).exists(), "a stale record is removed"
    finally:
        process.kill()
        process.wait()
    _record(tmp_path, process.pid, created)
    assert running_server(tmp_path) is None, "the server's process has gone"


def test_the_state_folder_follows_the_environment(tmp_path):
    assert server_home({SERVER_HOME_ENV: str(tmp_path)}) == tmp_path
    assert server_home({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "postprod" / "prefect-server"


def test_a_configured_api_url_wins_and_nothing_is_started(tmp_path, monkeypatch):
    monkeypatch.setenv(SERVER_HOME_ENV, str(tmp_path / "home"))
    monkeypatch.delenv(SERVER_MODE_ENV)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with command_api(on_start=lambda server: pytest.fail("started a server")) as url:
        assert url == "http://127.0.0.1:9/api"
    assert not (tmp_path / "home").exists()


def test_an_unknown_server_mode_is_a_usage_error():
    with pytest.raises(JobError, match="POSTPROD_PREFECT_SERVER='cloud': expected 'background' or 'temporary'"):
        server_mode({SERVER_MODE_ENV: "cloud"})
    assert server_mode({}) == "background"


def test_server_status_without_a_server(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(SERVER_HOME_ENV, str(tmp_path))
    assert main(["server", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["home"], status["running"]) == (str(tmp_path), False)
    assert main(["server", "stop"]) == 0
    assert "no server running" in capsys.readouterr().out


def test_a_commands_flow_runs_send_no_heartbeats_unless_configured(monkeypatch):
    """The heartbeat thread holds a flow run's end for up to a second; a command reports its run's
    end itself, so it sends none unless the user set a frequency."""
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with command_api():
        assert get_current_settings().flows.heartbeat_frequency is None
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 60}), command_api():
        assert get_current_settings().flows.heartbeat_frequency == 60
