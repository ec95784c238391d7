"""The facts planning is handed: read-only, following a source into the file read in its place,
and pickled for a task runner in another process."""

from __future__ import annotations

import pickle
from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.plan.facts import JobFacts


def test_facts_follow_a_source_into_its_substitute_and_stay_read_only():
    original, other, enhanced = Path("/clips/a.mp4"), Path("/clips/b.mp4"), Path("/out/.a.enhanced.mov")
    facts = JobFacts({original: "probe a", other: "probe b"}, sync_corrections={original: Fraction(-1, 25)},
                     reframe={original: "track a", other: "track b"}, loudness={"web": "gain"})
    moved = facts.with_sources({original: enhanced}, {enhanced: "probe of the intermediate"})
    assert moved.sync_corrections == {enhanced: Fraction(-1, 25)}
    assert moved.reframe == {enhanced: "track a", other: "track b"}
    assert moved.media[enhanced] == "probe of the intermediate" and moved.media[original] == "probe a"
    assert moved.loudness == {"web": "gain"}, "loudness is by deliverable, not by source"
    assert facts.sync_corrections == {original: Fraction(-1, 25)}, "the original facts are unchanged"
    with pytest.raises(TypeError):
        facts.reframe[other] = "changed"  # type: ignore[index]
    assert facts.with_loudness(None).loudness == {}


def test_facts_pickle_for_another_process():
    facts = JobFacts({Path("a.mp4"): "probe"}, music=None, loudness={"web": "gain"})
    again = pickle.loads(pickle.dumps(facts))
    assert dict(again.media) == {Path("a.mp4"): "probe"} and dict(again.loudness) == {"web": "gain"}
    with pytest.raises(TypeError):
        again.media[Path("b.mp4")] = "probe"  # type: ignore[index]
