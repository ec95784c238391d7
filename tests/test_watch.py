"""The watch folder: a clip written slowly in pieces is handed over only once it is complete."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

from pipeline.jobs.finish import finish
from pipeline.service.inbox import InboxItem, StabilityTracker, WatchSettings, watch_inbox
from pipeline.model.job import job_for_clips, job_name_for_clip
from pipeline.media.probe import probe
from pipeline.media.synth import ClipShape, synthesize

PIECES = 6
PIECE_GAP_S = 0.3
SETTLE_S = 0.8


def test_a_file_counts_as_arrived_only_after_it_stops_changing():
    tracker = StabilityTracker(settle_s=5)
    path = Path("clip.mp4")
    assert not tracker.observe(path, (100, 1), now_s=0)
    assert not tracker.observe(path, (200, 2), now_s=4)  # still growing
    assert not tracker.observe(path, (200, 2), now_s=8.9)
    assert tracker.observe(path, (200, 2), now_s=9)
    assert not tracker.observe(path, None, now_s=10), "a file that went away is not there"
    assert not tracker.observe(path, (200, 2), now_s=11), "and starts over when it is back"


def test_watch_starts_the_job_only_after_a_slow_copy_completes(tmp_path):
    source = synthesize(ClipShape("tiny", 320, 180, Fraction(24)), tmp_path / "source.mp4", Fraction(1))
    data = source.read_bytes()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    arriving = inbox / "arriving.mp4"
    handed_over: list[tuple[float, int, list[InboxItem]]] = []
    finished_writing: list[float] = []
    manifests = []

    def copy_slowly() -> None:
        piece = len(data) // PIECES + 1
        with arriving.open("wb") as handle:
            for start in range(0, len(data), piece):
                handle.write(data[start:start + piece])
                handle.flush()
                finished_writing.append(time.monotonic())
                time.sleep(PIECE_GAP_S)

    def on_ready(items: list[InboxItem]) -> None:
        handed_over.append((time.monotonic(), arriving.stat().st_size, items))
        for item in items:
            job = job_for_clips([item.path], ["review-540p"], name=job_name_for_clip(item.path))
            manifests.append(finish(job, tmp_path / "out"))

    writer = threading.Thread(target=copy_slowly)
    writer.start()
    deadline = time.monotonic() + 120
    watch_inbox(inbox, on_ready, WatchSettings(settle_s=SETTLE_S, poll_s=0.05),
                should_stop=lambda: bool(handed_over) or time.monotonic() > deadline)
    writer.join()

    (handed_at, size_then, items), = handed_over
    assert [item.path for item in items] == [arriving]
    assert len(finished_writing) == PIECES, "written in pieces"
    assert size_then == len(data), "handed over at its full size"
    assert handed_at >= finished_writing[-1] + SETTLE_S * 0.9, "not before it had stayed unchanged"
    output = probe(tmp_path / "out" / "arriving_review-540p.mp4")
    assert output.video.frame_count == 24 and output.video.display_width == 960



def test_an_item_left_for_another_try_is_handed_over_again_after_a_growing_wait(tmp_path):
    for name in ("flaky.mp4", "fine.mp4"):
        (tmp_path / name).write_bytes(b"a clip")
    now = [0.0]
    calls: list[tuple[float, list[str]]] = []

    def on_ready(items: list[InboxItem]) -> list[Path]:
        calls.append((now[0], sorted(item.path.name for item in items)))
        # flaky.mp4 fails transiently three times, then passes.
        return [item.path for item in items if item.path.name == "flaky.mp4" and len(calls) < 4]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] == 70:  # fine.mp4 is moved out of the inbox and back, unchanged
            (tmp_path / "fine.mp4").rename(tmp_path / ".away.mp4")
        if now[0] == 72:
            (tmp_path / ".away.mp4").rename(tmp_path / "fine.mp4")

    settings = WatchSettings(settle_s=1, poll_s=1, retry_s=10, retry_max_s=25)
    watch_inbox(tmp_path, on_ready, settings, should_stop=lambda: now[0] > 100, clock=lambda: now[0], sleep=sleep)
    assert calls == [(1, ["fine.mp4", "flaky.mp4"]), (11, ["flaky.mp4"]), (31, ["flaky.mp4"]), (56, ["flaky.mp4"]),
                     (72, ["fine.mp4"])]


def test_the_watcher_retries_what_the_batch_summary_leaves_in_the_inbox(tmp_path, monkeypatch):
    from prefect.states import Crashed, Failed

    from flows.watch import items_to_retry

    monkeypatch.chdir(tmp_path)
    items = [InboxItem(Path("inbox") / name, "clip") for name in ("a.mp4", "b.mp4", "c.mp4")]
    results = [{"item": str((tmp_path / item.path).resolve()), "retry_next_run": name == "b.mp4"}
               for item, name in zip(items, ("a.mp4", "b.mp4", "c.mp4"))]
    summary = {"items": results, "counts": {"failed": 2}}
    assert items_to_retry(items, Failed(data=summary)) == [Path("inbox/b.mp4")]
    assert items_to_retry(items, Crashed(data=RuntimeError("server gone"))) == [item.path for item in items]
