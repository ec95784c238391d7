"""What postprod did to a deliverable, as C2PA would record it: pure data from the plan.

The planner describes each deliverable's edit in these terms (:mod:`pipeline.plan.provenance`: which
sources went in, which actions were applied, whether the material is declared AI-generated);
:mod:`pipeline.media.content_credentials` turns that into a signed C2PA manifest after the file is
verified. Nothing here reads media.
"""

from __future__ import annotations

from dataclasses import dataclass
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
