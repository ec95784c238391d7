"""Event signals for sync analysis: when the picture changes and when sounds start.

Both are measured in presentation time, the decoders having applied edit lists, B-frame delay and
AAC priming, so a clip whose sound sits with its picture gives events at the same instants.

- Picture: every frame is decoded to a small grey image (160 px wide) and reduced to one event
  strength, the sum of two cues. *Appearance*: the onset of a change of most of the picture (a
  flash, a cut), dated to the first frame that shows it. *Motion change*: how abruptly things
  change speed or direction (an impact, a clap), from dense optical flow (DIS) forward and backward
  from a frame, dated to the frame where the motion turns. Only pixels that really changed count,
  so sensor noise on flat areas, where optical flow is meaningless, does not.
- Sound: spectral flux, the rise of energy in 19 log-spaced bands (125 Hz to 8 kHz) of 8 ms
  windows taken every millisecond, in mono at 16 kHz: a 1 kHz envelope of onset strength.

Frames are processed as they are decoded, three at a time, so memory stays flat in clip length.
:class:`PictureEventsMeter` and :class:`SoundOnsetsMeter` take their frames and samples from a
source pass (:mod:`pipeline.analysis.source_pass`) that feeds every analysis of a source at once;
:func:`picture_events` and :func:`sound_onsets` are the stand-alone paths.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.media.source_decode import Image, PictureNeed, SoundNeed, decode_source, has_audio

ENVELOPE_RATE_HZ = 1000
"""Samples per second of the event envelopes that are cross-correlated (1 ms resolution)."""
ANALYSIS_WIDTH_PX = 160
"""Width the picture is reduced to before analysis."""
EVENT_PULSE_MS = 5
"""Width of the pulse each picture event becomes on the 1 kHz grid, in milliseconds."""
BLOCK_PX = 8
"""Side of the blocks whose mean luma the appearance cue compares, in analysis pixels."""
MOTION_MASK_FLOOR = 6.0
"""Smallest frame-to-frame luma change (8-bit levels) that marks a pixel as moving."""
MOTION_MASK_NOISE_FACTOR = 9.0
"""A pixel counts as moving when its change exceeds this many times the frame's median change."""
NOVELTY_SPAN_FRAMES = 9
"""Frames in the running median a cue must rise above to count as an event."""
APPEARANCE_FLOOR = 0.5
"""Smallest unit of the appearance cue: a rise of the median block change, in 8-bit levels."""
MOTION_FLOOR = 0.02
"""Smallest unit of the motion cue: a motion change averaged over the picture, in analysis pixels
(a 12x12 pixel object jolted by 2 pixels a frame)."""
CUT_CHANGE_FACTOR = 4.0
"""A frame pair whose block change exceeds this many times the clip's median ..."""
CUT_CHANGE_FLOOR = 8.0
"""... plus this many 8-bit levels is a cut or a flash: optical flow across it is meaningless."""

ANALYSIS_RATE_HZ = 16000
"""Sample rate the sound is analysed at (mono)."""
FLUX_WINDOW_SAMPLES = 128
"""Hann window of the spectral flux, in samples at 16 kHz (8 ms)."""
FLUX_BANDS = 24
"""Log-spaced bands asked for; the lowest, narrower than a 125 Hz bin, merge, leaving 19."""
FLUX_COMPRESSION = 1e4
"""Band energy ``e`` is compressed to ``log(1 + FLUX_COMPRESSION * e)`` so quiet onsets count."""
EDGE_GUARD_S = 0.05
"""Onsets this close to either end of the sound are ignored, in seconds: a sound that starts or
stops with the file is an edit, not an event."""
FLUX_CHUNK_FRAMES = 2048
"""Spectral frames computed at once (1 MB of samples): working arrays this small are reused from one
chunk to the next and stay in the cache rather than being mapped afresh for each."""

@dataclass(frozen=True, eq=False)
class PictureEvents:
    """Visual event strength of every frame of a clip."""

    frame_times_s: np.ndarray
    """Presentation time of each frame in seconds, shape (frames,), ascending."""
    strength: np.ndarray
    """Event strength of each frame, dimensionless and >= 0 (0 for no event, a few for a clear
    one), shape (frames,)."""
    largest_change: float
    """Largest mean absolute luma difference between consecutive frames, in 8-bit levels
    (below 0.5 for a still picture)."""

    @property
    def frame_interval_s(self) -> float:
        """Median time between frames, in seconds."""
        if len(self.frame_times_s) < 2:
            return 0.0
        return float(np.median(np.diff(self.frame_times_s)))

    def envelope(self, origin_s: float, length: int) -> np.ndarray:
        """The events on the 1 kHz grid starting at ``origin_s``, shape (length,).

        Each event is a short Hann pulse centred on its frame's time rather than a one-sample
        impulse: frame times fall between milliseconds, and a match should not hinge on the last
        half millisecond of each.
        """
        impulses = np.zeros(length)
        positions = np.round((self.frame_times_s - origin_s) * ENVELOPE_RATE_HZ).astype(int)
        inside = (positions >= 0) & (positions < length)
        np.add.at(impulses, positions[inside], self.strength[inside])
        pulse = np.hanning(EVENT_PULSE_MS + 2)[1:-1]
        return np.convolve(impulses, pulse / pulse.max(), mode="same")


@dataclass(frozen=True, eq=False)
class SoundOnsets:
    """Onset strength of a clip's sound, sampled at 1 kHz."""

    start_s: float
    """Presentation time of the first envelope sample, in seconds."""
    strength: np.ndarray
    """Spectral flux per millisecond, >= 0, shape (samples,)."""
    peak_level: float
    """Largest absolute sample value of the mono mix, full scale 1.0 (0.0 for digital silence)."""

    @property
    def end_s(self) -> float:
        """Presentation time just after the last envelope sample, in seconds."""
        return self.start_s + len(self.strength) / ENVELOPE_RATE_HZ

    def envelope(self, origin_s: float, length: int) -> np.ndarray:
        """The onset strength placed on the 1 kHz grid starting at ``origin_s``, shape (length,)."""
        envelope = np.zeros(length)
        first = round((self.start_s - origin_s) * ENVELOPE_RATE_HZ)
        source_from = max(0, -first)
        target_from = max(0, first)
        count = min(len(self.strength) - source_from, length - target_from)
        if count > 0:
            envelope[target_from : target_from + count] = self.strength[source_from : source_from + count]
        return envelope


class PictureEventsMeter:
    """The picture events of frames fed one at a time, as a source pass
    (:mod:`pipeline.media.source_decode`) hands them out: every frame's luma plane, the form the
    cut detector takes, so one conversion serves both. Keeps three small frames and a few numbers
    per frame."""

    picture_need = PictureNeed((Image("luma"),))
    """Every frame's luma plane."""

    def __init__(self) -> None:
        self._times: list[float] = []
        self._block_change: list[float] = []
        self._mean_change: list[float] = []
        self._acceleration: list[float] = [0.0]
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._recent: deque[np.ndarray] = deque(maxlen=3)
        self._previous_blocks: np.ndarray | None = None

    def add_picture(self, index: int, time_s: float | None, images: tuple[np.ndarray, ...]) -> None:
        """Take the next frame's luma plane; a frame without a timestamp has no time to date an
        event by and is left out."""
        if time_s is None:
            return
        grey = _small_grey(images[0])
        blocks = _block_means(grey)
        if self._recent:
            self._mean_change.append(float(cv2.absdiff(grey, self._recent[-1]).mean()))
            self._block_change.append(float(np.median(np.abs(blocks - self._previous_blocks))))
        self._recent.append(grey)
        self._previous_blocks = blocks
        if len(self._recent) == 3:
            self._acceleration.append(_motion_change(self._flow, *self._recent))
        self._times.append(float(time_s))

    def result(self) -> PictureEvents:
        """The events of every frame fed so far."""
        times = self._times
        # The last frame has no frame after it to judge a change of motion by.
        acceleration = [*self._acceleration, 0.0] if len(times) > 1 else self._acceleration
        block_change = self._block_change
        change = np.array([block_change[0] if block_change else 0.0, *block_change])
        appearance = np.maximum(0.0, np.diff(change, prepend=change[0]))
        motion = _without_cuts(np.array(acceleration[: len(times)]), change)
        return PictureEvents(
            frame_times_s=np.array(times),
            strength=np.sqrt(_novelty(appearance, APPEARANCE_FLOOR)) + np.sqrt(_novelty(motion, MOTION_FLOOR)),
            largest_change=max(self._mean_change, default=0.0),
        )


def picture_events(path: Path) -> PictureEvents:
    """Decode the first video stream and measure the event strength of every frame.

    Raises:
        MediaError: the video cannot be decoded.
    """
    meter = PictureEventsMeter()
    decode_source(path, [meter])
    return meter.result()


def _small_grey(luma: np.ndarray) -> np.ndarray:
    """``luma`` (a frame's 8-bit luma plane) at analysis width, uint8, shape (height, ANALYSIS_WIDTH_PX)."""
    height = max(BLOCK_PX, round(ANALYSIS_WIDTH_PX * luma.shape[0] / luma.shape[1]))
    # Area averaging is quick only for small reduction factors: skipping rows and columns first
    # keeps it so, while each analysis pixel still averages at least 4x4 source pixels.
    step = max(1, luma.shape[1] // (4 * ANALYSIS_WIDTH_PX))
    return cv2.resize(luma[::step, ::step], (ANALYSIS_WIDTH_PX, height), interpolation=cv2.INTER_AREA)


def _block_means(grey: np.ndarray) -> np.ndarray:
    """Mean luma of each 8x8 block, float32. Their median change between frames is large only
    when most of the picture changes at once, as in a cut or a flash, not when an object moves."""
    rows, columns = grey.shape[0] // BLOCK_PX, grey.shape[1] // BLOCK_PX
    whole_blocks = grey[: rows * BLOCK_PX, : columns * BLOCK_PX].astype(np.float32)
    return cv2.resize(whole_blocks, (columns, rows), interpolation=cv2.INTER_AREA)


def _motion_change(flow, before: np.ndarray, frame: np.ndarray, after: np.ndarray) -> float:
    """How abruptly motion changes at ``frame``: mean |forward + backward flow| over moving pixels.

    For steady motion the flow to the next frame is the opposite of the flow to the previous one
    and they cancel; a bounce or a stop leaves their sum. In analysis pixels per frame, averaged
    over the whole picture.
    """
    moving = _moving_pixels(frame, before) | _moving_pixels(frame, after)
    if not moving.any():
        return 0.0
    forward = flow.calc(frame, after, None)
    backward = flow.calc(frame, before, None)
    change = np.hypot(*np.moveaxis(forward + backward, -1, 0))
    return float(change[moving].sum() / change.size)


def _moving_pixels(frame: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Pixels whose luma differs from ``other`` by more than the frame pair's noise allows."""
    difference = cv2.absdiff(frame, other)
    threshold = max(MOTION_MASK_FLOOR, MOTION_MASK_NOISE_FACTOR * float(np.median(difference)))
    return difference > threshold


def _without_cuts(motion: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Motion change with the frames next to a cut or flash zeroed: optical flow cannot follow them.

    ``change[i]`` compares frame ``i`` with frame ``i - 1``; the motion change at ``i`` uses the
    pairs ending at ``i`` and ``i + 1``.
    """
    if not len(motion):
        return motion
    cut = change > CUT_CHANGE_FACTOR * float(np.median(change)) + CUT_CHANGE_FLOOR
    spoiled = cut | np.append(cut[1:], False)
    return np.where(spoiled, 0.0, motion)


def _novelty(cue: np.ndarray, floor: float) -> np.ndarray:
    """How far each value rises above the running median of its neighbours, in units of the
    clip's mean rise: a steady level (constant motion) scores nothing, a rare jump a lot.

    The unit is never less than ``floor`` (in the cue's own units), so a cue that carries only
    noise, such as the appearance cue of a clip without cuts, stays near zero instead of being
    scaled up to rival the other.
    """
    if len(cue) < 2:
        return np.zeros_like(cue)
    half = NOVELTY_SPAN_FRAMES // 2
    padded = np.pad(cue, half, mode="edge")
    baseline = np.median(np.lib.stride_tricks.sliding_window_view(padded, NOVELTY_SPAN_FRAMES), axis=1)
    rise = np.maximum(0.0, cue - baseline)
    return rise / max(float(rise.mean()), floor)


class SoundOnsetsMeter:
    """The sound onsets of sound fed one block at a time, as a source pass hands it out: mono at
    16 kHz, the form the cut-downs' sound activity takes, so one resample serves both.

    The flux is computed over the whole sound at the end, so the samples are kept (64 kB a second).
    """

    sound_need = SoundNeed(ANALYSIS_RATE_HZ, "mono")
    """Mono at :data:`ANALYSIS_RATE_HZ`."""

    def __init__(self) -> None:
        self._blocks: list[np.ndarray] = []
        self._first_time_s: float | None = None

    def add_sound(self, samples: np.ndarray, time_s: float | None) -> None:
        """Take the next block of samples."""
        if self._first_time_s is None and time_s is not None:
            self._first_time_s = float(time_s)
        self._blocks.append(samples[0])

    def samples(self) -> tuple[np.ndarray, float]:
        """The sound fed so far, float32, and its first sample's time in seconds."""
        samples = np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)
        return samples, self._first_time_s or 0.0

    def result(self) -> SoundOnsets:
        """The onsets of all the sound fed."""
        samples, first_time_s = self.samples()
        hop = ANALYSIS_RATE_HZ // ENVELOPE_RATE_HZ
        # Flux sample k compares the windows starting at k and k + 1 hops. Log-compressed band energy
        # jumps as soon as an onset enters a window, so the flux peaks when the onset reaches the
        # leading edge of the later window: date it there.
        start_s = first_time_s + (hop + FLUX_WINDOW_SAMPLES) / ANALYSIS_RATE_HZ
        flux = _spectral_flux(samples, hop)
        guard = round(EDGE_GUARD_S * ENVELOPE_RATE_HZ)
        flux[:guard] = 0.0
        flux[max(0, len(flux) - guard) :] = 0.0
        return SoundOnsets(start_s=start_s, strength=flux, peak_level=float(np.abs(samples).max(initial=0.0)))


def sound_onsets(path: Path) -> SoundOnsets | None:
    """Decode the first audio stream and measure its onset strength; None when there is none.

    Raises:
        MediaError: the file cannot be opened or its audio cannot be decoded.
    """
    if not has_audio(path):
        return None
    meter = SoundOnsetsMeter()
    decode_source(path, sounds=[meter])
    return meter.result()


def mono_samples(path: Path) -> tuple[np.ndarray | None, float]:
    """The first audio stream mixed to mono float32 at 16 kHz, and its first sample's time in
    seconds; (None, 0.0) when there is none.

    Raises:
        MediaError: the file cannot be opened or its audio cannot be decoded.
    """
    if not has_audio(path):
        return None, 0.0
    meter = SoundOnsetsMeter()
    decode_source(path, sounds=[meter])
    return meter.samples()


def _spectral_flux(samples: np.ndarray, hop: int) -> np.ndarray:
    """Summed rise of compressed band energy from each window to the next, one value per hop."""
    frame_count = (len(samples) - FLUX_WINDOW_SAMPLES) // hop + 1
    if frame_count < 2:
        return np.zeros(0)
    window = np.hanning(FLUX_WINDOW_SAMPLES).astype(np.float32)
    band_edges = np.unique(np.geomspace(1, FLUX_WINDOW_SAMPLES // 2, FLUX_BANDS + 1).round().astype(int))
    flux = np.empty(frame_count - 1)
    previous = None
    windows = np.lib.stride_tricks.sliding_window_view(samples, FLUX_WINDOW_SAMPLES)[::hop]
    for chunk_start in range(0, frame_count, FLUX_CHUNK_FRAMES):
        frames = windows[chunk_start : chunk_start + FLUX_CHUNK_FRAMES] * window
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        bands = np.log1p(FLUX_COMPRESSION * np.add.reduceat(power, band_edges[:-1], axis=1))
        if previous is not None:
            bands = np.vstack([previous, bands])
        rises = np.maximum(0.0, np.diff(bands, axis=0)).sum(axis=1)
        first = chunk_start - 1 if previous is not None else 0
        flux[first : first + len(rises)] = rises
        previous = bands[-1:]
    return flux
