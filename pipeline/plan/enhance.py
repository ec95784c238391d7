"""Enhancement settings and the ffmpeg-native parts of them: how a shot reaches the deliverable's rate
(duplicate, blend, motion-compensated ``minterpolate``, speed change) and raster (lanczos, spline36,
optional sharpening), and the sound's time-stretch when the picture's speed changes.

The Python-side modes (``flow`` rate conversion, ``destutter``, the ``learned`` upscaler) run before
planning, in :mod:`pipeline.prestage.enhance_stage`; the conform chain then sees a source already at the
deliverable's rate (or size) and treats it like any other.

Every mode except ``speed`` keeps each shot's duration exactly. ``speed`` plays every source frame at
the deliverable's rate (24 -> 25 fps: 4.17 % faster, broadcast practice for film to PAL), so the shot
gets shorter or longer by the ratio of the rates, and its sound is time-stretched by the same ratio
with its pitch kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from pipeline.errors import JobError
from pipeline.media.runner import available_filters
from pipeline.model.presets import Preset, VideoSpec, format_validation_error
from pipeline.model.timebase import format_rate

UpscaleMode = Literal["lanczos", "spline36", "learned"]
"""How a picture is scaled: swscale lanczos, zimg spline36, or an ONNX super-resolution model."""
RateConversion = Literal["duplicate", "blend", "mci", "flow", "speed"]
"""How a shot reaches the deliverable's frame rate: drop or duplicate frames, blend neighbours
(ffmpeg ``framerate``), motion-compensated interpolation (``minterpolate``), the project's
optical-flow interpolator, or a speed change (every frame kept, duration changes)."""
PYTHON_RATE_CONVERSIONS = frozenset({"flow"})
"""Rate conversions done in Python before planning."""
MAX_SPEED_CHANGE = Fraction(1, 20)
"""``speed`` changes a shot's speed by at most 5 %: 24 <-> 25 (4.17 %) and the 1001 conforms
(0.1 %); larger changes are audible and visible and are not what the mode is for."""

LANCZOS_FLAGS = "lanczos+accurate_rnd+full_chroma_int"
"""swscale flags of the default scaler."""
SHARPEN_SIZE = 5
"""unsharp's luma matrix size (pixels, odd) for the optional sharpening after an upscale."""

# The scale filter's matrix vocabulary mapped to zimg's.
_ZSCALE_MATRIX = {"bt709": "bt709", "bt470": "bt470bg", "smpte170m": "smpte170m", "smpte240m": "smpte240m",
                  "bt2020": "bt2020nc"}


@dataclass(frozen=True)
class EnhanceSettings:
    """One deliverable's enhancement settings, preset and job override merged."""

    upscale: UpscaleMode = "lanczos"
    """Scaler for pictures that change size."""
    sharpen: float | None = None
    """unsharp luma amount applied after scaling (0.3 is gentle); None: none."""
    rate_conversion: RateConversion = "duplicate"
    """How shots reach the deliverable's frame rate."""
    destutter: bool = False
    """Rebuild frames that repeat their predecessor in a moving picture (Python pre-stage)."""
    model: Path | None = None
    """ONNX super-resolution model for ``upscale: learned``."""

    @classmethod
    def from_video_spec(cls, spec: VideoSpec) -> EnhanceSettings:
        """The settings a preset's picture spec asks for."""
        return cls(
            upscale=spec.upscale,
            sharpen=spec.sharpen,
            rate_conversion=spec.rate_conversion,
            destutter=spec.destutter,
            model=Path(spec.upscale_model) if spec.upscale_model else None,
        )

    @property
    def needs_python_stage(self) -> bool:
        """True when sources go through the Python pre-stage before planning."""
        return self.rate_conversion in PYTHON_RATE_CONVERSIONS or self.destutter or self.upscale == "learned"


def apply_job_enhance(preset: Preset, video_overrides: dict) -> Preset:
    """``preset`` with a job's ``enhance`` settings over its own (deliverable overrides come after).

    Raises:
        JobError: a value the preset schema refuses; the message names ``enhance``.
    """
    if not video_overrides:
        return preset
    try:
        return preset.with_overrides({"video": video_overrides})
    except ValidationError as error:
        raise JobError(format_validation_error(error, "enhance")) from None


def shot_speeds(mode: str, source_rates: list[Fraction], target_rate: Fraction) -> list[Fraction]:
    """:func:`speed_factor` of each shot, for :func:`pipeline.timeline.sequence.build_timeline`."""
    return [speed_factor(mode, rate, target_rate) for rate in source_rates]


def speed_factor(mode: str, source_rate: Fraction, target_rate: Fraction) -> Fraction:
    """How much faster a shot plays: ``target / source`` rate for ``speed``, else 1.

    Raises:
        JobError: ``speed`` would change the speed by more than :data:`MAX_SPEED_CHANGE`.
    """
    if mode != "speed" or source_rate == target_rate:
        return Fraction(1)
    factor = target_rate / source_rate
    if abs(factor - 1) > MAX_SPEED_CHANGE:
        raise JobError(
            f"rate_conversion speed: {format_rate(source_rate)} -> {format_rate(target_rate)} fps would "
            f"play {abs(float(factor - 1)) * 100:.1f} % {'faster' if factor > 1 else 'slower'}; speed "
            "conforms rates within 5 % (24 <-> 25, 23.976 <-> 24, 29.97 <-> 30); use flow, mci or "
            "duplicate for this one"
        )
    return factor


def retime(stream, mode: str, source_rate: Fraction, target_rate: Fraction, speed: Fraction = Fraction(1)):
    """The picture at exactly ``target_rate`` (constant), by ``mode``; timestamps from zero in.

    ``speed`` is the shot's :func:`speed_factor` (the timeline counts with it). ``flow`` sources
    arrive already converted, so they pass through like ``duplicate``.
    """
    rate = format_rate(target_rate)
    if speed != 1:
        # Frame N shows at N / target_rate: every frame kept, played at the new rate.
        stream = stream.filter("setpts", f"N*{target_rate.denominator}/({target_rate.numerator}*TB)")
    elif mode == "blend" and source_rate != target_rate:
        stream = stream.filter("framerate", fps=rate)
    elif mode == "mci" and source_rate != target_rate:
        stream = stream.filter("minterpolate", fps=rate, mi_mode="mci", mc_mode="aobmc", me_mode="bidir",
                               vsbmc=1, scd="fdiff")
    return stream.filter("fps", fps=rate, round="near")


def scale(stream, width: int, height: int, settings: EnhanceSettings, matrix: str, full_range: bool, pix_fmt: str,
          out_matrix: str = "bt709"):
    """Scale to ``width`` x ``height`` in ``out_matrix`` limited range and ``pix_fmt``, sharpened if asked.

    Args:
        stream: The picture.
        width: Width in pixels.
        height: Height in pixels.
        settings: The scaler and sharpening.
        matrix: The source's YUV matrix, in the ``scale`` filter's vocabulary.
        full_range: The source is full range.
        pix_fmt: Pixel format out.
        out_matrix: The deliverable's YUV matrix, in the ``scale`` filter's vocabulary.
    """
    if settings.upscale == "spline36":
        stream = stream.filter(
            "zscale", width=width, height=height, filter="spline36", matrixin=_ZSCALE_MATRIX[matrix],
            matrix=_ZSCALE_MATRIX[out_matrix], rangein="full" if full_range else "limited", range="limited",
        ).filter("format", pix_fmt)
    else:
        stream = stream.filter(
            "scale", width, height, flags=LANCZOS_FLAGS, in_color_matrix=matrix, out_color_matrix=out_matrix,
            in_range="pc" if full_range else "tv", out_range="tv",
        ).filter("format", pix_fmt)
    if settings.sharpen:
        stream = stream.filter("unsharp", luma_msize_x=SHARPEN_SIZE, luma_msize_y=SHARPEN_SIZE,
                               luma_amount=settings.sharpen, chroma_amount=0)
    return stream


def tempo(stream, speed: Fraction):
    """Sound played ``speed`` times faster with its pitch kept: rubberband where the ffmpeg build has
    it (phase-vocoder quality on tones and music), else ``atempo`` (WSOLA)."""
    if speed == 1:
        return stream
    if "rubberband" in available_filters():
        return stream.filter("rubberband", tempo=f"{float(speed):.9f}", pitchq="quality")
    return stream.filter("atempo", f"{float(speed):.9f}")
