"""Deliverable presets: versioned YAML data validated into typed models.

Built-in presets live in the project's ``presets/`` folder. A user adds or overrides presets by dropping
YAML files into ``$POSTPROD_PRESETS`` (folders separated by ``os.pathsep``) or
``~/.config/postprod/presets``; a user preset with a built-in's name replaces it.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from pipeline.errors import JobError
from pipeline.timebase import check_time_syntax, format_rate, parse_rate

BUILTIN_PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
USER_PRESETS_ENV_VAR = "POSTPROD_PRESETS"
PRESET_SCHEMA_VERSION = 1

FrameRate = Annotated[Fraction, BeforeValidator(parse_rate), PlainSerializer(format_rate, return_type=str)]
"""A frame rate written as ``25``, ``"30000/1001"`` or ``29.97`` and held as an exact fraction."""


def _time_syntax(value: str | float | int) -> str | float | int:
    check_time_syntax(value)
    return value


TimeValue = Annotated[str | float | int, AfterValidator(_time_syntax)]
"""A time as a job file writes it: seconds (``1.5``), frames (``"36f"``) or timecode
(``"00:00:01:12"``). Its syntax is checked on validation; it is read once the rate it counts at is
known."""

EncoderOptions = dict[str, str | int | float]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


LEGALISABLE_PIX_FMT = r"yuv4(20|22|44)p(10le|12le)?"
"""Pixel formats the broadcast legaliser handles (:mod:`pipeline.legalise`)."""


class VideoSpec(_Model):
    """How a deliverable's picture is shaped and encoded."""

    encoder: str
    """ffmpeg encoder name, e.g. ``prores_ks``, ``libx264``."""
    codec: str
    """Codec name the output must probe as, e.g. ``prores``, ``h264``."""
    profile: str | None = None
    """Profile the output must probe as (``HQ``, ``High``); None skips the check."""
    codec_tag: str | None = None
    """Four-character sample entry to write and expect, e.g. ``hvc1``; None leaves the muxer's default."""
    pix_fmt: str
    """Output pixel format, e.g. ``yuv422p10le``."""
    probed_pix_fmt: str | None = None
    """Pixel format the output probes as when the decoder differs from :attr:`pix_fmt`; None: the same."""
    width: int | None = Field(default=None, gt=0)
    """Frame width in pixels; None keeps the first shot's width."""
    height: int | None = Field(default=None, gt=0)
    """Frame height in pixels; None keeps the first shot's height."""
    frame_rate: FrameRate | None = None
    """Frames per second; None keeps the first shot's rate."""
    fit: Literal["center", "smart", "fit_blur", "pad", "crop"] = "pad"
    """How a picture of another aspect ratio is fitted. ``center``: fill the frame, centre-cropped
    (``crop`` is the same, its older name). ``smart``: fill the frame, cropped around what matters,
    following it per shot (see :mod:`pipeline.reframe`). ``fit_blur``: the whole picture over a
    blurred, scaled copy of itself. ``pad``: the whole picture, letter/pillarboxed in black (or the
    job's ``sequence.fill``)."""
    smart_fallback: Literal["most_important", "fit_blur"] = "most_important"
    """``smart`` only: when the subjects of a shot cannot all fit the crop, follow the most important
    one, or show the whole picture as ``fit_blur`` does."""
    gop_seconds: Fraction | None = Field(default=None, gt=0)
    """Keyframe interval in seconds for long-GOP codecs; None for intra-only codecs."""
    options: EncoderOptions = Field(default_factory=dict)
    """Encoder options, each passed as ``-KEY:v VALUE``."""
    burn_in_timecode: bool = False
    """Burn record timecode into the picture (review copies)."""
    upscale: Literal["lanczos", "spline36", "learned"] = "lanczos"
    """Scaler (see :mod:`pipeline.enhance`): ``lanczos``, ``spline36`` (zimg), or ``learned`` (the
    ONNX super-resolution model named by ``upscale_model``)."""
    upscale_model: str | None = None
    """ONNX model file for ``upscale: learned``; a job's ``enhance.model`` sets it per job."""
    sharpen: float | None = Field(default=None, gt=0, le=2)
    """unsharp luma amount after scaling (0.3 is gentle); None: no sharpening."""
    rate_conversion: Literal["duplicate", "blend", "mci", "flow", "speed"] = "duplicate"
    """How shots reach :attr:`frame_rate`: ``duplicate`` (drop/repeat frames), ``blend``, ``mci``
    (ffmpeg minterpolate), ``flow`` (optical-flow interpolation, no morphing across cuts) or
    ``speed`` (every frame played at the new rate, sound time-stretched: 24 <-> 25, 1001 conforms)."""
    destutter: bool = False
    """Rebuild frames that repeat their predecessor while the picture moves (see :mod:`pipeline.stutter`)."""
    colour: Literal["bt709", "bt2020-pq"] = "bt709"
    """Colour encoding: ``bt709`` (SDR; PQ and HLG sources are tone-mapped, see :mod:`pipeline.hdr`)
    or ``bt2020-pq`` (HDR10: BT.2020 primaries and matrix, SMPTE ST 2084 transfer; HDR sources only)."""
    hdr10: Hdr10Spec | None = None
    """``bt2020-pq`` only: mastering display and content light levels used when a source has none."""
    legalise: bool = False
    """Bring luma and R'G'B' gamut inside EBU R 103 with a soft knee after everything else (transitions,
    overlays, fills) and before encoding (see :mod:`pipeline.legalise`); on in broadcast presets."""

    @model_validator(mode="after")
    def _legaliser_fits(self) -> VideoSpec:
        if self.legalise and (self.colour != "bt709" or not re.fullmatch(LEGALISABLE_PIX_FMT, self.pix_fmt)):
            raise ValueError("legalise works on 8-, 10- or 12-bit BT.709 Y'CbCr without alpha (colour: bt709, "
                             f"yuv420p/422p/444p); this preset has colour {self.colour}, pix_fmt {self.pix_fmt}")
        if self.hdr10 is not None and self.colour != "bt2020-pq":
            raise ValueError("hdr10 metadata needs colour: bt2020-pq")
        return self

    @property
    def fills_frame(self) -> bool:
        """True when the picture is scaled to fill the frame and cropped; False when it is fitted whole."""
        return self.fit in ("center", "crop", "smart")


HDR10_MASTER_DISPLAY = r"^G\(\d+,\d+\)B\(\d+,\d+\)R\(\d+,\d+\)WP\(\d+,\d+\)L\(\d+,\d+\)$"


class Hdr10Spec(_Model):
    """HDR10 static metadata written when the source carries none."""

    master_display: str | None = Field(default=None, pattern=HDR10_MASTER_DISPLAY)
    """SMPTE ST 2086 mastering display as x265 takes it: ``G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)``,
    chromaticities in units of 0.00002, luminances in 0.0001 cd/m2."""
    max_cll: str | None = Field(default=None, pattern=r"^\d+,\d+$")
    """CTA-861.3 ``MaxCLL,MaxFALL`` in cd/m2."""


class Insets(_Model):
    """Margins on each side of the frame: top and bottom as fractions of the height, left and right
    as fractions of the width."""

    top: float = Field(default=0.0, ge=0, lt=0.5)
    """Share of the frame height kept clear at the top."""
    bottom: float = Field(default=0.0, ge=0, lt=0.5)
    """Share of the frame height kept clear at the bottom."""
    left: float = Field(default=0.0, ge=0, lt=0.5)
    """Share of the frame width kept clear on the left."""
    right: float = Field(default=0.0, ge=0, lt=0.5)
    """Share of the frame width kept clear on the right."""


class SafeArea(_Model):
    """Where a deliverable's picture is safe for action and for text.

    The defaults are EBU R 95's insets for 16:9 (action-safe 3.5 %, graphics-safe 5 % of each
    dimension). Platform presets add the zones their app covers with its own interface.
    """

    action: Insets = Insets(top=0.035, bottom=0.035, left=0.035, right=0.035)
    """Action-safe insets: important picture content stays inside."""
    graphics: Insets = Insets(top=0.05, bottom=0.05, left=0.05, right=0.05)
    """Graphics-safe insets: text and logos stay inside."""
    ui: Insets = Insets()
    """Zones a platform's interface covers (captions, buttons, profile): text keeps clear of them."""

    @property
    def text(self) -> Insets:
        """Insets text must respect: on each side the larger of graphics-safe and the UI zone."""
        return Insets(
            top=max(self.graphics.top, self.ui.top),
            bottom=max(self.graphics.bottom, self.ui.bottom),
            left=max(self.graphics.left, self.ui.left),
            right=max(self.graphics.right, self.ui.right),
        )


class AudioSpec(_Model):
    """How a deliverable's sound is encoded."""

    encoder: str
    """ffmpeg encoder name, e.g. ``pcm_s24le``, ``aac``."""
    codec: str
    """Codec name the output must probe as."""
    sample_rate: int = Field(default=48000, gt=0)
    """Samples per second."""
    layout: Literal["stereo"] = "stereo"
    """Channel layout; stereo for now (5.1 deliverables are a later addition)."""
    options: EncoderOptions = Field(default_factory=dict)
    """Encoder options, each passed as ``-KEY:a VALUE``."""

    @property
    def channels(self) -> int:
        """Channel count of :attr:`layout`."""
        return {"stereo": 2}[self.layout]


LOUDNESS_STANDARDS: dict[str, dict[str, float]] = {
    "ebu-r128": {"integrated_lufs": -23.0, "tolerance_lu": 0.5, "true_peak_dbtp": -1.0},
    "atsc-a85": {"integrated_lufs": -24.0, "tolerance_lu": 2.0, "true_peak_dbtp": -2.0},
    "streaming": {"integrated_lufs": -14.0, "tolerance_lu": 1.0, "true_peak_dbtp": -1.0},
}
"""Targets of the named loudness standards; a preset may still override any of the three values."""


class LoudnessSpec(_Model):
    """The programme loudness a deliverable must meet (BS.1770-4 integrated, gated).

    A value left out is the standard's, so overriding ``standard`` alone moves every target.
    """

    standard: Literal["ebu-r128", "atsc-a85", "streaming", "custom"]
    """``ebu-r128`` (-23 LUFS +-0.5, -1 dBTP), ``atsc-a85`` (-24 LKFS +-2, -2 dBTP), ``streaming``
    (-14 LUFS +-1, -1 dBTP), or ``custom`` with every value given."""
    integrated_lufs: float | None = Field(default=None, ge=-70, le=0)
    """Target integrated loudness, LUFS; None: the standard's."""
    tolerance_lu: float | None = Field(default=None, gt=0, le=10)
    """Allowed distance of the measured integrated loudness from the target, LU; None: the standard's."""
    true_peak_dbtp: float | None = Field(default=None, ge=-20, le=0)
    """Highest true peak allowed, dBTP; None: the standard's."""

    @model_validator(mode="after")
    def _custom_is_complete(self) -> LoudnessSpec:
        if self.standard == "custom" and None in (self.integrated_lufs, self.tolerance_lu, self.true_peak_dbtp):
            raise ValueError("a custom loudness standard needs integrated_lufs, tolerance_lu and true_peak_dbtp")
        return self

    def _value(self, name: str) -> float:
        value = getattr(self, name)
        return LOUDNESS_STANDARDS[self.standard][name] if value is None else value

    @property
    def target_lufs(self) -> float:
        """Target integrated loudness, LUFS."""
        return self._value("integrated_lufs")

    @property
    def tolerance(self) -> float:
        """Allowed distance from the target, LU."""
        return self._value("tolerance_lu")

    @property
    def max_true_peak_dbtp(self) -> float:
        """Highest true peak allowed, dBTP."""
        return self._value("true_peak_dbtp")


class Preset(_Model):
    """A deliverable specification: container, picture, sound."""

    version: Literal[1] = PRESET_SCHEMA_VERSION
    """Schema version of this preset file."""
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    """Name scripts and job files use, e.g. ``web-h264-1080p``."""
    description: str
    """One line saying what the deliverable is for."""
    container: Literal["mov", "mp4"]
    """Output container; also the file extension."""
    faststart: bool = False
    """Put the ``moov`` index before the media data (web playback)."""
    video: VideoSpec
    audio: AudioSpec
    safe_area: SafeArea = SafeArea()
    """Action- and graphics-safe areas and platform UI zones, used by overlay layout."""
    loudness: LoudnessSpec | None = None
    """Loudness target the sound is normalised to and checked against; None leaves levels alone."""
    qc_policy: Literal["fail", "warn"] = "warn"
    """A failing QC check fails the job (``fail``, broadcast) or is reported as a warning (``warn``)."""

    @property
    def extension(self) -> str:
        """File extension including the dot."""
        return f".{self.container}"

    def with_overrides(self, overrides: dict[str, Any]) -> Preset:
        """A copy with ``overrides`` deep-merged in and validated again.

        Raises:
            pydantic.ValidationError: an override names an unknown field or has a bad value.
        """
        merged = _deep_merge(self.model_dump(mode="json"), overrides)
        return Preset.model_validate(merged)


def _deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def format_validation_error(error: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming the field path, e.g. ``video.width: must be > 0``."""
    lines = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"])
        field = f"{prefix}.{location}" if prefix and location else (prefix or location)
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{field}: {message}")
    return "\n".join(lines)


def user_preset_dirs() -> list[Path]:
    """Folders searched for user presets, in increasing priority."""
    configured = os.environ.get(USER_PRESETS_ENV_VAR)
    if configured:
        return [Path(part).expanduser() for part in configured.split(os.pathsep) if part]
    return [Path("~/.config/postprod/presets").expanduser()]


def load_preset_file(path: Path) -> Preset:
    """Read and validate one preset file.

    Raises:
        JobError: the file is not YAML or not a valid preset; the message names the file and field.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise JobError(f"preset file {path}: cannot be read as YAML ({error})") from error
    if not isinstance(data, dict):
        raise JobError(f"preset file {path}: expected a mapping of preset fields")
    try:
        return Preset.model_validate(data)
    except ValidationError as error:
        raise JobError(f"preset file {path}:\n{format_validation_error(error)}") from error


def load_presets(extra_dirs: tuple[Path, ...] = ()) -> dict[str, Preset]:
    """All presets by name: built-ins, then user folders, then ``extra_dirs``; later ones win.

    Read afresh on every call (a dozen small files), so a preset added while a service runs is seen.
    """
    presets: dict[str, Preset] = {}
    for folder in (BUILTIN_PRESETS_DIR, *user_preset_dirs(), *extra_dirs):
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                preset = load_preset_file(path)
                presets[preset.name] = preset
    return presets


def get_preset(name: str, presets: dict[str, Preset] | None = None) -> Preset:
    """The preset called ``name``.

    Raises:
        JobError: no preset has that name; the message lists the known names.
    """
    presets = load_presets() if presets is None else presets
    try:
        return presets[name]
    except KeyError:
        known = ", ".join(sorted(presets))
        raise JobError(f"unknown preset {name!r}; known presets: {known}") from None
