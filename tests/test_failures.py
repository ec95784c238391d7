"""Failures as a user meets them: ffmpeg cut short, two processes on one folder or inbox, a hostile
inbox item, a full disk, SIGINT and SIGTERM. Each case checks the exit code, the message and the
files left behind."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import psutil
import pytest
import yaml

import flows.finish_job  # imports Prefect, whose console log handler takes the stderr of the moment
import flows.nightly_batch
import pipeline.render.renderer
from pipeline.errors import FFmpegError, IncompleteRenderError
from pipeline.files import partial_path
from pipeline.jobs.finish import preflight
from pipeline.model.job import job_for_clips
from pipeline.render.locks import LOCK_NAME, LockedError, item_lock, output_folder_lock
from pipeline.media.probe import probe
from pipeline.render.renderer import render
from pipeline.render.verify import Verification
from pipeline.media.synth import ClipShape, synthesize
from postprod.cli import main

TINY = ClipShape("tiny-320x180-24", 320, 180, Fraction(24))
SMALL_REVIEW = {"preset": "review-540p", "overrides": {"video": {"width": 320, "height": 180}}}
"""The cheapest deliverable there is: a 320x180 review copy."""
PROJECT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return synthesize(TINY, tmp_path_factory.mktemp("clips") / "tiny.mp4", Fraction(1))


def _first_render(clip: Path, out: Path):
    job = job_for_clips([clip], ["review-540p"], name="tiny")
    return preflight(job, out).renders[0]


def _fake_ffmpeg(monkeypatch, returncode: int, stderr_tail: list[str], inputs: list[Path]) -> None:
    """ffmpeg that fails as a signalled one does, naming ``inputs`` on its command line."""

    def run(args, **kwargs):
        argv = ["ffmpeg"] + [arg for path in inputs for arg in ("-i", str(path))] + list(args)
        if returncode:
            raise FFmpegError(argv, returncode, stderr_tail)

    monkeypatch.setattr(pipeline.render.renderer, "run_ffmpeg", run)


def test_a_read_error_on_an_input_that_opens_fine_is_a_cut_short_render(tiny_clip, tmp_path, monkeypatch):
    """ffmpeg signalled while opening its input exits 183 with "moov atom not found": retried."""
    plan = _first_render(tiny_clip, tmp_path / "out")
    _fake_ffmpeg(monkeypatch, 183, ["[mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] moov atom not found",
                                    f"Error opening input file {tiny_clip}."], [tiny_clip])
    with pytest.raises(IncompleteRenderError, match="reading inputs that open fine afterwards") as caught:
        render(plan)
    assert caught.value.transient
    assert list((tmp_path / "out").iterdir()) == []


def test_a_read_error_on_a_broken_input_stays_the_inputs_fault(tiny_clip, tmp_path, monkeypatch):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(tiny_clip.read_bytes()[:2000])
    plan = _first_render(tiny_clip, tmp_path / "out")
    _fake_ffmpeg(monkeypatch, 183, ["moov atom not found", f"Error opening input file {broken}."], [broken])
    with pytest.raises(FFmpegError) as caught:
        render(plan)
    assert not caught.value.transient and caught.value.returncode == 183


def test_ffmpeg_exiting_0_without_its_output_is_a_cut_short_render(tiny_clip, tmp_path, monkeypatch):
    plan = _first_render(tiny_clip, tmp_path / "out")
    _fake_ffmpeg(monkeypatch, 0, [], [tiny_clip])
    with pytest.raises(IncompleteRenderError, match="ffmpeg exited without writing it") as caught:
        render(plan)
    assert caught.value.transient


def _hold_in_subprocess(code: str, seconds: float) -> subprocess.Popen:
    """Run ``code`` (which takes a lock) in another process, print "held", sleep, and let go."""
    script = textwrap.dedent(code) + f"\nprint('held', flush=True)\nimport time\ntime.sleep({seconds})\n"
    process = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_of_an_output_folder_waits_and_stale_partials_go(tmp_path):
    folder = tmp_path / "out"
    holder = _hold_in_subprocess(f"""
        from pathlib import Path
        from pipeline.render.locks import output_folder_lock
        lock = output_folder_lock(Path({str(folder)!r}))
        lock.__enter__()
        (Path({str(folder)!r}) / ".left-by-a-crash.mp4.partial").write_bytes(b"x")
    """, seconds=1.5)
    told = []
    started = time.monotonic()
    with output_folder_lock(folder, on_wait=told.append):
        waited_s = time.monotonic() - started
        assert (folder / LOCK_NAME).read_text().strip() == str(os.getpid())
        assert not (folder / ".left-by-a-crash.mp4.partial").exists()
    holder.wait()
    assert told == [f"{folder}: another postprod process (pid {holder.pid}) is writing this folder; "
                    "waiting for it to finish"]
    assert waited_s > 0.5
    assert list(folder.iterdir()) == [], "the lock file goes with the lock"


def test_an_inbox_item_held_by_another_batch_is_refused_at_once(tmp_path):
    item = tmp_path / "job.yaml"
    item.write_text("name: x\n")
    holder = _hold_in_subprocess(f"""
        from pathlib import Path
        from pipeline.render.locks import item_lock
        lock = item_lock(Path({str(item)!r}))
        lock.__enter__()
    """, seconds=30)
    try:
        with pytest.raises(LockedError, match="job.yaml: another postprod batch is finishing this item"):
            with item_lock(item):
                pass
    finally:
        holder.kill()
        holder.wait()
    with item_lock(item):
        pass


def _unwrapped(text: str) -> str:
    """``text`` without white space: the console wraps long lines, inside paths too."""
    return "".join(text.split())


def _summary(out: Path) -> dict[str, dict]:
    summary = json.loads((out / "batch-summary.json").read_text())
    return {Path(item["item"]).name: item for item in summary["items"]}


@pytest.mark.prefect
@pytest.mark.expected_error_logs  # the internal error is logged at ERROR, with its traceback
def test_a_batch_with_hostile_items_finishes_the_others_and_bins_each(tiny_clip, tmp_path, capfd, monkeypatch):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "_template.yaml").write_text(yaml.safe_dump({"deliverables": [SMALL_REVIEW]}))
    (inbox / "good.mp4").write_bytes(tiny_clip.read_bytes())
    (inbox / "selfish.yaml").write_text(yaml.safe_dump(
        {"version": 1, "name": "selfish", "shots": [{"source": "selfish.yaml"}], "deliverables": [SMALL_REVIEW]}))
    (inbox / os.fsdecode(b"caf\xe9.mp4")).write_bytes(tiny_clip.read_bytes())
    (inbox / "buggy.mp4").write_bytes(tiny_clip.read_bytes())
    (inbox / "busy.mp4").write_bytes(tiny_clip.read_bytes())
    real_fingerprint = flows.nightly_batch.job_fingerprint

    def fingerprint(job, *args):
        if job.name == "buggy":
            return 1 / 0  # stands for a bug in postprod
        return real_fingerprint(job, *args)

    monkeypatch.setattr(flows.nightly_batch, "job_fingerprint", fingerprint)
    other_batch = _hold_in_subprocess(f"""
        from pathlib import Path
        from pipeline.render.locks import item_lock
        lock = item_lock(Path({str(inbox / "busy.mp4")!r}))
        lock.__enter__()
    """, seconds=300)
    started = time.monotonic()
    try:
        code = main(["batch", str(inbox), "--out", str(out), "--concurrency", "1", "--json"])
    finally:
        other_batch.kill()
        other_batch.wait()
    batch_s = time.monotonic() - started

    assert code == 1
    items = _summary(out)
    assert items["good.mp4"]["status"] == "succeeded"
    assert probe(items["good.mp4"]["outputs"][0]).video.frame_count == 24
    selfish = items["selfish.yaml"]
    assert (selfish["status"], selfish["failure"]) == ("failed", "bad_input")
    assert sorted(p.name for p in Path(selfish["set_aside_in"]).iterdir()) == ["reason.txt", "selfish.yaml"]
    odd = items["caf\\xe9.mp4"]  # the summary names it with the non-UTF-8 byte escaped, as JSON needs
    assert (odd["failure"], Path(odd["set_aside_in"]).name) == ("bad_input", "caf\\xe9")
    assert "caf\\xe9.mp4: the file name is not valid UTF-8" in odd["reason"]
    buggy = items["buggy.mp4"]
    assert (buggy["failure"], buggy["retry_next_run"]) == ("internal", True)
    assert "ZeroDivisionError" in buggy["reason"] and (inbox / "buggy.mp4").is_file()
    assert len(json.loads((inbox / ".postprod-attempts" / "buggy.mp4.json").read_text())) == 1
    busy = items["busy.mp4"]
    assert (busy["status"], busy["reason"]) == (
        "skipped", f"{inbox.resolve()}/busy.mp4: another postprod batch is finishing this item; left to it")
    assert (inbox / "busy.mp4").is_file()
    print(f"\nbatch of 5 items with 4 hostile ones: {batch_s:.1f} s")


@pytest.mark.prefect
def test_a_preset_typo_on_batch_moves_nothing_and_fails_fast(tiny_clip, tmp_path, capfd):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "a.mp4").write_bytes(tiny_clip.read_bytes())

    assert main(["batch", str(inbox), "--out", str(out), "--preset", "web-h264-108p"]) == 2

    err = _unwrapped(capfd.readouterr().err)
    assert _unwrapped("--preset: unknown preset 'web-h264-108p'; known presets:") in err
    assert "nothingwasmoved" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in inbox.iterdir()) == ["a.mp4"] and not out.exists()


@pytest.mark.prefect
def test_a_transient_failure_is_retried_a_bounded_number_of_runs_then_set_aside(tiny_clip, tmp_path, monkeypatch):
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "_template.yaml").write_text(yaml.safe_dump({"deliverables": [SMALL_REVIEW]}))
    (inbox / "flaky.mp4").write_bytes(tiny_clip.read_bytes())

    def cut_short(plan, on_progress=None):
        raise IncompleteRenderError(plan.outputs[0].path, "ffmpeg exited without writing it")

    monkeypatch.setattr(flows.finish_job, "render", cut_short)
    monkeypatch.setattr(flows.finish_job.render_task, "retry_delay_seconds", 0)
    for night in (1, 2):
        flows.nightly_batch.nightly_batch(inbox=inbox, out=out, max_attempts=2, return_state=True)
        (item,) = _summary(out).values()
        assert (item["status"], item["failure"]) == ("failed", "transient")
        if night == 1:
            assert item["retry_next_run"] and (inbox / "flaky.mp4").is_file()
    folder = Path(item["set_aside_in"])
    reason = (folder / "reason.txt").read_text()
    assert (folder / "flaky.mp4").is_file() and "failed 2 times:" in reason
    assert reason.count("the render stopped before its output was complete") == 3
    assert not (inbox / ".postprod-attempts" / "flaky.mp4.json").exists()


@pytest.mark.prefect
@pytest.mark.expected_error_logs  # the QC task fails on purpose
def test_a_full_disk_while_writing_the_qc_report_leaves_nothing_half_done(tiny_clip, tmp_path, capfd, monkeypatch):
    job_file, out = tmp_path / "job.yaml", tmp_path / "out"
    job_file.write_text(yaml.safe_dump({"version": 1, "name": "full", "shots": [{"source": str(tiny_clip)}],
                                        "deliverables": [SMALL_REVIEW]}))
    real_write_text = Path.write_text

    def write_text(self, *args, **kwargs):
        if self == partial_path(out / "full.qc.html"):
            real_write_text(self, "<html>half", encoding="utf-8")
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)

    assert main(["run", str(job_file), "--out", str(out), "--allow-read", str(tiny_clip.parent)]) == 4

    err = _unwrapped(capfd.readouterr().err)
    assert _unwrapped(f"postprod: error: {partial_path(out / 'full.qc.html')}: could not be written (No space left on "
                      "device); the job's outputs were removed") in err
    assert "Traceback" not in err
    assert list(out.iterdir()) == [], "no partial report, no deliverable without a manifest"


@pytest.mark.prefect
@pytest.mark.expected_error_logs  # the render task fails on purpose
def test_a_failed_verification_prints_one_message_without_a_traceback(tiny_clip, tmp_path, capfd, monkeypatch):
    job_file, out = tmp_path / "job.yaml", tmp_path / "out"
    job_file.write_text(yaml.safe_dump({"version": 1, "name": "off", "shots": [{"source": str(tiny_clip)}],
                                        "deliverables": [SMALL_REVIEW]}))
    monkeypatch.setattr(pipeline.render.renderer, "verify_output", lambda path, expected, **_: Verification(
        probe(path), measured=None, mismatches=("frame count: expected 24, got 23",)))

    assert main(["run", str(job_file), "--out", str(out), "--allow-read", str(tiny_clip.parent)]) == 4

    err = capfd.readouterr().err
    assert _unwrapped(f"postprod: error: {out}/off_review-540p.mp4 failed verification: frame count: "
                      "expected 24, got 23") in _unwrapped(err)
    assert err.count("postprod: error:") == 1
    assert "Traceback" not in err and "ERROR" not in err, "Prefect's records of the failure stay off the console"
    assert list(out.iterdir()) == []


def _start_long_run(tmp_path: Path, clip: Path) -> tuple[subprocess.Popen, Path]:
    """``postprod run`` of a job whose render takes a while, on Prefect's temporary server."""
    job_file, out = tmp_path / "long.yaml", tmp_path / "out"
    job_file.write_text(yaml.safe_dump({"version": 1, "name": "long", "shots": [{"source": str(clip)}],
                                        "deliverables": [{"preset": "web-h264-1080p"}]}))
    environment = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    environment.update(PREFECT_HOME=str(tmp_path / "prefect-home"),
                       PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120")
    process = subprocess.Popen(
        [sys.executable, "-m", "postprod.cli", "run", str(job_file), "--out", str(out)], cwd=PROJECT,
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        children = psutil.Process(process.pid).children(recursive=True)
        if any(_is_render(child) for child in children):
            return process, out
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the render did not start:\n{process.communicate()[1][-3000:]}")


def _is_render(process: psutil.Process) -> bool:
    try:
        return "ffmpeg" in process.name() and any(".partial" in arg for arg in process.cmdline())
    except psutil.NoSuchProcess:
        return False


@pytest.mark.prefect
@pytest.mark.parametrize("signal_number, to_group, exit_code", [
    (signal.SIGTERM, False, 143),  # a service manager stops the main process only
    pytest.param(signal.SIGINT, True, 130, marks=pytest.mark.slow),  # Ctrl-C reaches the whole process group
])
def test_an_interrupt_stops_ffmpeg_and_the_server_and_leaves_nothing(tmp_path, signal_number, to_group, exit_code):
    clip = synthesize(ClipShape("interrupt-640x360-24", 640, 360, Fraction(24)), tmp_path / "long.mp4", Fraction(12))
    process, out = _start_long_run(tmp_path, clip)
    children = psutil.Process(process.pid).children(recursive=True)
    time.sleep(1)
    started = time.monotonic()
    if to_group:
        os.killpg(process.pid, signal_number)
    else:
        process.send_signal(signal_number)
    _, err = process.communicate(timeout=60)
    stopped_s = time.monotonic() - started

    assert process.returncode == exit_code
    assert stopped_s < 10, f"took {stopped_s:.1f} s"
    name = signal.Signals(signal_number).name
    assert f"postprod: interrupted by {name}; stopped 1 ffmpeg process(es) and 1 other child process(es)" in err
    assert "nothing was renamed into place after the signal" in err
    assert "Traceback" not in err and "ConnectError" not in err
    psutil.wait_procs(children, timeout=5)
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE], \
        "ffmpeg and the temporary Prefect server are gone"
    assert list(out.iterdir()) == []
