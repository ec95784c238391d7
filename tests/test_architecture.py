"""The import rules that keep ``pipeline/`` layered (docs/architecture.md).

Every ``import`` statement in the package is read with :mod:`ast` (function-level imports included,
so a deferred import cannot hide an upward arrow) and checked against three rules:

1. Arrows point down: a subpackage imports only from subpackages in lower layers (and from itself,
   :mod:`pipeline.errors`, :mod:`pipeline.files`, :mod:`pipeline.inputs` and the package root). Subpackages in one layer do
   not import each other.
2. ``pipeline/`` never imports Prefect: orchestration lives in ``flows/``.
3. Only ``pipeline/media/`` runs processes or opens media with PyAV. The analyses that still decode
   their own frames are listed in :data:`PYAV_OUTSIDE_MEDIA`, each with its reason.

Modules stay under :data:`MAX_MODULE_LINES` lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("model",),
    ("media",),
    ("analysis",),
    ("timeline",),
    ("plan",),
    ("prestage", "render"),
    ("qc",),
    ("export",),
    ("service", "jobs"),
)
"""Subpackages from the bottom up; a tuple of several is one layer of independent siblings."""

SHARED = {"pipeline", "pipeline.errors", "pipeline.files", "pipeline.inputs"}
"""Importable from every layer: the package root (its version), the error types, the atomic
text writer and the checks that open untrusted inputs safely."""

PYAV_OUTSIDE_MEDIA = {
    "pipeline.analysis.sync_report": "reads the frame rate and audio frame size the streams declare",
    "pipeline.analysis.sync_fix": "reads the source's audio bit rate to re-encode the shifted sound like it",
    "pipeline.analysis.loudness": "decodes a deliverable's sound to meter it",
    "pipeline.analysis.lipsync": "converts only the decoded frames the face tracker looks at, at its size",
}
"""Modules outside ``media/`` that open files with PyAV, and why. The source analyses of a job
(reframing, scene cuts, cut-down sound activity) take their frames and samples from the one
decode per source in :mod:`pipeline.media.source_decode`; moving these onto it too is the next step."""

MAX_MODULE_LINES = 550


def _module_name(path: Path) -> str:
    parts = path.relative_to(PIPELINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (``from a import b`` yields ``a`` and ``a.b``)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PIPELINE.rglob("*.py"))}


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PIPELINE / parts[1]).is_dir()) else None


def _rank(subpackage: str) -> int:
    return next(rank for rank, layer in enumerate(LAYERS) if subpackage in layer)


def test_every_subpackage_has_a_layer():
    on_disk = {path.name for path in PIPELINE.iterdir() if (path / "__init__.py").exists()}
    assert on_disk == {name for layer in LAYERS for name in layer}
    loose = {path.name for path in PIPELINE.glob("*.py")} - {"__init__.py", "errors.py", "files.py", "inputs.py"}
    assert not loose, f"modules outside a subpackage: {sorted(loose)}"


def test_imports_point_down_only():
    modules = _modules()
    upward = []
    for module, path in modules.items():
        own = _subpackage(module)
        if own is None:
            continue
        for name in _imports(path):
            if not name.startswith("pipeline.") or name in SHARED or name not in modules:
                continue
            other = _subpackage(name)
            if other is None or other == own:
                continue
            if _rank(other) >= _rank(own):
                upward.append(f"{module} imports {name} ({own} may not import {other})")
    assert not upward, "\n".join(sorted(upward))


def test_pipeline_never_imports_prefect():
    offenders = [module for module, path in _modules().items()
                 if any(name == "prefect" or name.startswith("prefect.") for name in _imports(path))]
    assert not offenders


def test_only_media_runs_processes_or_opens_media_with_pyav():
    offenders = []
    for module, path in _modules().items():
        if _subpackage(module) == "media":
            continue
        imported = {name.split(".")[0] for name in _imports(path)}
        if "subprocess" in imported:
            offenders.append(f"{module} imports subprocess: run ffmpeg through pipeline.media.runner")
        if "av" in imported and module not in PYAV_OUTSIDE_MEDIA:
            offenders.append(f"{module} imports av: open media through pipeline.media")
    assert not offenders, "\n".join(offenders)
    modules = _modules()
    stale = [module for module in PYAV_OUTSIDE_MEDIA if module not in modules or "av" not in {
        name.split(".")[0] for name in _imports(modules[module])}]
    assert not stale, f"listed as opening media with PyAV but no longer do: {stale}"


def test_modules_stay_small():
    too_long = []
    for module, path in _modules().items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{module}: {lines} lines")
    assert not too_long, "\n".join(too_long)
