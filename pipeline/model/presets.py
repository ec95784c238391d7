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

from pipeline.model.encoder_options import check_encoder_options
from pipeline.errors import JobError
from pipeline.model.timebase import check_time_syntax, format_rate, parse_rate

BUILTIN_PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"
USER_PRESETS_ENV_VAR = "POSTPROD_PRESETS"
PRESET_SCHEMA_VERSION = 1

MIN_FRAME_RATE = Fraction(1)
MAX_FRAME_RATE = Fraction(240)
"""Frame rates a deliverable or sequence may have: below 1 fps a frame count is meaningless for
video, and above 240 fps no delivery format exists (and a render at 100000 fps never ends)."""
MAX_RASTER_SIDE = 8192
"""Longest frame side in pixels (8K DCI is 8192 wide): beyond it encoders refuse or memory runs out."""


def _rate_in_range(rate: Fraction) -> Fraction:
    if not MIN_FRAME_RATE <= rate <= MAX_FRAME_RATE:
        raise ValueError(f"frame rate {format_rate(rate)} is outside {MIN_FRAME_RATE} to {MAX_FRAME_RATE} "
                         "frames per second")
    return rate


FrameRate = Annotated[Fraction, BeforeValidator(parse_rate), AfterValidator(_rate_in_range),
                      PlainSerializer(format_rate, return_type=str)]
"""A frame rate written as ``25``, ``"30000/1001"`` or ``29.97`` and held as an exact fraction,
from :data:`MIN_FRAME_RATE` to :data:`MAX_FRAME_RATE`."""


def _time_syntax(value: str | float | int) -> str | float | int:
    check_time_syntax(value)
    return value


TimeValue = Annotated[str | float | int, AfterValidator(_time_syntax)]
"""A time as a job file writes it: seconds (``1.5``), frames (``"36f"``) or timecode
(``"00:00:01:12"``). Its syntax is checked on validation; it is read once the rate it counts at is
known."""

EncoderOptions = dict[str, str | int | float]
Anchor = Literal[
    "top_left", "top_center", "top_right",
    "middle_left", "center", "middle_right",
    "bottom_left", "bottom_center", "bottom_right",
]
"""Where text or a logo sits in the safe area."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


LEGALISABLE_PIX_FMT = r"yuv4(20|22|44)p(10le|12le)?"
"""Pixel formats the broadcast legaliser handles (:mod:`pipeline.plan.legalise`)."""


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
    width: int | None = Field(default=None, gt=0, le=MAX_RASTER_SIDE)
    """Frame width in pixels; None keeps the first shot's width. Even for 4:2:0 and 4:2:2."""
    height: int | None = Field(default=None, gt=0, le=MAX_RASTER_SIDE)
    """Frame height in pixels; None keeps the first shot's height. Even for 4:2:0."""
    frame_rate: FrameRate | None = None
    """Frames per second; None keeps the first shot's rate."""
    fit: Literal["center", "smart", "fit_blur", "pad", "crop"] = "pad"
    """How a picture of another aspect ratio is fitted. ``center``: fill the frame, centre-cropped
    (``crop`` is the same, its older name). ``smart``: fill the frame, cropped around what matters,
    following it per shot (see :mod:`pipeline.analysis.reframe`). ``fit_blur``: the whole picture over a
    blurred, scaled copy of itself. ``pad``: the whole picture, letter/pillarboxed in black (or the
    job's ``sequence.fill``)."""
    smart_fallback: Literal["most_important", "fit_blur"] = "most_important"
    """``smart`` only: when the subjects of a shot cannot all fit the crop, follow the most important
    one, or show the whole picture as ``fit_blur`` does."""
    gop_seconds: Fraction | None = Field(default=None, gt=0)
    """Keyframe interval in seconds for long-GOP codecs; None for intra-only codecs."""
    options: EncoderOptions = Field(default_factory=dict)
    """Encoder options, each passed as ``-KEY:v VALUE``; only those the encoder's allow-list has,
    with values of the right shape (see :mod:`pipeline.model.encoder_options`)."""
    burn_in_timecode: bool = False
    """Burn record timecode into the picture (review copies)."""
    upscale: Literal["lanczos", "spline36", "learned"] = "lanczos"
    """Scaler (see :mod:`pipeline.plan.enhance`): ``lanczos``, ``spline36`` (zimg), or ``learned`` (the
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
    """Rebuild frames that repeat their predecessor while the picture moves (see :mod:`pipeline.prestage.stutter`)."""
    colour: Literal["bt709", "bt2020-pq"] = "bt709"
    """Colour encoding: ``bt709`` (SDR; PQ and HLG sources are tone-mapped, see :mod:`pipeline.plan.hdr`)
    or ``bt2020-pq`` (HDR10: BT.2020 primaries and matrix, SMPTE ST 2084 transfer; HDR sources only)."""
    hdr10: Hdr10Spec | None = None
    """``bt2020-pq`` only: mastering display and content light levels used when a source has none."""
    legalise: bool = False
    """Bring luma and R'G'B' gamut inside EBU R 103 with a soft knee after everything else (transitions,
    overlays, fills) and before encoding (see :mod:`pipeline.plan.legalise`); on in broadcast presets."""

    field_order: Literal["progressive", "tff"] = "progressive"
    """``tff``: the frames are flagged interlaced, top field first, for an encoder set to code
    fields (``flags: +ildct+ilme`` for MPEG-2); the output must probe as top field first."""

    @model_validator(mode="after")
    def _valid_for_encoder(self) -> VideoSpec:
        problems = check_encoder_options(self.encoder, self.options)
        # Chroma subsampling halves the chroma planes: 4:2:0 across and down, 4:2:2 across.
        if "420" in self.pix_fmt or "422" in self.pix_fmt:
            if self.width is not None and self.width % 2:
                problems.append(f"width: {self.width} is odd; {self.pix_fmt} needs an even width")
            if "420" in self.pix_fmt and self.height is not None and self.height % 2:
                problems.append(f"height: {self.height} is odd; {self.pix_fmt} needs an even height")
        if problems:
            raise ValueError("\n".join(problems))
        return self

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
    layout: Literal["stereo", "5.1", "source"] = "stereo"
    """Channel layout of the programme: ``stereo`` (5.1 sources downmixed); ``5.1`` (L R C LFE Ls Rs
    passed through from 5.1 sources; stereo and mono shots on L and R, the rest silent; a job error
    when no shot's sound is 5.1); or ``source`` (5.1 when a shot's sound is 5.1, else stereo). See
    :mod:`pipeline.plan.audio_tracks`."""
    tracks: Literal["stereo", "stereo+stereo", "8-mono", "5.1"] = "stereo"
    """How the programme is laid out in audio tracks (see :mod:`pipeline.plan.audio_tracks`). Stereo:
    one stereo track; two stereo tracks (the programme, then :attr:`second_pair`); or eight mono
    tracks (1-2 the programme's left and right, 3-4 :attr:`second_pair`, 5-8 silent), as XDCAM HD422
    carries them. 5.1: one six-channel track (``5.1``), or eight mono tracks (1-6 L R C LFE Ls Rs, 7-8
    silent). With ``layout: source``, ``5.1`` becomes ``stereo`` for stereo sources."""
    second_pair: Literal["copy", "silent"] = "silent"
    """What the second pair of a stereo programme's ``stereo+stereo`` or ``8-mono`` layout carries: a
    copy of the programme or silence. A 5.1 programme has none (tracks 7-8 of its ``8-mono`` are silent)."""
    options: EncoderOptions = Field(default_factory=dict)
    """Encoder options, each passed as ``-KEY:a VALUE``; see :mod:`pipeline.model.encoder_options`."""

    @model_validator(mode="after")
    def _valid_for_encoder(self) -> AudioSpec:
        problems = check_encoder_options(self.encoder, self.options)
        five_one_tracks = ("5.1", "8-mono")
        if self.layout == "stereo" and self.tracks == "5.1":
            problems.append("tracks: 5.1 needs layout 5.1 or source")
        if self.layout != "stereo" and self.tracks not in five_one_tracks:
            problems.append(f"tracks: layout {self.layout} lays the programme out as {' or '.join(five_one_tracks)}, "
                            f"not {self.tracks}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def channels(self) -> int:
        """Channel count of each audio track; a ``source`` layout not yet resolved counts as stereo."""
        return 1 if self.tracks == "8-mono" else 6 if self.layout == "5.1" else 2


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


class AiLabel(_Model):
    """The visible AI disclosure an ``ai_label`` overlay shows on this deliverable."""

    text: str = Field(default="AI-generated", min_length=1, max_length=80)
    """The label as the platform or broadcaster words it."""
    anchor: Anchor = "top_left"
    """Where it sits inside the text-safe area (clear of the platform's own interface)."""


class ProvenanceSpec(_Model):
    """How a deliverable carries its provenance."""

    credentials: Literal["embed", "sidecar"] = "embed"
    """C2PA manifest inside the file, or beside it as ``NAME.c2pa`` (for ingest systems that
    reject files with boxes they do not know)."""
    ai_label: AiLabel = AiLabel()
    """Wording and place of the visible AI label."""


class TimecodeSpec(_Model):
    """The timecode track a deliverable carries (``tmcd`` in MOV/MP4, the material package's
    timecode component in MXF)."""

    start: str = Field(default="00:00:00:00", pattern=r"^\d{2}:[0-5]\d:[0-5]\d:\d{2}$")
    """Timecode of the programme's first frame, ``HH:MM:SS:FF`` (``10:00:00:00`` for broadcast).
    With a leader, the file starts earlier by the leader's length."""
    drop_frame: bool = False
    """Count drop-frame (written ``HH:MM:SS;FF``); only at 29.97 and 59.94 fps."""


class LeaderSpec(_Model):
    """Line-up before the programme, as UK/EBU commercial delivery specs lay it out: bars and tone,
    then a slate (clock) counting down, then black, ending exactly where the programme starts.

    Lengths are whole timecode seconds (that many times the nominal frame rate in frames), so with
    the defaults and a programme at 10:00:00:00 the bars start at 09:59:30:00, the clock at
    09:59:50:00 and black at 09:59:57:00.
    """

    bars: Literal["ebu", "smpte"] = "ebu"
    """``ebu``: EBU 100/0/75/0 colour bars (ffmpeg ``pal75bars``); ``smpte``: SMPTE RP 219 HD bars
    (``smptehdbars``)."""
    bars_seconds: int = Field(default=20, ge=1, le=120)
    """Length of bars and tone."""
    tone_dbfs: float = Field(default=-18.0, ge=-40, le=0)
    """Peak level of the 1 kHz line-up tone under the bars, dBFS (EBU R 68: -18)."""
    slate_seconds: int = Field(default=7, ge=1, le=60)
    """Length of the slate (clock), in silence."""
    black_seconds: int = Field(default=3, ge=0, le=60)
    """Black and silence between the slate and the programme."""


class CaptionFilesSpec(_Model):
    """Caption files written beside the deliverable from the job's captions overlays (none when the
    job has no captions)."""

    formats: list[Literal["srt", "vtt", "ttml"]] = Field(default_factory=lambda: ["srt", "vtt", "ttml"], min_length=1)
    """``srt`` (SubRip), ``vtt`` (WebVTT), ``ttml`` (EBU-TT-D, EBU Tech 3380)."""
    language: str = Field(default="en", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    """BCP 47 language of the captions, written into the EBU-TT-D document."""
    track: bool = False
    """Also carry the captions as a soft subtitle track (``mov_text``) inside the file, which players
    can switch on; MP4 only (see :mod:`pipeline.plan.subtitle_track`)."""


class Preset(_Model):
    """A deliverable specification: container, picture, sound."""

    version: Literal[1] = PRESET_SCHEMA_VERSION
    """Schema version of this preset file."""
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    """Name scripts and job files use, e.g. ``web-h264-1080p``."""
    description: str
    """One line saying what the deliverable is for."""
    container: Literal["mov", "mp4", "mxf"]
    """Output container; also the file extension. ``mxf`` is MXF OP1a (ffmpeg's ``mxf`` muxer)."""
    faststart: bool = False
    """Put the ``moov`` index before the media data (web playback)."""
    video: VideoSpec
    """Picture: encoder and codec, size and fit, frame rate, pixel format, GOP, enhancement."""
    audio: AudioSpec
    """Sound: encoder and codec, sample rate, channel layout, encoder options."""
    safe_area: SafeArea = SafeArea()
    """Action- and graphics-safe areas and platform UI zones, used by overlay layout."""
    loudness: LoudnessSpec | None = None
    """Loudness target the sound is normalised to and checked against; None leaves levels alone."""
    qc_policy: Literal["fail", "warn"] = "warn"
    """A failing QC check fails the job (``fail``, broadcast) or is reported as a warning (``warn``)."""
    provenance: ProvenanceSpec = ProvenanceSpec()
    """Content credentials and the visible AI label."""
    timecode: TimecodeSpec | None = None
    """Timecode track to write; None writes none."""
    caption_files: CaptionFilesSpec | None = None
    """Caption files beside the deliverable; None writes none."""
    leader: LeaderSpec | None = None
    """Bars, tone, slate and black before the programme; None: the file starts with the programme.
    QC and loudness measure the programme only."""

    @model_validator(mode="after")
    def _subtitle_track_fits(self) -> Preset:
        if self.caption_files is not None and self.caption_files.track and self.container != "mp4":
            raise ValueError(f"caption_files.track: a soft subtitle track is written into MP4 only; this "
                             f"preset's container is {self.container}")
        return self

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
        # A model's own check may report several problems, one per line, each naming its field.
        lines += [f"{field}: {line}" if field else line for line in message.splitlines()]
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
