"""Sound with known onsets for measuring onset detection: snippets of real speech, singing and
underwater sound from the development clips, and synthetic knocks and plucks, placed at chosen
instants over a bed (room tone, a music pad, real underwater or outdoor ambience).

Each event fades in over 20 ms (5 ms for effects) and out over 50 ms, so it starts exactly where it
is placed and its end is not a second onset; it is mixed 6 to 18 dB above the bed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.analysis.onsets import mono_samples
from pipeline.analysis.sound_starts import ANALYSIS_RATE_HZ as RATE

DEVCLIPS = Path("../shared/devclips")
BEDS = ("room", "music", "underwater", "outdoor")
EVENTS = ("speech", "effect", "music", "pluck")
SPEECH_TUNING = ("ai_infinitetalk_speech_a.mp4", "speech_face_2.mp4", "ai_latentsync_compare_1.mp4", "face_driving_d6.mp4")
SPEECH_VALIDATION = ("ai_infinitetalk_speech_b.mp4", "speech_face_5.mp4", "ai_infinitetalk_dubbing_a.mp4",
                     "speech_latentsync_demo2_portrait_hevc.mp4")
BED_DB = -35.0

_decoded: dict[str, np.ndarray] = {}


@dataclass(frozen=True)
class Mix:
    samples: np.ndarray
    """Mono float32 at 16 kHz."""
    onsets_s: np.ndarray
    """Where each event starts."""
    spans_s: tuple[tuple[float, float], ...]
    """Each event's start and end."""


def devclip_sound(name: str) -> np.ndarray:
    if name not in _decoded:
        _decoded[name] = mono_samples(DEVCLIPS / name)[0].astype(np.float64)
    return _decoded[name]


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2))) + 1e-12


def _active_start(sound: np.ndarray, length: int, rng) -> int | None:
    """A start where the sound is active over its first 100 ms (within 10 dB of its loud parts)."""
    hop = RATE // 100
    count = len(sound) // hop
    level = 10 * np.log10(np.mean(sound[: count * hop].reshape(count, hop) ** 2, axis=1) + 1e-12)
    first_100ms = np.convolve(level, np.ones(10) / 10, mode="valid")
    good = np.flatnonzero(first_100ms[: max(0, count - length // hop - 1)] > np.percentile(level, 90) - 10)
    return int(rng.choice(good)) * hop if len(good) else None


def _snippet(sound: np.ndarray, start: int, length: int, fade_in_s: float) -> np.ndarray:
    piece = sound[start : start + length].copy()
    fade_in, fade_out = int(fade_in_s * RATE), int(0.05 * RATE)
    piece[:fade_in] *= np.linspace(0, 1, fade_in)
    piece[-fade_out:] *= np.linspace(1, 0, fade_out)
    return piece


def _bed(kind: str, length: int, rng) -> np.ndarray:
    time = np.arange(length) / RATE
    if kind == "room":  # rumble (high-passed brown noise) with mains hum
        walk = np.cumsum(rng.standard_normal(length))
        walk -= np.convolve(walk, np.ones(801) / 801, mode="same")
        bed = walk / _rms(walk) + 0.3 * np.sin(2 * np.pi * 50 * time)
    elif kind == "music":  # a held chord with slow tremolo
        bed = sum(np.sin(2 * np.pi * f * time + rng.uniform(0, 6)) * (0.7 + 0.3 * np.sin(2 * np.pi * 0.2 * time + k))
                  for k, f in enumerate((130.8, 164.8, 196.0, 261.6)))
    else:  # real ambience, looped
        source = devclip_sound("real_vggsound_whale_shark.mp4" if kind == "underwater" else "mp3_in_mp4_outdoor.mp4")
        bed = np.tile(source, length // len(source) + 1)[:length]
    return bed / _rms(bed)


def _event(kind: str, length: int, speech: tuple[str, ...], rng) -> np.ndarray | None:
    time = np.arange(length) / RATE
    if kind == "pluck":
        pitch = 220 * 2 ** (int(rng.integers(0, 12)) / 12)
        tone = sum(np.sin(2 * np.pi * pitch * k * time) / k for k in (1, 2, 3))
        return tone * np.exp(-time / 0.3) * np.minimum(1, time / 0.005)
    if kind == "effect" and rng.random() < 0.5:  # a knock: click and a decaying body
        body = np.sin(2 * np.pi * rng.uniform(80, 300) * time)
        return (0.6 * rng.standard_normal(length) * np.exp(-time / 0.01) + body) * np.exp(-time / rng.uniform(0.03, 0.15))
    names = {"speech": speech, "music": ("ai_infinitetalk_i2v_8.mp4",), "effect": ("real_vggsound_whale_shark.mp4",)}[kind]
    sound = devclip_sound(names[int(rng.integers(0, len(names)))])
    start = _active_start(sound, length, rng)
    return None if start is None else _snippet(sound, start, length, 0.005 if kind == "effect" else 0.02)


def make_mix(bed: str, event: str, seed: int, speech: tuple[str, ...], seconds: float = 20.0) -> Mix:
    """Events 0.5 to 1.5 s apart over ``seconds`` of bed."""
    rng = np.random.default_rng(zlib.crc32(f"{bed}/{event}/{seed}".encode()))
    length = int(seconds * RATE)
    samples = _bed(bed, length, rng) * 10 ** (BED_DB / 20)
    onsets, spans = [], []
    at = 0.6 + rng.uniform(0, 0.4)
    while at < seconds - 1.2:
        piece = _event(event, int(rng.uniform(0.35, 0.8) * RATE), speech, rng)
        if piece is None:
            at += 0.5
            continue
        piece = piece / _rms(piece[: int(0.3 * RATE)]) * 10 ** ((BED_DB + rng.uniform(6, 18)) / 20)
        first = int(at * RATE)
        samples[first : first + len(piece)] += piece
        onsets.append(at)
        spans.append((at, at + len(piece) / RATE))
        at += len(piece) / RATE + rng.uniform(0.5, 1.5)
    return Mix(samples.astype(np.float32), np.array(onsets), tuple(spans))


@dataclass(frozen=True)
class OnsetScore:
    onsets: int
    found: int
    false_in_bed: int
    """Onsets found where only the bed plays (its own start at 0 excepted)."""


def score(found_s: np.ndarray, mix: Mix, early_s: float = 0.02, late_s: float = 0.05) -> OnsetScore:
    hits = sum(bool(np.any((found_s >= onset - early_s) & (found_s <= onset + late_s))) for onset in mix.onsets_s)
    in_bed = [time for time in found_s
              if time > 0.15 and not any(start - 0.05 <= time <= end + 0.1 for start, end in mix.spans_s)]
    return OnsetScore(len(mix.onsets_s), hits, len(in_bed))
