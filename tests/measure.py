"""Measurements tests make on rendered media: flashes in the picture, beeps and levels in the sound."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

FLASH_LUMA = 200
"""Mean 8-bit luma above which a frame counts as the synthetic white flash."""
BEEP_SHARE_OF_PEAK = 0.6
"""A sample this close to the loudest one is the synthetic beep: the beep peaks at 0.5 and the bed
tone at 0.1, and loudness normalisation scales both alike (0.6 of 0.5 is the 0.3 it was when
deliverables kept the source's level)."""
BEEP_OVER_BED = 3.0
"""A beep peaks at least this many times over the median level of the sound."""


def frame_lumas(path: Path, width: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Mean 8-bit luma of every frame and its presentation time in seconds, decoded small."""
    lumas, times = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            height = max(2, round(width * frame.height / frame.width))
            grey = frame.reformat(width=width, height=height, format="gray").to_ndarray()
            lumas.append(float(grey.mean()))
            times.append(float(frame.time))
    return np.array(lumas), np.array(times)


def flash_times_s(path: Path) -> list[float]:
    """Start times of the white flashes in the picture."""
    lumas, times = frame_lumas(path)
    bright = lumas > FLASH_LUMA
    starts = np.flatnonzero(bright & ~np.concatenate(([False], bright[:-1])))
    return [float(times[index]) for index in starts]


def decode_audio(path: Path) -> tuple[np.ndarray, int, float]:
    """All audio as float32 (channels, samples), its sample rate, and the first sample's time."""
    chunks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
        first_time = None
        for frame in container.decode(stream):
            if first_time is None:
                first_time = float(frame.time)
            for converted in resampler.resample(frame):
                chunks.append(converted.to_ndarray())
        rate = stream.rate
    return np.concatenate(chunks, axis=1), rate, first_time or 0.0


def beep_onsets_s(path: Path, min_gap_s: float = 0.5) -> list[float]:
    """Start times of the synthetic beeps, to the sample."""
    samples, rate, first_time = decode_audio(path)
    magnitude = np.abs(samples[0])
    # The beep stands several times over the tone bed (0.6 against 0.1 of full scale); without one
    # the loudest crest is the bed's own, which is no beep.
    if not magnitude.size or magnitude.max() <= BEEP_OVER_BED * np.median(magnitude):
        return []
    loud = np.flatnonzero(magnitude > BEEP_SHARE_OF_PEAK * magnitude.max())
    onsets: list[float] = []
    for index in loud:
        time_s = first_time + index / rate
        if not onsets or time_s - onsets[-1] > min_gap_s:
            onsets.append(time_s)
    return onsets


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS of float samples (0 dBFS = full-scale square wave)."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def frames_rgb(path: Path) -> np.ndarray:
    """Every frame as 8-bit RGB, shape (frames, height, width, 3); for small test renders only."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def frames_ycbcr_levels(path: Path) -> np.ndarray:
    """Every frame's Y', Cb, Cr at full chroma resolution in 8-bit levels (a 10-bit code / 4), shape
    (frames, 3, height, width), float; the bit depth is kept, only chroma is upsampled."""
    planes = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            deep = frame.format.components[0].bits > 8
            array = frame.reformat(format="yuv444p16le" if deep else "yuv444p").to_ndarray()
            if array.shape[0] != 3:  # PyAV hands 16-bit 4:4:4 out as (height, width, 3)
                array = np.moveaxis(array, -1, 0)
            planes.append(array.astype(np.float64) / (256 if deep else 1))
    return np.stack(planes)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two 8-bit-scaled pictures, in dB."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))
