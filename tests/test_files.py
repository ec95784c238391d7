"""The one atomic text writer: a reader sees the old file or the new one, never half of either; partial
names of their own per process, and which partials a later run or a stop removes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.files import partial_path, partial_writer, write_text_atomically
from pipeline.media.stopping import holding, remove_held_partials, remove_stale_partials


def test_a_write_replaces_the_file_and_leaves_no_partial(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    assert write_text_atomically(target, "new ünïcode\n") == target
    assert target.read_text(encoding="utf-8") == "new ünïcode\n"
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomically(target, "half written \udc80 never lands")
    assert target.read_text() == "old"
    assert not partial_path(target).exists()


def _in_subprocess(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True)


def test_each_process_writes_under_a_partial_name_of_its_own(tmp_path):
    target = tmp_path / "film.mp4"
    other = _in_subprocess(f"""
        from pathlib import Path
        from pipeline.files import partial_path
        print(partial_path(Path({str(target)!r})).name)
    """)
    other_name = other.communicate()[0].strip()
    own_name = partial_path(target).name
    assert own_name != other_name
    for name, pid in ((own_name, os.getpid()), (other_name, other.pid)):
        assert name.startswith(".film.mp4.") and name.endswith(".partial")
        assert partial_writer(tmp_path / name).pid == pid
    assert partial_path(target) == partial_path(target), "one name per target within a process"
    assert partial_path(target, "signing").name.startswith(".film.mp4.signing.")


def test_two_processes_writing_one_file_each_land_whole_and_leave_no_partial(tmp_path):
    """Without names of their own, one writer renames the other's half-written file into place and
    then fails to find its own."""
    target = tmp_path / "manifest.json"
    size, rounds = 500_000, 80
    writers = [_in_subprocess(f"""
        from pathlib import Path
        from pipeline.files import write_text_atomically
        for _ in range({rounds}):
            write_text_atomically(Path({str(target)!r}), {letter!r} * {size})
        print("done")
    """) for letter in "ab"]
    seen = set()
    while any(writer.poll() is None for writer in writers):
        if target.exists():
            text = target.read_text()
            assert len(text) == size and len(set(text)) == 1, "a reader saw half a file"
            seen.add(text[0])
    assert [writer.communicate()[0].strip() for writer in writers] == ["done", "done"]
    assert [writer.returncode for writer in writers] == [0, 0]
    assert [path.name for path in tmp_path.iterdir()] == ["manifest.json"]


def _partial_of(folder, name: str, host: str, pid: int) -> Path:
    path = folder / f".{name}.{host}-{pid}-0123abcd.partial"
    path.write_bytes(b"x")
    return path


def test_a_later_run_removes_dead_writers_partials_and_leaves_live_ones(tmp_path):
    host = partial_writer(partial_path(tmp_path / "x")).host
    exited = _in_subprocess("pass")
    exited.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        legacy = tmp_path / ".crashed.mp4.partial"
        legacy.write_bytes(b"x")
        dead = _partial_of(tmp_path, "dead.mp4", host, exited.pid)
        live = _partial_of(tmp_path, "live.mp4", host, running.pid)
        remote_now = _partial_of(tmp_path, "remote.mp4", "0badf00d", exited.pid)
        remote_old = _partial_of(tmp_path, "remote-old.mp4", "0badf00d", exited.pid)
        two_days_ago = time.time() - 2 * 24 * 3600
        os.utime(remote_old, (two_days_ago, two_days_ago))
        own = partial_path(tmp_path / "own.mp4")
        own.write_bytes(b"x")
        assert sorted(remove_stale_partials(tmp_path)) == sorted([legacy, dead, remote_old])
        assert sorted(path.name for path in tmp_path.iterdir()) == sorted(p.name for p in (live, remote_now, own))
    finally:
        running.kill()
        running.wait()


def test_a_stop_removes_its_own_and_its_dead_workers_partials_not_a_live_writers(tmp_path):
    own = partial_path(tmp_path / "film.mp4")
    own.write_bytes(b"x")
    worker = _in_subprocess("pass")
    worker.wait()
    stopped_worker = _partial_of(tmp_path, "film.qc.html", partial_writer(own).host, worker.pid)
    other_machine = _partial_of(tmp_path, "film.mp4", "0badf00d", 4242)
    with holding(tmp_path):
        assert sorted(remove_held_partials()) == sorted([own, stopped_worker])
    assert [path.name for path in tmp_path.iterdir()] == [other_machine.name]
