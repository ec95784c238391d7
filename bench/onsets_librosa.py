"""librosa's onset functions against postprod's own: should ``librosa.onset`` replace them?

postprod has two hand-written sound analyses: the onset *envelope* sync cross-correlates with the
picture's events (``pipeline.analysis.onsets.sound_onsets``: spectral flux in 19 bands of 8 ms
windows, every millisecond) and the *detector* of where sounds start that keeps cut-downs from
cutting words (``pipeline.analysis.sound_starts.sound_starts``). librosa offers
``onset.onset_strength`` and ``onset.onset_detect``. Three measurements, each with truth made here:

(a) Synthetic clicks and tone beeps at known instants over near-silence and over white noise: each
    envelope's peaks (one peak picker, ``librosa.util.peak_pick``, its threshold tuned per envelope
    on seeds 0-3) and each detector, scored on seeds 4-7: share found, timing bias and spread,
    false onsets per minute.
(b) The cut-down use: words, effects and notes from the development clips placed at known instants
    over room tone, a music pad and real ambience (``tests/sound_truth.py``, the truth set of
    ``tests/test_sound_starts.py``): ``sound_starts`` against ``onset_detect``, its threshold tuned
    on the tuning mixes, scored on the validation mixes.
(c) The sync use, sync's event chain (``content_offset``: event pairs, then envelope correlation;
    the lip-sync fallback left out so that only the envelope differs) run with each envelope on
    the synthetic impact scenes of the sync tests (knocks a known time after the bounces) and on
    real development clips joined at known cuts, their sound shifted by known amounts
    (``fix_sync``). librosa's envelope times are corrected by the bias measured in (a) on the
    tuning seeds. (The talking-head clips alone, without cuts, give no envelope anything to match:
    none of the three determined any of 98 shifted copies; lip sync decides those.)

Then the cost: time per minute of sound, librosa's import and first call (numba compiles), and what
librosa adds to an install.

librosa is not a dependency of postprod; install it into your own environment to run this::

    .venv/bin/pip install librosa==0.11.0
    python bench/onsets_librosa.py
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import librosa
import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.io import wavfile

from machine import print_machine
from pipeline.analysis.onsets import EDGE_GUARD_S, ENVELOPE_RATE_HZ, SoundOnsets, mono_samples, picture_events, sound_onsets
from pipeline.analysis.sound_starts import ANALYSIS_RATE_HZ as RATE
from pipeline.analysis.sound_starts import sound_starts
from pipeline.analysis.sync import content_offset, fix_sync
from pipeline.media.probe import probe
from pipeline.media.runner import run_ffmpeg
from pipeline.media.synth import ClipShape, ImpactScene, synthesize_impacts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.sound_truth import (  # noqa: E402  (test helper, from the repository root)
    BEDS,
    DEVCLIPS,
    EVENTS,
    SPEECH_TUNING,
    SPEECH_VALIDATION,
    make_mix,
    score,
)

TUNING_SEEDS, VALIDATION_SEEDS = (0, 1, 2, 3), (4, 5, 6, 7)
SYNTHETIC_S = 20.0
BACKGROUNDS_DB = {"near-silence": -75.0, "white noise": -45.0}
EARLY_S, LATE_S = 0.02, 0.05
"""A detection counts for an onset from this long before it to this long after (as in (b))."""
DELTAS = (0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.45)
"""Peak-picking thresholds tried on the tuning part (librosa's default is 0.07)."""
SHIFTS_MS = (-200, -120, -40, 0, 40, 120, 200)
IMPACT_SCENES, IMPACT_SECONDS = 14, 10.0
MONTAGES, MONTAGE_PIECES = 24, 7
MONTAGE_SOURCES = ("ai_infinitetalk_speech_a", "ai_infinitetalk_dubbing_a", "ai_infinitetalk_i2v_8",
                   "ai_latentsync_compare_1", "speech_face_2", "face_driving_d6", "ai_infinitetalk_speech_b",
                   "speech_face_5", "face_driving_d10", "real_vggsound_whale_shark", "mp3_in_mp4_outdoor")
"""Development clips with sound that montages are cut from."""
ONE_FRAME_MS = 40
ADDED_DISTRIBUTIONS = ("librosa", "numba", "llvmlite", "scikit-learn", "soundfile", "soxr", "pooch", "audioread",
                       "lazy_loader", "joblib", "narwhals", "threadpoolctl", "platformdirs")
"""What ``pip install librosa`` added to postprod's environment."""


@dataclass(frozen=True)
class Envelope:
    """An onset envelope: strength per frame and each frame's time in seconds."""

    times_s: np.ndarray
    strength: np.ndarray


@dataclass(frozen=True)
class EnvelopeKind:
    name: str
    compute: Callable[[Path, np.ndarray], Envelope]
    """From the WAV file and its samples (16 kHz mono, as postprod decodes it)."""


def postprod_envelope(path: Path, samples: np.ndarray) -> Envelope:
    onsets = sound_onsets(path)
    return Envelope(onsets.start_s + np.arange(len(onsets.strength)) / ENVELOPE_RATE_HZ, onsets.strength)


def librosa_envelope(hop: int, n_fft: int, n_mels: int) -> Callable[[Path, np.ndarray], Envelope]:
    def compute(path: Path, samples: np.ndarray) -> Envelope:
        strength = librosa.onset.onset_strength(y=samples, sr=RATE, hop_length=hop, n_fft=n_fft, n_mels=n_mels,
                                                fmin=125.0, fmax=RATE / 2)
        return Envelope(librosa.times_like(strength, sr=RATE, hop_length=hop), strength)
    return compute


ENVELOPES = (
    EnvelopeKind("postprod onsets: 1 ms hop, 8 ms window", postprod_envelope),
    EnvelopeKind("librosa: 1 ms hop, n_fft 128, 24 mels", librosa_envelope(16, 128, 24)),
    EnvelopeKind("librosa defaults: 32 ms hop, n_fft 2048", librosa_envelope(512, 2048, 128)),
)


def pick_peaks(envelope: Envelope, delta: float) -> np.ndarray:
    """Times of the envelope's onsets by ``librosa.util.peak_pick`` with onset_detect's windows."""
    step_s = float(envelope.times_s[1] - envelope.times_s[0])

    def frames(seconds: float) -> int:
        return max(1, round(seconds / step_s))

    span = envelope.strength.max() - envelope.strength.min()
    normalised = (envelope.strength - envelope.strength.min()) / (span or 1.0)
    peaks = librosa.util.peak_pick(normalised, pre_max=frames(0.03), post_max=1, pre_avg=frames(0.1),
                                   post_avg=frames(0.1) + 1, delta=delta, wait=frames(0.03))
    return envelope.times_s[peaks]


def librosa_detect(samples: np.ndarray, delta: float, hop: int = 512, n_fft: int = 2048) -> np.ndarray:
    strength = librosa.onset.onset_strength(y=samples, sr=RATE, hop_length=hop, n_fft=n_fft)
    return librosa.onset.onset_detect(onset_envelope=strength, sr=RATE, hop_length=hop, units="time", delta=delta)


# (a) Synthetic events at known instants ---------------------------------------------------------------

@dataclass(frozen=True)
class Synthetic:
    path: Path
    samples: np.ndarray
    onsets_s: np.ndarray


def synthetic(seed: int, background: str, folder: Path) -> Synthetic:
    """Clicks (a 2 ms noise burst, decaying) and beeps (60 ms of a tone, 1 ms attack) 0.3 to 0.9 s
    apart, each -35 to -10 dBFS, over ``background``."""
    rng = np.random.default_rng(zlib.crc32(f"{background}/{seed}".encode()))
    length = int(SYNTHETIC_S * RATE)
    signal = rng.standard_normal(length) * 10 ** (BACKGROUNDS_DB[background] / 20)
    onsets, at = [], 0.5 + rng.uniform(0, 0.3)
    while at < SYNTHETIC_S - 0.5:
        time_s = np.arange(int(0.08 * RATE)) / RATE
        if rng.random() < 0.5:
            event = rng.standard_normal(len(time_s)) * np.exp(-time_s / 0.002)
        else:
            event = np.sin(2 * np.pi * rng.uniform(300, 4000) * time_s) * np.minimum(1, time_s / 0.001)
            event *= np.clip((0.06 - time_s) / 0.01, 0, 1)
        event *= 10 ** (rng.uniform(-35, -10) / 20) / np.sqrt(np.mean(event[: int(0.01 * RATE)] ** 2))
        first = int(round(at * RATE))
        signal[first : first + len(event)] += event
        onsets.append(first / RATE)
        at += rng.uniform(0.3, 0.9)
    path = folder / f"synthetic-{background.replace(' ', '-')}-{seed}.wav"
    wavfile.write(path, RATE, signal.astype(np.float32))
    decoded, _ = mono_samples(path)
    return Synthetic(path, decoded, np.array(onsets))


@dataclass(frozen=True)
class Detection:
    onsets: int
    found: int
    errors_ms: tuple[float, ...]
    false: int
    minutes: float

    def __add__(self, other: Detection) -> Detection:
        return Detection(self.onsets + other.onsets, self.found + other.found, self.errors_ms + other.errors_ms,
                         self.false + other.false, self.minutes + other.minutes)

    @property
    def f1(self) -> float:
        precision = self.found / max(1, self.found + self.false)
        recall = self.found / max(1, self.onsets)
        return 2 * precision * recall / max(1e-9, precision + recall)


def detection(found_s: np.ndarray, truth_s: np.ndarray, minutes: float) -> Detection:
    """Each onset's nearest detection within its window; every other detection (a second one for
    the same onset included) is false."""
    errors, used = [], set()
    for onset in truth_s:
        near = np.flatnonzero((found_s >= onset - EARLY_S) & (found_s <= onset + LATE_S))
        if len(near):
            best = int(near[np.argmin(np.abs(found_s[near] - onset))])
            used.add(best)
            errors.append(float(found_s[best] - onset) * 1000)
    return Detection(len(truth_s), len(errors), tuple(errors), len(found_s) - len(used), minutes)


def tuned_delta(score_with: Callable[[float], Detection]) -> float:
    return max(DELTAS, key=lambda delta: score_with(delta).f1)


def measure_synthetic(folder: Path) -> tuple[Table, dict[str, float]]:
    """Table (a), and each librosa envelope's timing bias on the tuning seeds (seconds)."""
    cases = {seeds: [synthetic(seed, background, folder) for seed in seeds for background in BACKGROUNDS_DB]
             for seeds in (TUNING_SEEDS, VALIDATION_SEEDS)}
    minutes = SYNTHETIC_S / 60
    table = Table(title="(a) clicks and beeps at known instants: validation seeds 4-7 (threshold tuned on 0-3)")
    for column in ("onsets from", "threshold", "found", "bias ms", "p95 |error - bias| ms", "false /min"):
        table.add_column(column)
    biases = {}

    def add_row(name: str, threshold: str, result: Detection) -> None:
        errors = np.array(result.errors_ms)
        bias = float(np.median(errors)) if len(errors) else float("nan")
        spread = float(np.percentile(np.abs(errors - bias), 95)) if len(errors) else float("nan")
        table.add_row(name, threshold, f"{result.found}/{result.onsets}", f"{bias:+.1f}", f"{spread:.1f}",
                      f"{result.false / result.minutes:.2f}")

    for kind in ENVELOPES:
        envelopes = {seeds: [(kind.compute(case.path, case.samples), case) for case in group]
                     for seeds, group in cases.items()}

        def scored(seeds: tuple[int, ...], delta: float) -> Detection:
            return sum((detection(pick_peaks(envelope, delta), case.onsets_s, minutes)
                        for envelope, case in envelopes[seeds]), Detection(0, 0, (), 0, 0.0))

        delta = tuned_delta(lambda value: scored(TUNING_SEEDS, value))
        biases[kind.name] = float(np.median(scored(TUNING_SEEDS, delta).errors_ms)) / 1000
        add_row(f"envelope: {kind.name}", f"peak_pick {delta}", scored(VALIDATION_SEEDS, delta))

    def detector(seeds: tuple[int, ...], find: Callable[[np.ndarray], np.ndarray]) -> Detection:
        return sum((detection(find(case.samples), case.onsets_s, minutes) for case in cases[seeds]),
                   Detection(0, 0, (), 0, 0.0))

    add_row("detector: postprod sound_starts", "its own", detector(VALIDATION_SEEDS, sound_starts))
    add_row("detector: librosa onset_detect", "0.07 (default)",
            detector(VALIDATION_SEEDS, lambda samples: librosa_detect(samples, 0.07)))
    delta = tuned_delta(lambda value: detector(TUNING_SEEDS, lambda samples: librosa_detect(samples, value)))
    add_row("detector: librosa onset_detect", f"{delta} (tuned)",
            detector(VALIDATION_SEEDS, lambda samples: librosa_detect(samples, delta)))
    return table, biases


# (b) The cut-down use ------------------------------------------------------------------------------------

def measure_cutdown() -> Table:
    splits = {"tuning": (SPEECH_TUNING, (1, 2)), "validation": (SPEECH_VALIDATION, (3, 4))}
    mixes = {split: [make_mix(bed, event, seed, speech) for bed in BEDS for event in EVENTS for seed in seeds]
             for split, (speech, seeds) in splits.items()}

    def total(split: str, find: Callable[[np.ndarray], np.ndarray]) -> tuple[int, int, int, float]:
        scores = [score(find(mix.samples), mix) for mix in mixes[split]]
        return (sum(s.onsets for s in scores), sum(s.found for s in scores), sum(s.false_in_bed for s in scores),
                len(scores) * 20 / 60)

    def f1(split: str, find: Callable[[np.ndarray], np.ndarray]) -> float:
        onsets, found, false, _ = total(split, find)
        return Detection(onsets, found, (), false, 1.0).f1

    table = Table(title="(b) words, effects and notes over beds (tests/sound_truth.py): validation mixes")
    for column in ("detector", "threshold", "found", "found share", "in bed only", "per min"):
        table.add_column(column)
    candidates = [("postprod sound_starts", "its own", sound_starts),
                  ("librosa onset_detect", "0.07 (default)", lambda samples: librosa_detect(samples, 0.07))]
    delta = max(DELTAS, key=lambda value: f1("tuning", lambda samples: librosa_detect(samples, value)))
    candidates.append(("librosa onset_detect", f"{delta} (tuned)", lambda samples: librosa_detect(samples, delta)))
    fine = max(DELTAS, key=lambda value: f1("tuning", lambda samples: librosa_detect(samples, value, 80, 512)))
    candidates.append(("librosa onset_detect, 5 ms hop", f"{fine} (tuned)",
                       lambda samples: librosa_detect(samples, fine, 80, 512)))
    for name, threshold, find in candidates:
        onsets, found, false, minutes = total("validation", find)
        table.add_row(name, threshold, f"{found}/{onsets}", f"{found / onsets:.3f}", str(false), f"{false / minutes:.2f}")
    return table


# (c) The sync use ----------------------------------------------------------------------------------------

def as_sound_onsets(envelope: Envelope, bias_s: float, samples: np.ndarray, first_time_s: float) -> SoundOnsets:
    """A librosa envelope in the form sync reads: on the 1 kHz grid, its times corrected by the bias
    measured in (a), the same edge guard as postprod's."""
    start_s = first_time_s + float(envelope.times_s[0]) - bias_s
    grid = float(envelope.times_s[0]) + np.arange(int((envelope.times_s[-1] - envelope.times_s[0]) * ENVELOPE_RATE_HZ) + 1) / ENVELOPE_RATE_HZ
    strength = np.interp(grid, envelope.times_s, envelope.strength)
    guard = round(EDGE_GUARD_S * ENVELOPE_RATE_HZ)
    strength[:guard] = 0.0
    strength[max(0, len(strength) - guard) :] = 0.0
    return SoundOnsets(start_s=start_s, strength=strength, peak_level=float(np.abs(samples).max(initial=0.0)))


def no_lips() -> tuple[None, str]:
    return None, "left out: only the sound envelope is compared"


@dataclass(frozen=True)
class SyncCase:
    """A picture and copies of its sound, each with the offset sync should measure."""

    kind: str
    picture: Path
    sounds: tuple[tuple[Path, int], ...]
    """(file with the picture and a sound, true offset in ms)."""


def impact_cases(folder: Path) -> list[SyncCase]:
    """``pipeline.media.synth``'s impact scenes (the sync tests' harder truth): a bouncing ball
    heard as knocks over pink noise, murmurs no picture matches, a silent distractor; the knocks
    sound a known time after the bounces."""
    cases = []
    for seed in range(IMPACT_SCENES):
        shape = ClipShape(f"impacts-{seed}", 480, 270, Fraction(24 if seed % 2 else 30))
        draw = np.random.default_rng(seed)
        impacts, at = [], float(draw.uniform(0.3, 0.9))
        while (at := at + float(draw.uniform(0.35, 1.1))) < IMPACT_SECONDS - 0.6:
            impacts.append(Fraction(round(at * shape.frame_rate)) / shape.frame_rate)
        murmurs = tuple(Fraction(round(float(draw.uniform(0.2, IMPACT_SECONDS - 0.5)), 3))
                        for _ in range(int(draw.integers(2, 7))))
        shift_ms = SHIFTS_MS[seed % len(SHIFTS_MS)]
        scene = ImpactScene(tuple(impacts), Fraction(shift_ms, 1000), murmurs, noise_seed=seed)
        path = synthesize_impacts(shape, folder / f"impacts-{seed}.mp4", Fraction(IMPACT_SECONDS), scene)
        cases.append(SyncCase("impact scenes (synthetic)", path, ((path, shift_ms),)))
    return cases


def montage_cases(folder: Path) -> list[SyncCase]:
    """Real clips with sound joined at known cuts (1 to 2.2 s pieces, whole frames at 25 fps, each
    piece's picture and sound cut together), then the sound shifted by known amounts."""
    cases = []
    for seed in range(MONTAGES):
        draw = np.random.default_rng(1000 + seed)
        inputs, chains = [], []
        for index in range(MONTAGE_PIECES):
            clip = DEVCLIPS / f"{MONTAGE_SOURCES[int(draw.integers(0, len(MONTAGE_SOURCES)))]}.mp4"
            frames = int(draw.integers(25, 56))
            start_s = float(draw.uniform(0, float(probe(clip).duration_s) - frames / 25 - 0.1))
            inputs += ["-ss", f"{start_s:.3f}", "-t", f"{frames / 25:.2f}", "-i", str(clip)]
            chains.append(f"[{index}:v]scale=320:180:force_original_aspect_ratio=decrease,pad=320:180:-1:-1,"
                          f"fps=25,format=yuv420p,setsar=1,trim=end_frame={frames},setpts=PTS-STARTPTS[v{index}];"
                          f"[{index}:a]aresample=48000,aformat=channel_layouts=mono,"
                          f"atrim=end={frames / 25:.2f},asetpts=PTS-STARTPTS[a{index}]")
        joined = "".join(f"[v{index}][a{index}]" for index in range(MONTAGE_PIECES))
        graph = ";".join(chains) + f";{joined}concat=n={MONTAGE_PIECES}:v=1:a=1[v][a]"
        path = folder / f"montage-{seed}.mp4"
        run_ffmpeg([*inputs, "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac", "-b:a", "128k", str(path)])
        info = probe(path)
        sounds = tuple((path if shift == 0 else fix_sync(path, -shift, folder / f"montage-{seed}{shift:+d}.mp4", info),
                        shift) for shift in SHIFTS_MS)
        cases.append(SyncCase("real clips joined at known cuts", path, sounds))
    return cases


def measure_sync(cases: list[SyncCase], biases: dict[str, float]) -> Table:
    results: dict[tuple[str, str], list[tuple[int, int | None, str | None]]] = {}
    for case in cases:
        picture = picture_events(case.picture)
        for path, truth_ms in case.sounds:
            samples, first_time_s = mono_samples(path)
            for kind in ENVELOPES:
                if kind.compute is postprod_envelope:
                    sound = sound_onsets(path)
                else:
                    sound = as_sound_onsets(kind.compute(path, samples), biases[kind.name], samples, first_time_s)
                found = content_offset(picture, sound, no_lips)
                results.setdefault((case.kind, kind.name), []).append((truth_ms, found.offset_ms, found.method))
    table = Table(title=f"(c) sync with known offsets, {len(SHIFTS_MS)} shifts from {min(SHIFTS_MS)} to "
                        f"{max(SHIFTS_MS)} ms (event pairs, then envelope correlation; lips left out)")
    for column in ("truth set", "envelope", "determined", "within 1 frame", "beyond 2 frames", "largest error ms",
                   "by pairs / correlation"):
        table.add_column(column)
    for (truth_set, name), rows in results.items():
        errors = [abs(offset - truth) for truth, offset, _ in rows if offset is not None]
        methods = [method for _, offset, method in rows if offset is not None]
        table.add_row(truth_set, name, f"{len(errors)}/{len(rows)}", str(sum(e <= ONE_FRAME_MS for e in errors)),
                      str(sum(e > 2 * ONE_FRAME_MS for e in errors)), str(max(errors, default="-")),
                      f"{methods.count('event_pairs')} / {methods.count('event_correlation')}")
    return table


# Cost ----------------------------------------------------------------------------------------------------

def cpu_seconds(run: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def measure_cost(folder: Path) -> Table:
    minute = synthetic(99, "white noise", folder)
    path = folder / "minute.wav"
    wavfile.write(path, RATE, np.tile(minute.samples, 3))
    samples, _ = mono_samples(path)
    minutes = len(samples) / RATE / 60
    decode_s = cpu_seconds(lambda: mono_samples(path))
    table = Table(title="Cost: CPU seconds per minute of sound (best of 3; decoding excluded)")
    table.add_column("what")
    table.add_column("CPU s / min")
    table.add_row("postprod onsets envelope", f"{(cpu_seconds(lambda: sound_onsets(path)) - decode_s) / minutes:.3f}")
    for kind in ENVELOPES[1:]:
        table.add_row(kind.name, f"{cpu_seconds(lambda: kind.compute(path, samples)) / minutes:.3f}")
    table.add_row("postprod sound_starts", f"{cpu_seconds(lambda: sound_starts(samples)) / minutes:.3f}")
    table.add_row("librosa onset_detect (defaults)", f"{cpu_seconds(lambda: librosa_detect(samples, 0.07)) / minutes:.3f}")
    for run in ("first process (numba compiles, empty cache)", "next process (numba's cache)"):
        fresh = subprocess.run(
            [sys.executable, "-c", "import time; started = time.perf_counter(); import librosa, numpy; "
             "imported = time.perf_counter(); librosa.onset.onset_strength(y=numpy.zeros(16000, 'float32'), sr=16000); "
             "print(imported - started, time.perf_counter() - imported)"],
            capture_output=True, text=True, check=True, env={**os.environ, "NUMBA_CACHE_DIR": str(folder / "numba")})
        import_s, first_call_s = map(float, fresh.stdout.split())
        table.add_row(f"librosa import + first onset_strength, {run} (wall s)", f"{import_s:.2f} + {first_call_s:.2f}")
    sizes = {name: sum(file.locate().stat().st_size for file in importlib.metadata.distribution(name).files or ()
                       if file.locate().is_file()) for name in ADDED_DISTRIBUTIONS}
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:4]
    table.add_row("install size librosa adds (MiB)", f"{sum(sizes.values()) / 2**20:.0f} ("
                  + ", ".join(f"{name} {size / 2**20:.0f}" for name, size in largest) + ")")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-sync", action="store_true", help="leave out (c), the slowest part")
    args = parser.parse_args()
    console = Console(width=200)
    print_machine(console)
    console.print(f"librosa {librosa.__version__}, numba {importlib.metadata.version('numba')}")
    if not DEVCLIPS.is_dir():
        sys.exit("needs ../shared/devclips/ (run from the repository root)")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        table, biases = measure_synthetic(folder)
        console.print(table)
        console.print(measure_cutdown())
        if not args.skip_sync:
            console.print(measure_sync([*impact_cases(folder), *montage_cases(folder)], biases))
        console.print(measure_cost(folder))


if __name__ == "__main__":
    main()
