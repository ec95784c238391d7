"""Sound starts over beds: words, effects and notes placed at known instants over room tone, a music
pad and real ambience are found (relative to the local level, not the clip's median), and a
cut-down then never trims within 300 ms after one, at either end of the programme or at a picture
cut inside a shot. Truth: :mod:`tests.sound_truth`; tuned on ``SPEECH_TUNING`` seeds 1-2, validated on
``SPEECH_VALIDATION`` seeds 3-4 (the slow test prints both tables)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from pipeline.analysis.sound_activity import LEAD_GUARD_S, WORD_GUARD_S, sound_activity
from pipeline.plan.cutdown import Unit, choose_pieces
from pipeline.media.runner import run_ffmpeg
from pipeline.media.probe import probe
from pipeline.analysis.sound_starts import ANALYSIS_RATE_HZ, sound_starts
from tests.sound_truth import BEDS, DEVCLIPS, EVENTS, SPEECH_TUNING, SPEECH_VALIDATION, OnsetScore, make_mix, score

pytestmark = pytest.mark.skipif(not DEVCLIPS.is_dir(), reason="../shared/devclips is absent")
MIN_FOUND = 0.85
MAX_FALSE_PER_MINUTE = 1.0
RATE = 24


def _total(scores: list[OnsetScore]) -> tuple[float, int]:
    return sum(s.found for s in scores) / sum(s.onsets for s in scores), sum(s.false_in_bed for s in scores)


def test_words_effects_and_notes_over_beds_are_found():
    cases = [("room", "speech"), ("underwater", "effect"), ("music", "music"), ("outdoor", "pluck")]
    mixes = [make_mix(bed, event, 5, SPEECH_VALIDATION, seconds=10) for bed, event in cases]
    scores = [score(sound_starts(mix.samples), mix) for mix in mixes]
    found, false_hits = _total(scores)
    assert sum(s.onsets for s in scores) >= 20
    assert found >= MIN_FOUND and false_hits <= 1, scores


def test_a_sound_starting_with_the_file_starts_at_zero():
    burst = np.sin(2 * np.pi * 440 * np.arange(ANALYSIS_RATE_HZ) / ANALYSIS_RATE_HZ).astype(np.float32)
    assert sound_starts(burst) == pytest.approx([0.0], abs=0.02)
    assert len(sound_starts(np.zeros(ANALYSIS_RATE_HZ, np.float32))) == 0


@pytest.fixture(scope="module")
def speech_over_room_tone(tmp_path_factory):
    """12 s of picture with words over room tone, and the words' onsets."""
    mix = make_mix("room", "speech", 7, SPEECH_TUNING, seconds=12)
    folder = tmp_path_factory.mktemp("starts")
    raw = folder / "mix.f32"
    raw.write_bytes(mix.samples.tobytes())
    path = folder / "speech.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s=160x90:r={RATE}:d=12", "-f", "f32le", "-ar", str(ANALYSIS_RATE_HZ),
                "-ac", "1", "-i", str(raw), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                "-c:a", "pcm_s16le", "-ar", "48000", str(path.with_suffix(".mov"))])
    return path.with_suffix(".mov"), mix.onsets_s


def _cuts_a_word(frame: int, onsets_s: np.ndarray) -> bool:
    time_s = frame / RATE
    return bool(np.any((onsets_s > time_s - WORD_GUARD_S) & (onsets_s <= time_s + LEAD_GUARD_S)))


def test_cutdown_trims_never_cut_a_word_at_either_end_or_at_a_picture_cut(speech_over_room_tone):
    path, onsets_s = speech_over_room_tone
    sound = sound_activity(path, probe(path))
    assert score(sound.onset_times_s, make_mix("room", "speech", 7, SPEECH_TUNING, seconds=12)).found >= 0.85 * len(onsets_s)
    rate = Fraction(RATE)
    whole = [Unit(0, path, 0, 12 * RATE, activity=1.0)]
    for seconds in (2, 4, 6):
        [piece] = choose_pieces(whole, seconds * RATE, rate, {path: sound})
        for edge in (piece.first_frame, piece.first_frame + piece.frame_count):
            assert not _cuts_a_word(edge, onsets_s), (seconds, edge / RATE)
    # A picture cut inside the shot 100 ms after a word starts: the unit before it exactly fills the
    # cut-down, but keeping it whole would end the programme in that word.
    cut = round((onsets_s[3] + 0.1) * RATE)
    units = [Unit(0, path, 0, cut, activity=2.0, ends_shot=False),
             Unit(0, path, cut, 12 * RATE - cut, activity=1.0, starts_shot=False)]
    pieces = choose_pieces(units, cut, rate, {path: sound})
    assert sum(piece.frame_count for piece in pieces) == cut
    for piece in pieces:
        for edge in (piece.first_frame, piece.first_frame + piece.frame_count):
            assert edge in (0, 12 * RATE) or not _cuts_a_word(edge, onsets_s), edge / RATE


@pytest.mark.slow
@pytest.mark.parametrize("split", ["tuning", "validation"])
def test_every_bed_and_event(split, capsys):
    speech, seeds = (SPEECH_TUNING, (1, 2)) if split == "tuning" else (SPEECH_VALIDATION, (3, 4))
    rows, scores = [], []
    for bed in BEDS:
        for event in EVENTS:
            case = [score(sound_starts(mix.samples), mix) for mix in (make_mix(bed, event, seed, speech) for seed in seeds)]
            scores += case
            rows.append(f"| {bed} | {event} | {sum(s.onsets for s in case)} | {sum(s.found for s in case)} | "
                        f"{sum(s.false_in_bed for s in case)} |")
    found, false_hits = _total(scores)
    with capsys.disabled():
        print(f"\n{split}: | bed | events | placed | found | found in bed only |\n" + "\n".join(rows))
        print(f"{split}: found {found:.3f}, {false_hits} in bed only over {len(scores) * 20 / 60:.0f} min")
    assert found >= MIN_FOUND and false_hits <= MAX_FALSE_PER_MINUTE * len(scores) * 20 / 60
