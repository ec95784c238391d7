"""The inbox of a batch: which files are jobs, how loose clips become jobs, where bad input goes, and
when a file being copied in has finished arriving.

The inbox's top level holds job files (``*.yaml``, ``*.yml``, ``*.json``) and loose clips; a clip a job file
names is that job's, not a job of its own. Names starting with ``.`` or ``_`` are not jobs: copy
tools write hidden temporary names, and ``_template.yaml`` is the job template for loose clips (a
job file without ``name`` and ``shots``). Sub-folders are not scanned, so job files can keep their
clips in one, and ``failed/`` holds what a batch set aside, each with a ``reason.txt``.
``.postprod-attempts/`` keeps the history of items that failed for a reason that may pass (see
:func:`record_attempt`), so they are set aside after a bounded number of tries.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import JobError
from pipeline.model.job import JOB_SCHEMA_VERSION, Job, job_for_clips, job_name_for_clip, load_job, parse_job
from pipeline.inputs import display_path, resolve_path
from pipeline.model.job_file import read_job_document

JOB_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
CLIP_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mxf"})
TEMPLATE_NAME = "_template.yaml"
FAILED_DIR_NAME = "failed"
REASON_FILE_NAME = "reason.txt"
ATTEMPTS_DIR_NAME = ".postprod-attempts"
DEFAULT_CLIP_PRESETS = ("web-h264-1080p",)
"""What a loose clip is finished into when the inbox has no template."""

Signature = tuple[int, int]
"""A file's size in bytes and modification time in nanoseconds."""


class TemplateError(JobError):
    """The inbox's ``_template.yaml`` is not a usable job template: the operator's to fix, not the clips'."""


@dataclass(frozen=True)
class InboxItem:
    """One unit of work found in an inbox."""

    path: Path
    """The job file, or the loose clip."""
    kind: Literal["job_file", "clip"]
    """A job file, or a clip finished with the inbox's template."""


@dataclass(frozen=True)
class BatchEntry:
    """An inbox item with its job, or the reason it has none."""

    item: InboxItem
    """Where it came from."""
    job: Job | None
    """The validated job; None when ``error`` says why not."""
    error: str | None = None
    """Why the item cannot run (a bad job file, a template error, a job name used twice)."""
    operator_error: bool = False
    """The error is the inbox's set-up (its ``_template.yaml``), not the item: the item stays put."""


def _is_candidate(path: Path) -> bool:
    return path.is_file() and not path.name.startswith((".", "_"))


def _mappings(value: Any) -> list[dict]:
    return [each for each in value if isinstance(each, dict)] if isinstance(value, list) else []


def referenced_files(job_file: Path) -> set[Path]:
    """The files a job file names relative to itself (shot sources, music, caption files, logo
    images, style fonts, ``enhance.model``), read leniently so a job file that fails validation
    still claims its files; unreadable YAML names nothing."""
    try:
        data = read_job_document(job_file)
    except JobError:
        return set()
    if not isinstance(data, dict):
        return set()
    named = [shot.get("source") for shot in _mappings(data.get("shots"))]
    for overlay in _mappings(data.get("overlays")):
        named += [overlay.get("captions"), overlay.get("image")]
    styles = data.get("styles")
    named += [style.get("font") for style in _mappings(list(styles.values()) if isinstance(styles, dict) else None)]
    for section, key in (("music", "source"), ("enhance", "model")):
        if isinstance(data.get(section), dict):
            named.append(data[section].get(key))
    base = resolve_path(job_file.parent, ".")
    return {resolve_path(base, name) for name in named if isinstance(name, str)}


def scan_inbox(inbox: Path) -> list[InboxItem]:
    """Job files, then loose clips no job file names, each sorted by name."""
    entries = sorted(path for path in inbox.iterdir() if _is_candidate(path))
    job_files = [path for path in entries if path.suffix.lower() in JOB_SUFFIXES]
    claimed = set().union(*(referenced_files(path) for path in job_files))
    clips = [
        path for path in entries
        if path.suffix.lower() in CLIP_SUFFIXES and path.resolve() not in claimed
    ]
    return [InboxItem(path, "job_file") for path in job_files] + [InboxItem(path, "clip") for path in clips]


def clip_job(clip: Path, inbox: Path, clip_presets: Iterable[str]) -> Job:
    """A one-shot job for a loose clip: the inbox's ``_template.yaml`` if it has one, else ``clip_presets``.

    Raises:
        TemplateError: the template is not YAML, or not a job mapping without ``name`` and ``shots``.
        JobError: a field is bad for this clip.
    """
    template = inbox / TEMPLATE_NAME
    name = job_name_for_clip(clip)
    if not template.is_file():
        return job_for_clips([clip.resolve()], list(clip_presets), name=name, origin=str(clip))
    try:
        data = read_job_document(template) or {}
    except JobError as error:
        raise TemplateError(str(error)) from error
    if not isinstance(data, dict) or {"name", "shots"} & data.keys():
        raise TemplateError(f"{template}: a template is a job mapping without 'name' and 'shots'")
    document: dict[str, Any] = {
        "version": JOB_SCHEMA_VERSION, **data, "name": name, "shots": [{"source": str(clip.resolve())}]
    }
    return parse_job(document, inbox.resolve(), origin=f"{template} (for {clip.name})")


def _load_entry_job(item: InboxItem, inbox: Path, clip_presets: tuple[str, ...],
                    known_presets: Collection[str]) -> Job:
    try:
        str(item.path).encode("utf-8")
    except UnicodeEncodeError:
        raise JobError(f"{display_path(item.path)}: the file name is not valid UTF-8; rename the file") from None
    if item.kind == "job_file":
        return load_job(item.path)
    job = clip_job(item.path, inbox, clip_presets)
    unknown = sorted({deliverable.preset for deliverable in job.deliverables} - set(known_presets))
    if known_presets and unknown and (inbox / TEMPLATE_NAME).is_file():
        raise TemplateError(f"{inbox / TEMPLATE_NAME}: unknown preset(s) {', '.join(unknown)}; "
                            f"known presets: {', '.join(sorted(known_presets))}")
    return job


def load_entries(items: list[InboxItem], inbox: Path, clip_presets: Iterable[str],
                 known_presets: Collection[str] = ()) -> list[BatchEntry]:
    """Validate each item's job; a bad one, or a second job of the same name, gets its reason.

    A broken ``_template.yaml`` (not YAML, or naming a preset not in ``known_presets``) is an
    operator error: its loose clips keep their place.
    """
    entries = []
    owners: dict[str, Path] = {}
    clip_presets = tuple(clip_presets)
    for item in items:
        try:
            job = _load_entry_job(item, inbox, clip_presets, known_presets)
        except JobError as error:
            entries.append(BatchEntry(item, None, str(error), operator_error=isinstance(error, TemplateError)))
            continue
        except Exception as error:  # noqa: BLE001 - one unreadable item must not stop the others
            entries.append(BatchEntry(item, None, f"{display_path(item.path)}: cannot be read as a job "
                                                  f"({type(error).__name__}: {error})"))
            continue
        if job.name in owners:
            entries.append(BatchEntry(
                item, None,
                f"{item.path}: job name {job.name!r} is already taken by {owners[job.name].name} in "
                "this inbox; outputs would overwrite each other, so rename one",
            ))
            continue
        owners[job.name] = item.path
        entries.append(BatchEntry(item, job))
    return entries


def quarantine(item: InboxItem, inbox: Path, reason: str, in_use: set[Path] = frozenset()) -> Path:
    """Move an item that failed for good into ``failed/NAME/`` with a ``reason.txt``.

    A job file takes along the files it names (clips, captions, logos, fonts, a model) that lie
    loose at the inbox's top level (a clip would otherwise be taken for a loose clip next time),
    unless another item in ``in_use`` still needs them. Job files (itself, another job, the
    template) are never taken along: a bad job cannot carry off another one.

    Returns:
        The folder the item now lies in.
    """
    failed = inbox / FAILED_DIR_NAME
    folder = failed / item.path.stem
    suffix = 2
    while folder.exists():
        folder = failed / f"{item.path.stem}-{suffix}"
        suffix += 1
    folder.mkdir(parents=True)
    moving = [item.path]
    if item.kind == "job_file":
        inbox_top = inbox.resolve()
        moving += sorted(
            path for path in referenced_files(item.path)
            if path.parent == inbox_top and path.is_file() and path not in in_use
            and path.suffix.lower() not in JOB_SUFFIXES
            and path != item.path.resolve()  # a job naming itself as a source moves once
        )
    for path in moving:
        shutil.move(path, folder / path.name)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    (folder / REASON_FILE_NAME).write_text(
        f"{stamp}: {display_path(item.path.name)} failed and was set aside so the next batch does not "
        f"retry it.\n\n{reason}\n\nFix the problem and move the files back into the inbox to run the job again.\n",
        encoding="utf-8", errors="backslashreplace",
    )
    clear_attempts(inbox, item)
    return folder


def _attempts_path(inbox: Path, item: InboxItem) -> Path:
    return inbox / ATTEMPTS_DIR_NAME / f"{item.path.name}.json"


def record_attempt(inbox: Path, item: InboxItem, reason: str) -> list[dict[str, str]]:
    """Add a failed attempt at ``item`` that may pass next time to its history in the inbox.

    Returns:
        Its attempts so far, oldest first, each ``{"utc": ..., "reason": ...}``.
    """
    path = _attempts_path(inbox, item)
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        history = []
    if not isinstance(history, list):
        history = []
    history.append({"utc": datetime.now(UTC).isoformat(timespec="seconds"), "reason": reason})
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(history, indent=2, ensure_ascii=True) + "\n", encoding="utf-8")
    return history


def clear_attempts(inbox: Path, item: InboxItem) -> None:
    """Forget ``item``'s failed attempts (it finished, or was set aside)."""
    _attempts_path(inbox, item).unlink(missing_ok=True)


def file_signature(path: Path) -> Signature | None:
    """Size and modification time, or None when the file is not there (or cannot be looked at: a
    symbolic link loop, a folder without permission), which the job's input check then names."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


@dataclass
class StabilityTracker:
    """Tells when a file has stopped changing: same size and modification time for ``settle_s``.

    A copy in progress keeps growing (or touching the file), so it never looks settled; there is no
    portable way to ask whether another process still has a file open for writing.
    """

    settle_s: float
    """How long a file must stay unchanged, in seconds."""
    _since: dict[Path, tuple[Signature, float]] = field(default_factory=dict)

    def observe(self, path: Path, signature: Signature | None, now_s: float) -> bool:
        """Record what ``path`` looks like at ``now_s``; True once it has not changed for ``settle_s``."""
        if signature is None:
            self._since.pop(path, None)
            return False
        seen = self._since.get(path)
        if seen is None or seen[0] != signature:
            self._since[path] = (signature, now_s)
        return self.unchanged_for_s(path, now_s) >= self.settle_s

    def unchanged_for_s(self, path: Path, now_s: float) -> float:
        """Seconds since ``path`` was last seen to change; 0 for a file not seen."""
        seen = self._since.get(path)
        return 0.0 if seen is None else now_s - seen[1]


@dataclass(frozen=True)
class WatchSettings:
    """How an inbox is watched."""

    settle_s: float = 10.0
    """A file must keep its size and modification time this long before it counts as arrived."""
    poll_s: float = 1.0
    """Seconds between looks at the inbox."""
    source_wait_s: float = 600.0
    """A job file whose files have not all arrived waits this long, then runs (and fails, naming
    the missing file)."""
    retry_s: float = 60.0
    """An item that failed transiently is handed over again after this many seconds, doubling with
    each failure in a row."""
    retry_max_s: float = 3600.0
    """The longest wait between retries of an item that keeps failing, in seconds."""


def watch_inbox(
    inbox: Path,
    on_ready: Callable[[list[InboxItem]], Iterable[Path] | None],
    settings: WatchSettings = WatchSettings(),
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Call ``on_ready`` with the items whose files have all finished arriving, until ``should_stop``.

    An item is handed over once per version of its files: dropping a changed copy hands it over
    again, and so does moving it out of the inbox and back. ``on_ready`` returns the paths of the
    items to try again (a transient failure left them in the inbox); each is handed over again after
    ``retry_s``, doubling per failure in a row up to ``retry_max_s``, so a fault that persists is not
    retried in a tight loop.
    """
    tracker = StabilityTracker(settings.settle_s)
    handed_over: dict[Path, tuple] = {}
    retry: dict[Path, tuple[float, int]] = {}  # item to try again -> (not before this clock time, failures in a row)
    while not should_stop():
        now = clock()
        ready = []
        items = scan_inbox(inbox)
        present = {item.path for item in items}
        handed_over = {path: version for path, version in handed_over.items() if path in present}
        retry = {path: due for path, due in retry.items() if path in present}
        for item in items:
            files = [item.path, *(sorted(referenced_files(item.path)) if item.kind == "job_file" else [])]
            signatures = {path: file_signature(path) for path in files}
            version = tuple(signatures.values())
            if handed_over.get(item.path) == version or now < retry.get(item.path, (now, 0))[0]:
                continue
            settled = [tracker.observe(path, signature, now) for path, signature in signatures.items()]
            if None in version:
                # Files still to come: wait for them, but not forever.
                arrived = tracker.unchanged_for_s(item.path, now) >= settings.source_wait_s
            else:
                arrived = all(settled)
            if arrived:
                ready.append(item)
                handed_over[item.path] = version
        if ready:
            again = set(on_ready(ready) or ())
            for item in ready:
                if item.path not in again:
                    retry.pop(item.path, None)
                    continue
                failures = retry.get(item.path, (0.0, 0))[1] + 1
                wait_s = min(settings.retry_s * 2 ** min(failures - 1, 32), settings.retry_max_s)
                retry[item.path] = (clock() + wait_s, failures)
                del handed_over[item.path]
        sleep(settings.poll_s)
