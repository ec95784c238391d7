"""The nightly batch against a real ``prefect server start`` on loopback, started once for the module
as a user would (``postprod server start``) and stopped the same way at its end.

Deployed and triggered through the API as a user's scheduler would; run in-process against the same
server for the crash, rerun and Dask checks; a ``postprod finish`` in a process of its own reports to
it rather than starting a server.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import psutil
import pytest
import yaml
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
    LogFilter,
    LogFilterFlowRunId,
    FlowRunFilterParentFlowRunId,
)
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.nightly_batch import ARTIFACT_KEY, nightly_batch
from flows.server import SERVER_HOME_ENV, SERVER_MODE_ENV, free_port, running_server, server_environment
from postprod.cli import main
from pipeline.service.batch import SUMMARY_NAME
from pipeline.media.probe import probe
from pipeline.media.synth import ClipShape, synthesize

pytestmark = pytest.mark.prefect

TINY = ClipShape("tiny-320x180-24", 320, 180, Fraction(24))
TEMPLATE = {"deliverables": [{"preset": "review-540p", "overrides": {"video": {"width": 320, "height": 180}}}]}
"""Loose clips become 320x180 review copies: the cheapest render there is."""


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SERVER_HOME_ENV, str(home))
        assert main(["server", "start", "--port", str(free_port())]) == 0
        server = running_server(home)
        try:
            with temporary_settings({PREFECT_API_URL: server.url}):
                yield server.url, home
                APILogWorker.drain_all()  # send the last run logs while the server is there, not retry at exit
        finally:
            assert main(["server", "stop"]) == 0
        assert _ended(server.pid), "postprod server stop leaves no server process"
        assert running_server(home) is None


def _ended(pid: int) -> bool:
    """The process has exited (a zombie its parent, init, has yet to reap counts)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _clip(folder: Path, name: str, seconds: int = 1) -> Path:
    return synthesize(TINY, folder / name, Fraction(seconds))


def _summary(out: Path) -> dict:
    return json.loads((out / SUMMARY_NAME).read_text())


def _by_item(summary: dict) -> dict[str, dict]:
    return {Path(item["item"]).name: item for item in summary["items"]}


def _tiny_preset(folder: Path, name: str, crf: int) -> None:
    base = yaml.safe_load((Path(__file__).parents[1] / "presets" / "review-540p.yaml").read_text())
    base.update(name=name, description=f"test preset {name}")
    base["video"].update(width=320, height=180, burn_in_timecode=False)
    base["video"]["options"]["crf"] = crf
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(base))


def _wait_for_deployment(name: str, inbox: Path, server: subprocess.Popen, log: Path,
                         timeout_s: float = 60) -> None:
    """Until ``postprod serve`` has registered the deployment of ``inbox`` (not an earlier test's)."""
    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if client.read_deployment_by_name(name).parameters["inbox"] == str(inbox.resolve()):
                    return
            except ObjectNotFound:
                pass
            time.sleep(0.5)
    raise AssertionError(f"postprod serve did not register {name}:\n{log.read_text()[-3000:]}")


@pytest.mark.expected_error_logs  # the two bad inputs fail their subflows, which Prefect logs at ERROR
@pytest.mark.parametrize("loose_clips, job_files", [
    (2, 1),
    pytest.param(8, 2, marks=pytest.mark.slow, id="twelve-items"),
])
def test_deployed_nightly_batch_continues_past_bad_input(prefect_api, tmp_path, loose_clips, job_files):
    url, home = prefect_api
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    serve_log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "postprod.cli", "serve", "--inbox", str(inbox), "--out", str(out),
         "--concurrency", "2", "--cron", "30 1 * * *", "--timezone", "Europe/Paris"],
        env={**server_environment(home), "PREFECT_API_URL": url, "PREFECT_RUNNER_POLL_FREQUENCY": "1"},
        stdout=serve_log, stderr=subprocess.STDOUT,
    )
    try:
        (inbox / "_template.yaml").write_text(yaml.safe_dump(TEMPLATE))
        for index in range(loose_clips):
            _clip(inbox, f"shot{index:02d}.mp4")
        (inbox / "clips").mkdir()
        for index in range(job_files):
            _clip(inbox / "clips", f"take{index}.mp4", seconds=2)
            (inbox / f"job{index}.yaml").write_text(yaml.safe_dump({
                "version": 1, "name": f"job{index}",
                "shots": [{"source": f"clips/take{index}.mp4", "in": "12f"}],
                "deliverables": TEMPLATE["deliverables"],
            }))
        (inbox / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"garbage" * 500)
        (inbox / "late.yaml").write_text(yaml.safe_dump({
            "version": 1, "name": "late", "shots": [{"source": "clips/take0.mp4", "in": 5}],
            "deliverables": TEMPLATE["deliverables"],
        }))

        _wait_for_deployment("nightly-batch/nightly", inbox, server, tmp_path / "serve.log")
        flow_run = run_deployment("nightly-batch/nightly", timeout=240, poll_interval=1)

        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("nightly-batch/nightly")
            children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run.id])))
            artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        serve_log.close()

    schedule = deployment.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("30 1 * * *", "Europe/Paris")
    assert flow_run.state.is_failed(), "a night with failed jobs shows as failed"
    good = loose_clips + job_files
    assert f"{good} rendered, 0 already done, 2 failed of {good + 2}" in flow_run.state.message
    child_states = sorted(run.state.type.value for run in children)
    assert child_states == ["COMPLETED"] * good + ["FAILED"] * 2, child_states
    (artifact,) = [artifact for artifact in artifacts if artifact.key == ARTIFACT_KEY]
    assert f"{good} rendered, 0 already done, 2 failed" in artifact.data
    assert "`broken.mp4`" in artifact.data and "`late.yaml`" in artifact.data

    summary = _by_item(_summary(out))
    assert summary["broken.mp4"]["status"] == "failed"
    assert "broken.mp4: truncated or unfinished MP4/MOV" in summary["broken.mp4"]["reason"]
    assert summary["late.yaml"]["status"] == "failed"
    assert "shots.0" in summary["late.yaml"]["reason"] or "in point" in summary["late.yaml"]["reason"]
    for name in ("broken.mp4", "late.yaml"):
        set_aside = Path(summary[name]["set_aside_in"])
        assert (set_aside / name).is_file() and not (inbox / name).exists()
        assert summary[name]["reason"] in (set_aside / "reason.txt").read_text()
    finished = [item for item in summary.values() if item["status"] == "succeeded"]
    assert len(finished) == good
    for item in finished:
        assert item["qc"] in ("pass", "warn"), "each finished job carries its deliverables' QC verdict"
        (output,) = item["outputs"]
        info = probe(output)
        expected_frames = 36 if item["job"].startswith("job") else 24  # 2 s from frame 12, or 1 s
        assert (info.video.display_width, info.video.display_height, info.video.frame_count) == (
            320, 180, expected_frames)
    assert (inbox / "clips" / "take0.mp4").is_file(), "a clip another job uses stays in the inbox"


def _kill_first_render(stop: threading.Event, killed: list[int]) -> None:
    """SIGTERM the first ffmpeg of ours that writes a ``.partial`` file: a render, not a probe."""
    me = psutil.Process()
    while not stop.is_set() and not killed:
        for child in me.children(recursive=True):
            try:
                if "ffmpeg" in child.name() and any(".partial" in arg for arg in child.cmdline()):
                    child.send_signal(signal.SIGTERM)
                    killed.append(child.pid)
                    break
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.005)


def _watch_final_names(folder: Path, stop: threading.Event, first_seen: dict[Path, str]) -> None:
    """Hash every deliverable the moment it first appears under its final name."""
    while not stop.is_set():
        for path in folder.rglob("*.mp4"):
            if not path.name.startswith(".") and path not in first_seen:
                first_seen[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        time.sleep(0.002)


def test_killed_render_is_retried_and_no_partial_output_is_ever_final(prefect_api, tmp_path):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "_template.yaml").write_text(yaml.safe_dump(TEMPLATE))
    _clip(inbox, "killme.mp4", seconds=6)
    stop, killed, first_seen = threading.Event(), [], {}
    watchers = [threading.Thread(target=_kill_first_render, args=(stop, killed)),
                threading.Thread(target=_watch_final_names, args=(out, stop, first_seen))]
    out.mkdir()
    for thread in watchers:
        thread.start()
    try:
        state = nightly_batch(inbox=inbox, out=out, concurrency=1, return_state=True)
    finally:
        stop.set()
        for thread in watchers:
            thread.join()

    assert len(killed) == 1
    assert state.is_completed(), state.message
    (item,) = _summary(out)["items"]
    assert item["status"] == "succeeded"
    manifest = json.loads(Path(item["manifest"]).read_text())
    (output,) = manifest["outputs"]
    assert probe(output["path"]).video.frame_count == 144
    assert first_seen == {Path(output["path"]): output["sha256"]}, "the final name only ever held the finished file"
    with get_client(sync_client=True) as client:
        (subflow,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=["finish-killme"])))
        renders = [run for run in client.read_task_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=["finish-killme"]))) if run.name.startswith("render")]
    assert subflow.state.is_completed()
    assert [run.run_count for run in renders] == [2], "the killed render ran again"


def test_rerun_renders_nothing_and_a_changed_preset_only_its_job(prefect_api, tmp_path, monkeypatch):
    presets, inbox, out = tmp_path / "presets", tmp_path / "inbox", tmp_path / "out"
    presets.mkdir()
    inbox.mkdir()
    monkeypatch.setenv("POSTPROD_PRESETS", str(presets))
    for name in ("tiny-a", "tiny-b"):
        _tiny_preset(presets, name, crf=26)
        clip = _clip(inbox / "clips", f"{name}.mp4")
        (inbox / f"{name}.yaml").write_text(yaml.safe_dump({
            "version": 1, "name": name, "shots": [{"source": str(clip)}], "deliverables": [{"preset": name}]}))

    nightly_batch(inbox=inbox, out=out, return_state=True)
    first = _by_item(_summary(out))
    stats = {name: os.stat(item["outputs"][0]) for name, item in first.items()}
    assert [item["status"] for item in first.values()] == ["succeeded", "succeeded"]

    started = time.monotonic()
    nightly_batch(inbox=inbox, out=out, return_state=True)
    rerun_s = time.monotonic() - started
    second = _by_item(_summary(out))
    assert [item["status"] for item in second.values()] == ["skipped", "skipped"]
    assert all(item["seconds"] < 2 for item in second.values()), second
    assert rerun_s < 30, "a rerun of finished jobs takes seconds"

    _tiny_preset(presets, "tiny-b", crf=35)
    nightly_batch(inbox=inbox, out=out, return_state=True)
    third = _by_item(_summary(out))
    assert third["tiny-a.yaml"]["status"] == "skipped"
    assert third["tiny-b.yaml"]["status"] == "succeeded"
    assert third["tiny-b.yaml"]["reason"] == "changed since the last run: presets"
    after = {name: os.stat(item["outputs"][0]) for name, item in third.items()}
    assert after["tiny-a.yaml"].st_mtime_ns == stats["tiny-a.yaml"].st_mtime_ns
    assert after["tiny-b.yaml"].st_mtime_ns != stats["tiny-b.yaml"].st_mtime_ns
    assert after["tiny-b.yaml"].st_size < stats["tiny-b.yaml"].st_size, "CRF 35 is smaller than CRF 26"


def test_a_command_reports_to_the_background_server_instead_of_starting_one(prefect_api, tmp_path):
    url, home = prefect_api
    clip = _clip(tmp_path, "clip.mp4")
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PREFECT_API_URL", SERVER_MODE_ENV)}  # a user's shell: nothing configured
    with get_client(sync_client=True) as client:
        before = {run.id for run in client.read_flow_runs()}
    command = subprocess.run(
        [sys.executable, "-m", "postprod.cli", "finish", str(clip), "--preset", "review-540p",
         "--out", str(tmp_path / "out"), "--json"],
        env={**environment, SERVER_HOME_ENV: str(home)}, capture_output=True, text=True, timeout=300,
    )
    assert command.returncode == 0, command.stderr[-3000:]
    assert "temporary server" not in command.stderr and "started a Prefect server" not in command.stderr
    with get_client(sync_client=True) as client:
        (run,) = [run for run in client.read_flow_runs() if run.id not in before]
        assert client.read_flow(run.flow_id).name == "finish-job"
    assert run.state.is_completed(), "the command's flow run is on the server, finished"
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
        assert any(log.message.startswith("manifest: ") for log in logs), \
            "the run's last log reached the server before the command ended at once (postprod/fast_exit.py)"
        assert {"probe-source", "render", "qc"} <= _task_names(client, run.id), "its task runs are on the server"
    (output,) = json.loads(command.stdout)["outputs"]
    assert probe(output["path"]).video.frame_count == 24
    assert running_server(home).url == url, "the same server, still running"


def _task_names(client, flow_run_id, timeout_s: float = 30) -> set[str]:
    """The names of a flow run's task runs, once the server has recorded them from their events
    (it does so in the background, shortly after the run)."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        names = {run.name.rsplit("-", 1)[0] for run in runs}
        if {"render", "qc"} <= names or time.monotonic() > deadline:
            return names
        time.sleep(0.5)


@pytest.mark.slow
def test_dask_local_cluster_renders_what_the_default_runner_does(prefect_api, tmp_path, monkeypatch):
    presets = tmp_path / "presets"
    presets.mkdir()
    monkeypatch.setenv("POSTPROD_PRESETS", str(presets))
    monkeypatch.setenv("POSTPROD_READ_ROOTS", str(tmp_path / "clips"))  # both inboxes' job read one clip
    _tiny_preset(presets, "tiny-a", crf=26)
    _tiny_preset(presets, "tiny-b", crf=30)
    clip = _clip(tmp_path / "clips", "source.mp4", seconds=2)
    outputs = {}
    for runner in ("default", "dask"):
        inbox, out = tmp_path / runner / "inbox", tmp_path / runner / "out"
        inbox.mkdir(parents=True)
        (inbox / "two.yaml").write_text(yaml.safe_dump({
            "version": 1, "name": "two", "shots": [{"source": str(clip)}],
            "deliverables": [{"preset": "tiny-a"}, {"preset": "tiny-b"}]}))
        state = nightly_batch(inbox=inbox, out=out, one_process=False,
                              dask="local" if runner == "dask" else None, return_state=True)
        assert state.is_completed(), state.message
        (item,) = _summary(out)["items"]
        manifest = json.loads(Path(item["manifest"]).read_text())
        outputs[runner] = [(Path(output["path"]).name, output["probe"], output["sha256"])
                           for output in manifest["outputs"]]

    assert [(name, summary) for name, summary, _ in outputs["dask"]] == [
        (name, summary) for name, summary, _ in outputs["default"]]
    assert [digest for *_, digest in outputs["dask"]] == [digest for *_, digest in outputs["default"]]
