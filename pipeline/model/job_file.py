"""Reading a job file: bounded in size and nesting, parsed once per version of the file.

Job files arrive from outside (agencies, colleagues, an inbox a service finishes unattended), so
the reader trusts nothing about them: it opens only regular files, refuses one over
:data:`MAX_JOB_FILE_BYTES` before reading it, refuses YAML whose aliases expand past
:data:`MAX_DOCUMENT_NODES` values, and keeps the parsed document keyed by the file's contents,
so a batch (which looks at each job file to scan the inbox, validate
it and set it aside) and a watch folder (which looks every second) parse each version once.
``*.json`` job files are read as JSON, ``*.yaml`` and ``*.yml`` as YAML.
"""

from __future__ import annotations

import functools
import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import JobError
from pipeline.inputs import display_path, has_utf8_name

MAX_JOB_FILE_BYTES = 256 * 1024
"""A job file larger than this is refused unread: a hand-written job is a few kilobytes, and the
service hands a validated job to Prefect, whose flow parameters are limited to 512 KB."""
MAX_DOCUMENT_NODES = 100_000
"""Values (mappings, lists, scalars) a job document may hold once YAML aliases are expanded: a
few aliases can otherwise stand for billions of values (a "billion laughs" document)."""
JSON_SUFFIX = ".json"


def read_job_document(path: Path) -> Any:
    """The parsed contents of a job file (a mapping for any valid job).

    Raises:
        JobError: the file is missing, not a regular file, too large, not UTF-8, not YAML (or JSON),
            or expands to too many values; the message names the file.
    """
    shown = display_path(path)
    if not has_utf8_name(path):
        raise JobError(f"{shown}: the job file's name is not valid UTF-8; rename it")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise JobError(f"{shown}: job file not found") from None
    except OSError as error:
        raise JobError(f"{shown}: cannot be opened ({error.strerror or error})") from None
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_JOB_FILE_BYTES:
        os.close(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise JobError(f"{shown}: a job file must be a regular file")
        raise JobError(f"{shown}: the job file is {status.st_size} bytes; the limit is {MAX_JOB_FILE_BYTES} bytes")
    with os.fdopen(descriptor, "rb") as handle:
        try:
            raw = handle.read(MAX_JOB_FILE_BYTES + 1)
        except OSError as error:
            raise JobError(f"{shown}: cannot be read ({error.strerror or error})") from None
    if len(raw) > MAX_JOB_FILE_BYTES:  # it grew after the check
        raise JobError(f"{shown}: the job file is over the limit of {MAX_JOB_FILE_BYTES} bytes")
    return _parse(raw, path.suffix.lower() == JSON_SUFFIX, shown)


@functools.lru_cache(maxsize=128)
def _parse(raw: bytes, is_json: bool, shown: str) -> Any:
    """Parse each distinct content once; callers treat the result as read-only."""
    kind = "JSON" if is_json else "YAML"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JobError(f"{shown}: cannot be read as {kind} (not UTF-8 text: {error})") from None
    try:
        document = json.loads(text) if is_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise JobError(f"{shown}: cannot be read as {kind} ({error})") from None
    _check_expanded_size(document, shown)
    return document


def _check_expanded_size(document: Any, shown: str) -> None:
    """Count values as validation would visit them (an alias once per use), up to the limit."""
    pending, count = [document], 0
    while pending:
        value = pending.pop()
        count += 1
        if count > MAX_DOCUMENT_NODES:
            raise JobError(f"{shown}: the job expands to more than {MAX_DOCUMENT_NODES} values "
                           "(YAML aliases repeated inside each other?)")
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
