"""High dynamic range in and out: HDR sources tone-mapped for SDR deliverables, and the colour
encoding, tags and static metadata of an HDR10 deliverable.

Tone mapping (PQ, SMPTE ST 2084, and HLG, ARIB STD-B67, to BT.709): zimg linearises the picture
with 100 cd/m2 as nominal peak (SDR reference white), converts BT.2020 primaries to BT.709 in linear
light, ffmpeg's ``tonemap`` compresses the highlights with Hable's filmic curve, and zimg applies
the BT.709 transfer and matrix. Hable over Mobius and Reinhard because, measured on the PQ and HLG
devclips, it keeps the midtones where a matrix-only conversion has them while rolling the highlights
off with the fewest clipped pixels (see docs/hdr.md). ``desat=0``: the highlights keep their colour
(the curve already darkens them; ffmpeg's default desaturation greys them).
"""

from __future__ import annotations

from typing import Literal

from pipeline.errors import JobError
from pipeline.model.presets import Hdr10Spec
from pipeline.media.probe import Hdr10Metadata, VideoStreamInfo

Colour = Literal["bt709", "bt2020-pq"]
"""A deliverable's colour encoding: BT.709 SDR, or BT.2020 with the PQ transfer (HDR10)."""

COLOUR_RANGE_TAG = "tv"
"""Every deliverable is limited range."""

HDR_TRANSFERS = {"smpte2084": "smpte2084", "arib-std-b67": "arib-std-b67"}
"""Transfer tags (probe's vocabulary) of HDR pictures, mapped to zscale's names."""

COLOUR_TAGS: dict[str, tuple[str, str, str]] = {
    "bt709": ("bt709", "bt709", "bt709"),
    "bt2020-pq": ("bt2020", "smpte2084", "bt2020nc"),
}
"""Primaries, transfer and matrix tags of each colour encoding (ffmpeg's names)."""

SCALE_MATRIX = {"bt709": "bt709", "bt2020-pq": "bt2020"}
"""The YUV matrix of each colour encoding in the ``scale`` filter's vocabulary."""

TONE_MAP_OPERATOR = "hable"
"""ffmpeg ``tonemap`` curve used for HDR sources in SDR deliverables."""
SDR_NOMINAL_PEAK_CD_M2 = 100
"""Luminance linear 1.0 stands for when HDR is linearised: SDR reference white."""
TONE_MAP_FORMAT = "gbrpf32le"
"""Linear light is tone-mapped in float: no clipping before the curve sees the highlights."""
CONVERTED_FORMAT = "yuv444p16le"
"""What a converted picture is handed on in: 16-bit, so it is quantised once, by the final scale."""


def is_hdr(video: VideoStreamInfo) -> bool:
    """True for PQ and HLG pictures."""
    return video.color_transfer in HDR_TRANSFERS


def needs_conversion(video: VideoStreamInfo, colour: Colour) -> bool:
    """True where a shot needs more than a matrix change to reach the deliverable's colour encoding:
    HDR into SDR (tone mapping), HLG into HDR10 (to PQ)."""
    if colour == "bt709":
        return is_hdr(video)
    return video.color_transfer == "arib-std-b67"


def convert_colour(stream, video: VideoStreamInfo, colour: Colour):
    """A shot already scaled to its size in the deliverable (its own BT.2020 matrix kept, limited
    range, :data:`CONVERTED_FORMAT`) brought into ``colour`` (see :func:`needs_conversion`), in
    :data:`CONVERTED_FORMAT`. Converting after the scale costs the least: a 4K source into a 1080p
    deliverable is tone-mapped at 1080p."""
    if colour == "bt709":
        return tone_map_to_sdr(stream, HDR_TRANSFERS[video.color_transfer])
    return hlg_to_pq(stream)


def tone_map_to_sdr(stream, transfer: str):
    """A limited-range BT.2020 HDR picture (``transfer`` in zscale's names) tone-mapped to BT.709
    SDR, limited range."""
    return (
        stream.filter("zscale", transferin=transfer, primariesin="bt2020", matrixin="bt2020nc", rangein="limited",
                      transfer="linear", npl=SDR_NOMINAL_PEAK_CD_M2)
        .filter("format", TONE_MAP_FORMAT)
        .filter("zscale", primaries="bt709")
        .filter("tonemap", tonemap=TONE_MAP_OPERATOR, desat=0)
        .filter("zscale", transfer="bt709", matrix="bt709", range="limited")
        .filter("format", CONVERTED_FORMAT)
    )


def hlg_to_pq(stream):
    """A limited-range HLG picture re-encoded with the PQ transfer (BT.2100's conversion, 1000 cd/m2
    display)."""
    return stream.filter(
        "zscale", transferin="arib-std-b67", primariesin="bt2020", matrixin="bt2020nc", rangein="limited",
        transfer="smpte2084", primaries="bt2020", matrix="bt2020nc", range="limited",
    ).filter("format", CONVERTED_FORMAT)


def check_hdr_sources(colour: Colour, shots: list[VideoStreamInfo], field: str) -> None:
    """An HDR10 deliverable is made from HDR shots only (no inverse tone mapping of SDR).

    Raises:
        JobError: a shot is SDR; the message names the deliverable field and the shot.
    """
    if colour != "bt2020-pq":
        return
    for number, video in enumerate(shots):
        if not is_hdr(video):
            raise JobError(
                f"{field}: an HDR10 (BT.2020 PQ) deliverable needs HDR sources (PQ or HLG); "
                f"shots.{number} is {video.color_transfer or 'untagged'} SDR: use an SDR preset for it"
            )


def output_colour(colour: Colour) -> dict[str, str]:
    """``setparams`` arguments that tag frames with the colour encoding."""
    primaries, transfer, matrix = COLOUR_TAGS[colour]
    return {"color_primaries": primaries, "color_trc": transfer, "colorspace": matrix, "range": COLOUR_RANGE_TAG}


def x265_hdr10_params(defaults: Hdr10Spec, source: Hdr10Metadata | None) -> str:
    """x265 parameters for HDR10 signalling: the source's mastering display and content light
    levels where it carries them, else the preset's; repeated with every keyframe."""
    master_display = (source and source.master_display) or defaults.master_display
    max_cll = (source and source.max_cll) or defaults.max_cll
    params = ["hdr10=1", "hdr10-opt=1", "repeat-headers=1"]
    if master_display:
        params.append(f"master-display={master_display}")
    if max_cll:
        params.append(f"max-cll={max_cll}")
    return ":".join(params)
