"""Analyses cached by content: a source analysed once is never decoded for that analysis again.

A result is filed under a key made of the source's SHA-256, the analysis's name and parameters, and
the fingerprint of the code that computes it (the source text of :mod:`pipeline.analysis` and
:mod:`pipeline.media`, the postprod version, and the versions of the decoders: PyAV's libav and the
ffmpeg binary), so a changed clip, a changed parameter, a new release of the analysis code or a new
decoder is a miss and nothing stale is ever read. Renaming or copying a clip,
running a second job over it, or changing a preset is a hit.

Results are pickled under ``$POSTPROD_CACHE_DIR`` (default ``$XDG_CACHE_HOME/postprod/analyses``,
else ``~/.cache/postprod/analyses``); ``POSTPROD_CACHE_DIR=off`` turns the cache off. The folder is
the operator's: job files cannot name it, and only postprod writes into it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pipeline
from pipeline.inputs import sha256_of_input
from pipeline.media.runner import decoder_versions

CACHE_DIR_VARIABLE = "POSTPROD_CACHE_DIR"
log = logging.getLogger(__name__)
Result = TypeVar("Result")


@dataclass(frozen=True)
class AnalysisRecord:
    """One analysis of one source in a job, for the manifest."""

    source: Path
    """The analysed file (for a programme's ``loudness``, the source of its first shot)."""
    analysis: str
    """Its name: ``sync``, ``reframe``, ``sound-activity``, ``loudness``."""
    from_cache: bool
    """Read from the cache (True) or computed by this job (False)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"source": str(self.source), "analysis": self.analysis, "from_cache": self.from_cache}


@cache
def code_fingerprint() -> str:
    """SHA-256 over the postprod version, the decoders' versions and the source of the analysis and
    media packages. A decoder upgrade can change decoded samples (a resampler, an AAC decoder's
    rounding), so results measured by another one are not reused."""
    digest = hashlib.sha256(pipeline.__version__.encode())
    digest.update(json.dumps(decoder_versions(), sort_keys=True).encode())
    root = Path(pipeline.__file__).parent
    for module in sorted([*root.joinpath("analysis").rglob("*.py"), *root.joinpath("media").rglob("*.py")]):
        digest.update(module.relative_to(root).as_posix().encode())
        digest.update(module.read_bytes())
    return digest.hexdigest()


def modules_fingerprint(*modules: ModuleType) -> str:
    """SHA-256 over the source of ``modules``: for a cached result that code outside the analysis
    and media packages also decides (see :func:`code_fingerprint`), a parameter that changes with it."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(module.__name__.encode())
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def analysis_key(analysis: str, source: Path, parameters: Mapping[str, Any]) -> str:
    """The key a result is filed under: SHA-256 over the source's content hash, the analysis's name
    and parameters and :func:`code_fingerprint`. The on-disk cache and the Prefect flow's cached
    analysis tasks both use it, so the two never disagree about what is the same analysis.

    Raises:
        MediaError: the source cannot be read.
    """
    return hashlib.sha256(json.dumps(
        {"analysis": analysis, "source": sha256_of_input(source), "parameters": parameters, "code": code_fingerprint()},
        sort_keys=True, default=str,
    ).encode()).hexdigest()


def naming(result: Result, source: Path) -> Result:
    """A cached result that names the file it analysed (a dataclass with a ``path``) handed back
    naming ``source``: the same content may have been analysed under another name."""
    if dataclasses.is_dataclass(result) and any(item.name == "path" for item in dataclasses.fields(result)):
        return dataclasses.replace(result, path=source)
    return result


@dataclass
class AnalysisCache:
    """A job's view of the cache: results in, results out, and a record of which were hits."""

    folder: Path | None
    """Where results live; None: nothing is cached (every analysis is computed)."""
    records: list[AnalysisRecord] = field(default_factory=list)
    """What this job analysed, in order, and whether each came from the cache."""
    _known: dict[tuple[str, Path, str], Any] = field(default_factory=dict, repr=False)
    """Results this job already has, by analysis, source and parameters: a later step asking for
    one (cut-down planning, for the sound activity the source pass measured) gets it again without
    a decode or a second record, even with the cache off."""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> AnalysisCache:
        """The cache ``POSTPROD_CACHE_DIR`` names, else the user's cache folder; ``off`` disables it."""
        configured = environ.get(CACHE_DIR_VARIABLE)
        if configured == "off":
            return cls(None)
        if configured:
            return cls(Path(configured))
        base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return cls(Path(base) / "postprod" / "analyses")

    def get_or_compute(self, analysis: str, source: Path, parameters: Mapping[str, Any],
                       compute: Callable[[], Result]) -> Result:
        """The cached result of ``analysis`` of ``source`` with ``parameters``, else ``compute()``'s,
        which is then stored. A cache entry that cannot be read is computed again, never trusted.
        A hit is handed back :func:`naming` ``source``.
        """
        known = (analysis, source, json.dumps(parameters, sort_keys=True, default=str))
        if known not in self._known:
            self._known[known] = self._get_or_compute(analysis, source, parameters, compute)
        return self._known[known]

    def _get_or_compute(self, analysis: str, source: Path, parameters: Mapping[str, Any],
                        compute: Callable[[], Result]) -> Result:
        if self.folder is None:
            result = compute()
            self.records.append(AnalysisRecord(source, analysis, False))
            return result
        entry = self._entry(self.folder, analysis, source, parameters)
        try:
            with entry.open("rb") as handle:
                result = pickle.load(handle)
        except FileNotFoundError:
            pass
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as error:
            log.warning("analysis cache: %s unreadable (%s); analysing %s again", entry, error, source.name)
        else:
            self.records.append(AnalysisRecord(source, analysis, True))
            return naming(result, source)
        result = compute()
        self.records.append(AnalysisRecord(source, analysis, False))
        self._store(entry, result)
        return result

    @staticmethod
    def _entry(folder: Path, analysis: str, source: Path, parameters: Mapping[str, Any]) -> Path:
        return folder / analysis / f"{analysis_key(analysis, source, parameters)}.pickle"

    @staticmethod
    def _store(entry: Path, result: Any) -> None:
        """Write atomically; a cache that cannot be written costs a re-analysis later, not the job."""
        partial = entry.with_name(f".{entry.name}.{os.getpid()}.partial")
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            with partial.open("wb") as handle:
                pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(partial, entry)
        except OSError as error:
            partial.unlink(missing_ok=True)
            log.warning("analysis cache: cannot write %s (%s)", entry, error)
