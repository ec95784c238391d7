"""Quality control of a finished file: every check from one decode of its picture and sound.

One demux pass feeds both decoders; each video frame is reduced once to a small grey image (black,
freeze, stutter, flash risk, thumbnails) and a sparse sample of its planes (legal levels), and each
audio frame goes to the loudness meter and a 10 ms peak envelope (silence, waveform). Conformance to
the preset comes from the probe (container facts, no decoding) and the counts of that same decode.

Each check ends as ``pass``, ``warn`` or ``fail`` with its measured value and the faults' times.
Fail-level checks are the ones a delivery spec rejects (conformance, loudness, true peak, illegal
levels, flash risk, sync); black, freeze, silence and stutter may be intended, so they warn.
The report is JSON (schema :data:`QC_SCHEMA_VERSION`, documented in the README) and a
self-contained HTML page (:mod:`pipeline.qc.html_report`).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np

from pipeline.errors import MediaError
from pipeline.media.isobmff import is_faststart
from pipeline.analysis.loudness import LoudnessCorrection, LoudnessMeasurement, loudness_problems, meter_for
from pipeline.plan.outputs import BRANDS, ExpectedOutput, probed_layout
from pipeline.model.presets import Preset
from pipeline.media.probe import MediaInfo, probe
from pipeline.analysis.sync import SyncReport
from pipeline.model.timebase import frames_to_timecode, frames_to_samples
from pipeline.plan.legalise import touched_share
from pipeline.prestage.stutter import COPY_RATIO, psnr_db, repeated_frames
from pipeline.plan.hdr import COLOUR_TAGS
from pipeline.plan.audio_tracks import programme_channels, programme_tracks, resolve_for_file, track_contents
from pipeline.plan.leader import leader_frames
from pipeline.analysis.track_levels import STEREO, ProgrammeAssembler, programme_meter

QC_SCHEMA_VERSION = 1
Status = Literal["pass", "warn", "fail"]
_SEVERITY = {"pass": 0, "warn": 1, "fail": 2}

ANALYSIS_WIDTH_PX = 160
"""Width of the grey image black, freeze, stutter and flash are judged on."""
BLACK_PIXEL_LEVEL = 16 + 0.10 * 219
"""A pixel darker than this (8-bit luma, 10 % of the legal range) counts as black (as ffmpeg's blackdetect)."""
BLACK_PICTURE_SHARE = 0.98
"""A frame is black when this share of its pixels is."""
BLACK_MIN_S = 0.5
"""Black shorter than this is a transition, not a fault."""
FREEZE_MEAN_DIFF = 0.5
"""Two frames are the same picture when their mean absolute difference is under this (8-bit levels,
at analysis size) ..."""
FREEZE_MAX_DIFF = 6.0
"""... and no analysis pixel differs by more than this (so a small moving object is motion)."""
FREEZE_MIN_S = 1.0
"""A picture held this long or longer is a freeze."""
STUTTER_MERGE_S = 0.5
"""Repeated frames closer than this are reported as one stutter fault."""
STUTTER_DETAIL_MIN = 4.0
"""A repeated frame is a stutter only if it has detail (luma standard deviation, 8-bit levels): two
frames of a flat colour (a flash, a fade's end) are alike without anything having stopped moving."""
LEGAL_LUMA = (14, 241)
"""Legal 8-bit luma: EBU R 103's tolerance of -1 % to +103 % around BT.709's nominal 16-235 (black
16 - 0.01 x 219, white 235 + 0.03 x 219), which leaves room for the overshoot of a scaler's filter
at sharp edges; scaled for 10 and 12 bits."""
GAMUT_RANGE = (-0.05, 1.05)
"""EBU R 103's tolerance for the R, G and B signals a Y'CbCr picture decodes to (BT.709 matrix):
-5 % to +105 %. Checking colours this way, rather than Cb and Cr code values, is what a gamut meter
does: chroma rings past 16-240 at the edges of a scaled saturated colour without leaving gamut."""
ILLEGAL_SHARE_MAX = 0.01
"""A frame fails the levels check when more than this share of its (2x2-averaged) samples is outside."""
DISPLAY_PEAK_CD_M2 = 200.0
"""Flash analysis assumes a display of this peak luminance with a BT.1886 (2.4) gamma."""
FLASH_STEP_CD_M2 = 20.0
"""A flash transition is a luminance change of at least this much ..."""
FLASH_DARK_CD_M2 = 160.0
"""... where the darker state is below this (Ofcom, ITU-R BT.1702)."""
FLASH_AREA_SHARE = 0.25
"""A transition counts when more than this share of the screen makes it in the same frame."""
FLASHES_PER_S_MAX = 3
"""More flashes than this in any one second fail (Ofcom: a flash is a pair of opposing transitions)."""
SILENCE_DBFS = -60.0
"""Sound whose peak stays under this is silence."""
SILENCE_MIN_S = 1.0
"""Silence this long or longer is a fault."""
ENVELOPE_BLOCK_S = Fraction(1, 100)
"""The sound's peak envelope has one minimum and maximum per 10 ms."""
THUMBNAILS = 12
"""Frames in the contact sheet, evenly spaced."""
THUMBNAIL_WIDTH_PX = 240
"""Width of each contact-sheet frame."""


@dataclass(frozen=True)
class Fault:
    """A stretch of the file where a check found a problem."""

    start_s: float
    """Start, seconds from the first frame."""
    end_s: float
    """End (exclusive), seconds."""


@dataclass(frozen=True)
class Check:
    """One QC check's verdict."""

    name: str
    """Check name, e.g. ``black``."""
    status: Status
    """``pass``, ``warn`` or ``fail``."""
    value: float | int | str | None
    """The measured value (see ``unit``); None when there was nothing to measure."""
    unit: str
    """Unit or meaning of ``value``."""
    limit: str
    """What passes, in words."""
    detail: str = ""
    """What was found, in words."""
    faults: tuple[Fault, ...] = ()
    """Where, for checks that find stretches."""


@dataclass(frozen=True, eq=False)
class QcReport:
    """Everything QC found in one file, and what the HTML page draws."""

    path: Path
    """The file checked."""
    preset: str
    """Preset it was checked against."""
    policy: Literal["fail", "warn"]
    """Whether a failing check fails the job."""
    duration_s: float
    """Picture duration, seconds."""
    frame_rate: Fraction
    """Frames per second (timecodes count at this rate)."""
    frame_count: int
    """Frames decoded."""
    checks: tuple[Check, ...]
    """Every check, in report order."""
    loudness: LoudnessMeasurement | None
    """The sound's loudness; None without an audio stream."""
    correction: LoudnessCorrection | None
    """The loudness correction made while finishing, if any."""
    thumbnails: tuple[tuple[float, bytes], ...]
    """Contact sheet: (time in seconds, JPEG bytes)."""
    waveform: np.ndarray
    """Peak envelope, shape (2, blocks): minimum and maximum of all channels per 10 ms."""
    analysis_s: float
    """Seconds the decode and analysis took."""
    legalised_share: float | None = None
    """Mean share of pixels per frame the broadcast legaliser changed by a 10-bit code or more (its
    knees undone on the same samples the gamut check uses); None when the preset does not legalise."""
    created_utc: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    """When the report was made."""

    @property
    def status(self) -> Status:
        """The worst status of any check."""
        return max((check.status for check in self.checks), key=_SEVERITY.__getitem__, default="pass")

    @property
    def passed(self) -> bool:
        """False when a check failed and the policy is ``fail``."""
        return not (self.policy == "fail" and self.status == "fail")

    def timecode(self, seconds: float) -> str:
        """SMPTE timecode of a time in the file, at its frame rate."""
        return frames_to_timecode(round(seconds * float(self.frame_rate)), self.frame_rate)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema version :data:`QC_SCHEMA_VERSION`)."""
        loudness = self.loudness.to_dict() if self.loudness else None
        return {
            "schema": "postprod.qc",
            "schema_version": QC_SCHEMA_VERSION,
            "file": str(self.path),
            "preset": self.preset,
            "policy": self.policy,
            "status": self.status,
            "passed": self.passed,
            "created_utc": self.created_utc,
            "duration_s": round(self.duration_s, 6),
            "frame_rate": str(self.frame_rate),
            "frame_count": self.frame_count,
            "loudness": None if loudness is None else {
                **loudness,
                "correction": self.correction.to_dict() if self.correction else None,
            },
            "checks": [
                {
                    "name": check.name,
                    "status": check.status,
                    "value": check.value,
                    "unit": check.unit,
                    "limit": check.limit,
                    "detail": check.detail,
                    "faults": [
                        {
                            "start_s": round(fault.start_s, 3),
                            "end_s": round(fault.end_s, 3),
                            "start_tc": self.timecode(fault.start_s),
                            "end_tc": self.timecode(fault.end_s),
                        }
                        for fault in check.faults
                    ],
                }
                for check in self.checks
            ],
            "legalised_share": None if self.legalised_share is None else round(self.legalised_share, 6),
            "analysis": {"decode_passes": 1, "seconds": round(self.analysis_s, 3)},
        }

    def summary(self) -> str:
        """One line: status and the checks that did not pass."""
        problems = [f"{check.name} {check.status}" for check in self.checks if check.status != "pass"]
        return f"{self.path.name}: {self.status}" + (f" ({', '.join(problems)})" if problems else "")


@dataclass
class _PictureStats:
    """Per-frame measurements gathered while decoding."""

    times: list[float] = field(default_factory=list)
    black: list[bool] = field(default_factory=list)
    detail: list[float] = field(default_factory=list)
    mean_diff: list[float] = field(default_factory=list)
    max_diff: list[float] = field(default_factory=list)
    psnr_db: list[float] = field(default_factory=list)
    illegal_luma: list[float] = field(default_factory=list)
    out_of_gamut: list[float] = field(default_factory=list)
    legalised: list[float] = field(default_factory=list)
    flash_area: list[float] = field(default_factory=list)
    full_range: bool = False


class _FlashTracker:
    """Per analysis pixel: the luminance extreme since the last transition and the direction of travel.

    A transition is a move of at least :data:`FLASH_STEP_CD_M2` against the direction of travel (or
    either way, at the start) from that extreme, with the darker state under :data:`FLASH_DARK_CD_M2`.
    """

    def __init__(self) -> None:
        self._extreme: np.ndarray | None = None
        self._direction: np.ndarray | None = None

    def update(self, luminance: np.ndarray) -> float:
        """Share of the picture completing a transition in this frame."""
        if self._extreme is None:
            self._extreme = luminance.copy()
            self._direction = np.zeros(luminance.shape, np.int8)
            return 0.0
        extreme, direction = self._extreme, self._direction
        step = luminance - extreme
        darker_dark = np.minimum(luminance, extreme) < FLASH_DARK_CD_M2
        rising_turn = (direction <= 0) & (step >= FLASH_STEP_CD_M2) & darker_dark
        falling_turn = (direction >= 0) & (-step >= FLASH_STEP_CD_M2) & darker_dark
        turned = rising_turn | falling_turn
        direction[rising_turn] = 1
        direction[falling_turn] = -1
        # Keep following the extreme in the direction of travel.
        follow = turned | ((direction > 0) & (step > 0)) | ((direction < 0) & (step < 0))
        extreme[follow] = luminance[follow]
        return float(turned.mean())


def _luminance(grey8: np.ndarray) -> np.ndarray:
    """Display luminance in cd/m2 of 8-bit limited-range luma."""
    signal_level = np.clip((grey8 - 16.0) / 219.0, 0.0, 1.0)
    return DISPLAY_PEAK_CD_M2 * signal_level**2.4


def _yuv_planes(frame: av.VideoFrame) -> tuple[list[np.ndarray], int]:
    """The Y, U, V planes as arrays (no copy where the format allows), and the bit depth."""
    if not frame.format.name.startswith("yuv") or len(frame.planes) < 3:
        frame = frame.reformat(format="yuv444p")
    depth = frame.format.components[0].bits
    dtype = np.dtype(np.uint8) if depth <= 8 else np.dtype("<u2")
    planes = []
    for plane in frame.planes[:3]:
        array = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
        planes.append(array[:, : plane.width])
    return planes, depth


def _small_grey(luma: np.ndarray, depth: int) -> np.ndarray:
    """Luma at analysis width as float32 8-bit levels."""
    height = max(2, round(ANALYSIS_WIDTH_PX * luma.shape[0] / luma.shape[1]))
    step = max(1, luma.shape[1] // (4 * ANALYSIS_WIDTH_PX))
    small = cv2.resize(luma[::step, ::step], (ANALYSIS_WIDTH_PX, height), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / (1 << (depth - 8))


def _outside_share(plane: np.ndarray, low: int, high: int, depth: int) -> float:
    """Share of 2x2-averaged samples outside [low, high] (8-bit levels, scaled to ``depth``).

    Averaging is the low-pass a level meter applies: scaling and lossy coding ring a few samples
    past a legal edge, which no monitor shows and no delivery spec rejects.
    """
    smoothed = cv2.resize(plane, (max(1, plane.shape[1] // 2), max(1, plane.shape[0] // 2)),
                          interpolation=cv2.INTER_AREA)
    shift = depth - 8
    inside = cv2.inRange(smoothed, low << shift, ((high + 1) << shift) - 1)
    return 1.0 - cv2.countNonZero(inside) / inside.size


_LUMA_WEIGHTS = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114), 9: (0.2627, 0.0593)}
"""Kr and Kb by AVColorSpace: BT.709, BT.470BG and SMPTE 170M (BT.601), BT.2020."""


def _matrix_weights(frame: av.VideoFrame) -> tuple[float, float]:
    """Kr, Kb of the frame's tagged matrix; untagged, BT.709 from 1280 pixels wide, else BT.601
    (what players assume, and :func:`pipeline.plan.conform.source_color_matrix` too)."""
    tagged = _LUMA_WEIGHTS.get(int(frame.colorspace))
    if tagged is not None:
        return tagged
    return _LUMA_WEIGHTS[1] if max(frame.width, frame.height) >= 1280 else _LUMA_WEIGHTS[6]


def _normalised_ycbcr(planes: list[np.ndarray], depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y' (0..1 nominal), Cb and Cr (-0.5..0.5 nominal) at half the chroma resolution (the luma
    check's 2x2 averaging)."""
    chroma_height, chroma_width = planes[1].shape
    size = (max(1, chroma_width // 2), max(1, chroma_height // 2))
    levels = float(1 << (depth - 8))
    luma, blue, red = (
        cv2.resize(plane, size, interpolation=cv2.INTER_AREA).astype(np.float32) / levels for plane in planes
    )
    return (luma - 16) / 219, (blue - 128) / 224, (red - 128) / 224


def _out_of_gamut_share(ycbcr: tuple[np.ndarray, np.ndarray, np.ndarray], weights: tuple[float, float]) -> float:
    """Share of pixels whose R'G'B' (``weights``: the matrix's Kr, Kb) falls outside :data:`GAMUT_RANGE`."""
    luma, blue, red = ycbcr
    kr, kb = weights
    kg = 1 - kr - kb
    r = luma + 2 * (1 - kr) * red
    b = luma + 2 * (1 - kb) * blue
    g = luma - (2 * kb * (1 - kb) * blue + 2 * kr * (1 - kr) * red) / kg
    low, high = GAMUT_RANGE
    outside = (np.minimum(np.minimum(r, g), b) < low) | (np.maximum(np.maximum(r, g), b) > high)
    return float(outside.mean())


class _SoundStats:
    """Loudness meter plus a 10 ms min/max envelope, fed as the audio decodes."""

    def __init__(self, streams: list[av.audio.stream.AudioStream], channels: tuple[str, ...]):
        # One stream is measured with its own layout's weights; mono tracks joined as the programme's channels.
        self.meter = meter_for(streams[0]) if len(streams) == 1 else programme_meter(streams[0].rate, channels)
        self.rate = streams[0].rate
        self.block = int(ENVELOPE_BLOCK_S * self.rate)
        self._pending = np.zeros((sum(stream.channels for stream in streams), 0), np.float32)
        self.minima: list[np.ndarray] = []
        self.maxima: list[np.ndarray] = []
        self.samples = 0

    def feed(self, samples: np.ndarray) -> None:
        self.samples += samples.shape[1]
        self.meter.feed(samples)
        self._pending = np.concatenate([self._pending, samples], axis=1)
        whole = self._pending.shape[1] // self.block
        if whole:
            blocks = self._pending[:, : whole * self.block].reshape(-1, whole, self.block)
            self.minima.append(blocks.min(axis=(0, 2)))
            self.maxima.append(blocks.max(axis=(0, 2)))
            self._pending = self._pending[:, whole * self.block :]

    def envelope(self) -> np.ndarray:
        if self._pending.shape[1]:
            self.minima.append(np.array([self._pending.min()]))
            self.maxima.append(np.array([self._pending.max()]))
            self._pending = self._pending[:, :0]
        if not self.minima:
            return np.zeros((2, 0), np.float32)
        return np.stack([np.concatenate(self.minima), np.concatenate(self.maxima)])


def run_qc(
    path: str | Path,
    preset: Preset,
    *,
    expected: ExpectedOutput | None = None,
    correction: LoudnessCorrection | None = None,
    sync: SyncReport | None = None,
    policy: Literal["fail", "warn"] | None = None,
    info: MediaInfo | None = None,
    out_of_sync: Status = "fail",
) -> QcReport:
    """Check ``path`` against ``preset`` from one decode of its picture and sound.

    Args:
        path: The file.
        preset: What it should be (overrides applied).
        expected: The plan's promises, when the file was just rendered: frame and sample counts
            are then checked exactly; without it, sound and picture must end within a frame.
        correction: The loudness correction made while finishing, reported beside the levels.
        sync: A sync measurement to judge (the sources', when finishing; ``pipeline.analysis.sync`` otherwise).
        out_of_sync: The status an out-of-sync verdict gets; a job whose sync policy is ``report``
            asked for the offset to be recorded, not to fail on it, and passes ``warn``.
        policy: ``fail`` or ``warn``; None: the preset's.
        info: The file's probe, when the caller has one.

    Raises:
        MediaError: the file is unreadable or does not decode.
    """
    started = time.monotonic()
    path = Path(path)
    info = info or probe(path)
    preset = resolve_for_file(preset, info)
    frame_rate = info.video.frame_rate
    leader = _leader_length(preset, expected, frame_rate, info)
    picture, sound, thumbnails = _decode(path, info, programme_tracks(preset.audio), leader, preset.video.legalise,
                                         programme_channels(preset.audio))
    frame_count = len(picture.times)
    duration_s = frame_count / float(frame_rate)
    loudness = sound.meter.result() if sound else None
    checks = [
        _conformance(path, info, preset, expected, leader[0] + frame_count,
                     leader[1] + sound.samples if sound else None),
        *_loudness_checks(loudness, preset),
        _black(picture, frame_rate),
        _freeze(picture, frame_rate),
        _stutter(picture, frame_rate),
        _levels(picture, frame_rate),
        _flash(picture, frame_rate),
        _silence(sound, duration_s),
    ]
    if sync is not None:
        checks.append(_sync_check(sync, out_of_sync))
    return QcReport(
        path=path,
        preset=preset.name,
        policy=policy or preset.qc_policy,
        duration_s=duration_s,
        frame_rate=frame_rate,
        frame_count=frame_count,
        checks=tuple(checks),
        loudness=loudness,
        correction=correction,
        thumbnails=tuple(thumbnails),
        waveform=sound.envelope() if sound else np.zeros((2, 0), np.float32),
        analysis_s=time.monotonic() - started,
        legalised_share=float(np.mean(picture.legalised)) if preset.video.legalise and picture.legalised else None,
    )


def _leader_length(preset: Preset, expected: ExpectedOutput | None, frame_rate: Fraction,
                   info: MediaInfo) -> tuple[int, int]:
    """Frames and samples of the leader before the programme, which QC leaves out: the plan's, or
    for a file checked on its own, what its preset's leader lasts."""
    if expected is not None:
        return expected.programme_start_frame, expected.programme_start_sample
    if preset.leader is None:
        return 0, 0
    frames = leader_frames(preset.leader, frame_rate)
    sample_rate = info.audio.sample_rate if info.audio else preset.audio.sample_rate
    return frames, frames_to_samples(frames, frame_rate, sample_rate)


def _decode(path: Path, info: MediaInfo, programme: tuple[int, ...] = (0,), leader: tuple[int, int] = (0, 0),
            legalised: bool = False, channels: tuple[str, ...] = STEREO,
            ) -> tuple[_PictureStats, _SoundStats | None, list[tuple[float, bytes]]]:
    """The one decode: picture and the programme's audio streams demuxed together, each frame
    measured as it comes (the programme's tracks joined first where it spans two). The ``leader``'s
    frames and samples are decoded but not measured; ``legalised`` also measures how much of each
    frame the broadcast legaliser changed."""
    leader_frames_left = leader[0]
    picture = _PictureStats(full_range=info.video.color_range == "pc")
    flash = _FlashTracker()
    duration = float(info.video.duration_s - Fraction(leader[0]) / info.video.frame_rate)
    thumbnail_times = [duration * (index + 0.5) / THUMBNAILS for index in range(THUMBNAILS)]
    thumbnails: list[tuple[float, bytes]] = []
    previous: np.ndarray | None = None
    sound = None
    try:
        with av.open(str(path)) as container:
            video_stream = container.streams.video[0]
            video_stream.thread_type = "AUTO"
            streams = [video_stream]
            audio_streams = [container.streams.audio[number] for number in programme
                             if number < len(container.streams.audio)]
            resamplers = {}
            if audio_streams:
                sound = _SoundStats(audio_streams, channels)
                assembler = ProgrammeAssembler(audio_streams, leader[1])
                resamplers = {stream.index: av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
                              for stream in audio_streams}
                streams += audio_streams
            video_start = None
            for packet in container.demux(*streams):
                for frame in packet.decode():
                    if isinstance(frame, av.AudioFrame):
                        for converted in resamplers[packet.stream.index].resample(frame):
                            block = assembler.add(packet.stream.index, converted.to_ndarray())
                            if block is not None:
                                sound.feed(block)
                        continue
                    if leader_frames_left:
                        leader_frames_left -= 1
                        continue
                    if video_start is None:
                        video_start = frame.time or 0.0
                    at = (frame.time or 0.0) - video_start
                    planes, depth = _yuv_planes(frame)
                    grey = _small_grey(planes[0], depth)
                    picture.times.append(at)
                    picture.black.append(float(np.mean(grey <= BLACK_PIXEL_LEVEL)) >= BLACK_PICTURE_SHARE)
                    picture.detail.append(float(grey.std()))
                    if previous is None:
                        picture.mean_diff.append(float("inf"))
                        picture.max_diff.append(float("inf"))
                        picture.psnr_db.append(0.0)
                    else:
                        difference = cv2.absdiff(grey, previous)
                        picture.mean_diff.append(float(difference.mean()))
                        picture.max_diff.append(float(difference.max()))
                        picture.psnr_db.append(psnr_db(difference))
                    previous = grey
                    picture.illegal_luma.append(_outside_share(planes[0], *LEGAL_LUMA, depth))
                    ycbcr = _normalised_ycbcr(planes, depth)
                    picture.out_of_gamut.append(_out_of_gamut_share(ycbcr, _matrix_weights(frame)))
                    if legalised:
                        picture.legalised.append(touched_share(*ycbcr))
                    picture.flash_area.append(flash.update(_luminance(grey)))
                    if thumbnail_times and at >= thumbnail_times[0]:
                        thumbnail_times.pop(0)
                        thumbnails.append((at, _thumbnail(frame)))
            for index, resampler in resamplers.items():
                for converted in resampler.resample(None):
                    block = assembler.add(index, converted.to_ndarray())
                    if block is not None:
                        sound.feed(block)
    except av.error.FFmpegError as error:
        raise MediaError(path, f"does not decode for QC ({error.strerror or error})") from error
    return picture, sound, thumbnails


def _thumbnail(frame: av.VideoFrame) -> bytes:
    height = max(2, round(THUMBNAIL_WIDTH_PX * frame.height / frame.width / 2) * 2)
    rgb = frame.reformat(width=THUMBNAIL_WIDTH_PX, height=height, format="bgr24").to_ndarray()
    return cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def thumbnail_data_uri(jpeg: bytes) -> str:
    """A JPEG as a ``data:`` URI for a self-contained page."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _runs(flags: Iterable[bool]) -> list[tuple[int, int]]:
    """(first, last + 1) index of every run of True."""
    runs, start = [], None
    flags = list(flags)
    for index, flag in enumerate(flags):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            runs.append((start, index))
            start = None
    if start is not None:
        runs.append((start, len(flags)))
    return runs


def _frame_faults(runs: list[tuple[int, int]], frame_rate: Fraction) -> tuple[Fault, ...]:
    rate = float(frame_rate)
    return tuple(Fault(first / rate, last / rate) for first, last in runs)


def _status(faults: tuple[Fault, ...], level: Status) -> Status:
    return level if faults else "pass"


def _black(picture: _PictureStats, frame_rate: Fraction) -> Check:
    minimum = round(BLACK_MIN_S * float(frame_rate))
    runs = [run for run in _runs(picture.black) if run[1] - run[0] >= max(1, minimum)]
    faults = _frame_faults(runs, frame_rate)
    total = sum(last - first for first, last in runs) / float(frame_rate)
    return Check(
        "black", _status(faults, "warn"), round(total, 3), "seconds of black",
        f"no black picture of {BLACK_MIN_S} s or more ({BLACK_PICTURE_SHARE:.0%} of pixels under "
        f"luma {BLACK_PIXEL_LEVEL:.0f})",
        f"{len(faults)} stretch(es) of black" if faults else "",
        faults,
    )


def _same_picture(picture: _PictureStats) -> np.ndarray:
    """True for frames that repeat their predecessor (the first frame repeats nothing)."""
    return (np.array(picture.mean_diff) <= FREEZE_MEAN_DIFF) & (np.array(picture.max_diff) <= FREEZE_MAX_DIFF)


def _freeze_runs(picture: _PictureStats, frame_rate: Fraction) -> list[tuple[int, int]]:
    """Held pictures of FREEZE_MIN_S or more, black excluded: (first frame shown, end)."""
    held = _same_picture(picture) & ~np.array(picture.black, dtype=bool)
    minimum = round(FREEZE_MIN_S * float(frame_rate))
    # A run of repeats starts one frame earlier: the frame that is repeated.
    return [(first - 1, last) for first, last in _runs(held) if last - first + 1 >= minimum]


def _freeze(picture: _PictureStats, frame_rate: Fraction) -> Check:
    runs = _freeze_runs(picture, frame_rate)
    faults = _frame_faults(runs, frame_rate)
    longest = max((last - first for first, last in runs), default=0) / float(frame_rate)
    return Check(
        "freeze", _status(faults, "warn"), round(longest, 3), "longest freeze, seconds",
        f"no picture held {FREEZE_MIN_S} s or more", f"{len(faults)} freeze(s)" if faults else "", faults,
    )


def _stutter(picture: _PictureStats, frame_rate: Fraction) -> Check:
    """Single or short runs of repeated frames between frames that move (the definition de-stutter
    uses, :func:`pipeline.prestage.stutter.repeated_frames`), outside freezes and flat pictures."""
    frozen = np.zeros(len(picture.mean_diff), bool)
    for first, last in _freeze_runs(picture, frame_rate):
        frozen[first:last] = True
    repeats = [index for index in repeated_frames(picture.mean_diff, picture.psnr_db)
               if not frozen[index] and picture.detail[index] >= STUTTER_DETAIL_MIN]
    rate = float(frame_rate)
    faults: list[Fault] = []
    for index in repeats:
        start, end = index / rate, (index + 1) / rate
        if faults and start - faults[-1].end_s < STUTTER_MERGE_S:
            faults[-1] = Fault(faults[-1].start_s, end)
        else:
            faults.append(Fault(start, end))
    return Check(
        "stutter", _status(tuple(faults), "warn"), len(repeats), "repeated frames in moving picture",
        f"no frame repeating its predecessor (under {COPY_RATIO:.0%} of the change either side of it)",
        f"{len(repeats)} repeated frame(s)" if repeats else "", tuple(faults),
    )


def _levels(picture: _PictureStats, frame_rate: Fraction) -> Check:
    luma, gamut = np.array(picture.illegal_luma), np.array(picture.out_of_gamut)
    limit = (f"at most {ILLEGAL_SHARE_MAX:.0%} of a frame outside luma {LEGAL_LUMA[0]}-{LEGAL_LUMA[1]} "
             f"(8-bit) or R'G'B' {GAMUT_RANGE[0]:.0%} to {GAMUT_RANGE[1]:.0%} (EBU R 103)")
    worst = float(max(luma.max(initial=0), gamut.max(initial=0)))
    if picture.full_range:
        return Check("levels", "pass", round(worst, 4), "largest share outside", limit,
                     "full-range file: limited-range limits do not apply")
    bad = (luma > ILLEGAL_SHARE_MAX) | (gamut > ILLEGAL_SHARE_MAX)
    faults = _frame_faults(_runs(bad), frame_rate)
    detail = ""
    if faults:
        detail = (f"{int(bad.sum())} frame(s); worst {luma.max():.1%} of luma outside the legal range, "
                  f"{gamut.max():.1%} of pixels out of gamut")
    return Check("levels", _status(faults, "fail"), round(worst, 4), "largest share outside", limit, detail, faults)


def _flash(picture: _PictureStats, frame_rate: Fraction) -> Check:
    """Transitions of over a quarter of the screen, counted in every one-second window."""
    transitions = np.array(picture.flash_area) > FLASH_AREA_SHARE
    window = max(1, round(float(frame_rate)))
    counts = np.convolve(transitions.astype(int), np.ones(window, int))[: len(transitions)]
    flashes_per_s = counts / 2
    too_many = flashes_per_s > FLASHES_PER_S_MAX
    rate = float(frame_rate)
    faults: list[Fault] = []
    for index in np.flatnonzero(too_many):
        # From the first to the last transition of the window that has too many.
        in_window = np.flatnonzero(transitions[max(0, index - window + 1) : index + 1]) + max(0, index - window + 1)
        start, end = float(in_window[0] / rate), float((in_window[-1] + 1) / rate)
        if faults and start <= faults[-1].end_s:
            faults[-1] = Fault(faults[-1].start_s, end)
        else:
            faults.append(Fault(start, end))
    worst = float(flashes_per_s.max(initial=0))
    return Check(
        "flash", _status(tuple(faults), "fail"), worst, "most flashes in one second",
        f"at most {FLASHES_PER_S_MAX} flashes a second over more than {FLASH_AREA_SHARE:.0%} of the screen "
        f"(Ofcom / ITU-R BT.1702: {FLASH_STEP_CD_M2:.0f} cd/m2 transitions, darker state under "
        f"{FLASH_DARK_CD_M2:.0f} cd/m2; red flashes are not assessed)",
        f"up to {worst:g} flashes in one second" if faults else "", tuple(faults),
    )


def _silence(sound: _SoundStats | None, duration_s: float) -> Check:
    limit = f"no sound under {SILENCE_DBFS:.0f} dBFS for {SILENCE_MIN_S} s or more"
    if sound is None:
        return Check("silence", "warn", duration_s, "seconds of silence", limit, "no audio stream",
                     (Fault(0.0, duration_s),))
    envelope = sound.envelope()
    quiet = np.maximum(-envelope[0], envelope[1]) < 10 ** (SILENCE_DBFS / 20)
    block_s = float(ENVELOPE_BLOCK_S)
    minimum = round(SILENCE_MIN_S / block_s)
    runs = [run for run in _runs(quiet) if run[1] - run[0] >= minimum]
    faults = tuple(Fault(first * block_s, min(last * block_s, sound.samples / sound.rate)) for first, last in runs)
    total = sum(fault.end_s - fault.start_s for fault in faults)
    return Check(
        "silence", _status(faults, "warn"), round(total, 3), "seconds of silence", limit,
        f"{len(faults)} stretch(es) of silence" if faults else "", faults,
    )


def _loudness_checks(loudness: LoudnessMeasurement | None, preset: Preset) -> list[Check]:
    target = preset.loudness
    if loudness is None:
        return [Check("loudness", "fail" if target else "warn", None, "LUFS", "an audio stream", "no audio stream")]
    integrated, peak = loudness.integrated_lufs, loudness.true_peak_dbtp
    rounded_i = None if integrated is None else round(integrated, 2)
    rounded_tp = None if peak is None else round(peak, 2)
    if target is None:
        return [
            Check("loudness", "pass", rounded_i, "LUFS integrated", "no target in the preset", "measured only"),
            Check("true_peak", "pass", rounded_tp, "dBTP", "no limit in the preset", "measured only"),
        ]
    loudness_limit = f"{target.target_lufs:.1f} LUFS +-{target.tolerance} LU ({target.standard})"
    peak_limit = f"at most {target.max_true_peak_dbtp:.1f} dBTP ({target.standard})"
    if integrated is None:
        # Digital silence has no loudness to correct: the silence check reports it.
        return [
            Check("loudness", "warn", None, "LUFS integrated", loudness_limit,
                  "no measurable loudness (silence or under 0.4 s of sound)"),
            Check("true_peak", "pass", rounded_tp, "dBTP", peak_limit),
        ]
    problems = loudness_problems(loudness, target)
    loudness_problem = [problem for problem in problems if problem.startswith("loudness")]
    peak_problem = [problem for problem in problems if problem.startswith("true peak")]
    return [
        Check("loudness", "fail" if loudness_problem else "pass", rounded_i, "LUFS integrated", loudness_limit,
              "; ".join(loudness_problem)),
        Check("true_peak", "fail" if peak_problem else "pass", rounded_tp, "dBTP", peak_limit,
              "; ".join(peak_problem)),
    ]


def _conformance(
    path: Path,
    info: MediaInfo,
    preset: Preset,
    expected: ExpectedOutput | None,
    frames_decoded: int,
    samples_decoded: int | None,
) -> Check:
    """The file against its preset: container, codecs, raster, rate, colour, sound, and length."""
    video, audio = info.video, info.audio
    spec = preset.video
    problems: list[str] = []

    def check(what: str, actual, wanted) -> None:
        if actual != wanted:
            problems.append(f"{what}: {actual} (wanted {wanted})")

    check("container", info.brand, BRANDS[preset.container])
    if preset.faststart:
        check("faststart", is_faststart(path), True)
    check("video codec", video.codec, spec.codec)
    if spec.profile is not None:
        check("profile", video.profile, spec.profile)
    if spec.codec_tag is not None:
        check("codec tag", video.codec_tag, spec.codec_tag)
    check("pixel format", video.pix_fmt, spec.probed_pix_fmt or spec.pix_fmt)
    if expected is not None:
        check("size", (video.display_width, video.display_height), (expected.width, expected.height))
        check("frame rate", video.frame_rate, expected.frame_rate)
        check("frames", frames_decoded, expected.frame_count)
    else:
        if spec.width and spec.height:
            check("size", (video.display_width, video.display_height), (spec.width, spec.height))
        if spec.frame_rate:
            check("frame rate", video.frame_rate, spec.frame_rate)
    check("sample aspect ratio", video.sample_aspect_ratio, 1)
    check("variable frame rate", video.variable_frame_rate, False)
    check("colour", (video.color_primaries, video.color_transfer, video.color_matrix), COLOUR_TAGS[spec.colour])
    check("range", video.color_range, "tv")
    if audio is None:
        problems.append("audio: none (wanted a stream)")
    else:
        check("audio codec", audio.codec, preset.audio.codec)
        check("sample rate", audio.sample_rate, preset.audio.sample_rate)
        check("channels", audio.channels, preset.audio.channels)
        check("layout", audio.layout, probed_layout(preset))
        check("audio tracks", len(info.audio_tracks), len(track_contents(preset.audio)))
        if samples_decoded is not None:
            if expected is not None:
                if abs(samples_decoded - expected.sample_count) > expected.sample_tolerance:
                    problems.append(f"audio samples: {samples_decoded} (wanted {expected.sample_count})")
            else:
                picture_s = Fraction(frames_decoded) / video.frame_rate
                sound_s = Fraction(samples_decoded, audio.sample_rate)
                if abs(sound_s - picture_s) >= 1 / video.frame_rate:
                    problems.append(
                        f"length: sound {float(sound_s):.3f} s against picture {float(picture_s):.3f} s "
                        "(wanted within one frame)"
                    )
    return Check(
        "conformance", "fail" if problems else "pass", len(problems), "mismatches",
        f"container, codecs, raster, rate, colour, sound and length as preset {preset.name} says",
        "; ".join(problems),
    )


def _sync_check(report: SyncReport, out_of_sync: Status) -> Check:
    limit = (f"{report.standard.title}: sound may lead by {report.standard.max_lead_ms} ms, "
             f"lag by {report.standard.max_lag_ms} ms")
    if report.verdict == "undetermined":
        return Check("sync", "pass", None, "ms (sound late > 0)", limit, f"no verdict: {report.reason}")
    return Check(
        "sync", out_of_sync if report.verdict == "out_of_sync" else "pass", report.offset_ms,
        "ms (sound late > 0)", limit, f"{report.verdict}, confidence {report.confidence:.2f}",
    )
