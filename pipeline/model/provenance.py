"""What postprod did to a deliverable, as C2PA would record it: pure data from the plan.

The planner describes each deliverable's edit here (which sources went in, which actions were
applied, whether the material is declared AI-generated); :mod:`pipeline.media.content_credentials` turns
that into a signed C2PA manifest after the file is verified. Nothing here reads media.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

IPTC_SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = IPTC_SOURCE_TYPES + "trainedAlgorithmicMedia"
"""IPTC digital source type of material made by a generative model."""
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = IPTC_SOURCE_TYPES + "compositeWithTrainedAlgorithmicMedia"
"""IPTC digital source type of an edit that combines generated material with other elements."""
GENERATED_SOURCE_TYPES = frozenset({
    TRAINED_ALGORITHMIC_MEDIA,
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    IPTC_SOURCE_TYPES + "algorithmicMedia",
    IPTC_SOURCE_TYPES + "compositeSynthetic",
})
"""Source types that say a file is, or contains, generated material."""


@dataclass(frozen=True)
class EditAction:
    """One thing postprod did to the picture or sound, named as a C2PA action."""

    action: str
    """C2PA action label, e.g. ``c2pa.resized``."""
    description: str
    """What exactly, for a person reading the credentials."""


@dataclass(frozen=True)
class ProvenancePlan:
    """What a deliverable's content credentials will say."""

    sources: tuple[Path, ...]
    """The job's source files in first-use order: the manifest's ingredients."""
    actions: tuple[EditAction, ...]
    """What postprod did, after opening (one source) or placing (a sequence) the sources."""
    declared_ai_generated: bool
    """The job declares its material generated (``provenance.ai_generated``); a source whose own
    credentials say so counts as generated without it."""
    credentials: Literal["embed", "sidecar"]
    """Embed the manifest in the file, or write it beside the file as ``NAME.c2pa``."""


def describe_edit(
    sources: tuple[Path, ...],
    source_sizes: tuple[tuple[int, int], ...],
    source_rates: tuple[Fraction, ...],
    trimmed: bool,
    output_size: tuple[int, int],
    output_rate: Fraction,
    fit: str,
    encoding: str,
    overlay_kinds: tuple[str, ...],
    loudness_target_lufs: float | None,
    declared_ai_generated: bool,
    credentials: Literal["embed", "sidecar"],
) -> ProvenancePlan:
    """The actions a deliverable's credentials list, from what its plan does.

    Args:
        sources: Source files in first-use order.
        source_sizes: Each shot's display size (width, height), in shot order.
        source_rates: Each shot's frame rate, in shot order.
        trimmed: Some shot uses only part of its source (in/out points, a cut-down).
        output_size: The deliverable's raster (width, height).
        output_rate: The deliverable's frame rate.
        fit: How a source of another shape is fitted (``pad``, ``crop``, ``smart``...).
        encoding: The encoding in words, e.g. ``h264 High in mp4``.
        overlay_kinds: Kinds of the overlays burnt into this deliverable, in layer order.
        loudness_target_lufs: The integrated loudness the sound is normalised to; None: untouched.
        declared_ai_generated: The job declares its material generated.
        credentials: ``embed`` or ``sidecar``.
    """
    width, height = output_size
    actions = [EditAction("c2pa.transcoded", f"encoded as {encoding}")]
    if trimmed:
        actions.append(EditAction("c2pa.trimmed", "shots trimmed to their in and out points"))
    reshaped = [size for size in source_sizes if Fraction(*size) != Fraction(width, height)]
    if reshaped and fit != "pad":
        actions.append(EditAction("c2pa.cropped", f"reframed to {width}x{height} ({fit} fit)"))
    if any(size != output_size for size in source_sizes):
        actions.append(EditAction("c2pa.resized", f"scaled to {width}x{height}"))
    if any(rate != output_rate for rate in source_rates):
        actions.append(EditAction("c2pa.edited", f"frame rate converted to {_rate_text(output_rate)} fps"))
    if overlay_kinds:
        kinds = ", ".join(dict.fromkeys(kind.replace("_", " ") for kind in overlay_kinds))
        actions.append(EditAction("c2pa.edited", f"burnt in: {kinds}"))
    if loudness_target_lufs is not None:
        actions.append(EditAction("c2pa.edited", f"sound normalised to {loudness_target_lufs:g} LUFS"))
    return ProvenancePlan(tuple(sources), tuple(actions), declared_ai_generated, credentials)


def _rate_text(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.3f}"
