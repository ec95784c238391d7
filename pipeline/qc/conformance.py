"""QC's conformance check: a file against its preset (and its plan's counts, when just rendered).

Verification (:mod:`pipeline.render.verify`) holds a rendered file to its plan before it is kept;
this check holds any file, finished here or not, to what its preset says.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from pipeline.media.isobmff import is_faststart
from pipeline.media.probe import MediaInfo
from pipeline.model.presets import Preset
from pipeline.plan.audio_tracks import track_contents
from pipeline.plan.hdr import COLOUR_TAGS
from pipeline.plan.outputs import BRANDS, ExpectedOutput, probed_layout
from pipeline.qc.report import Check


def conformance_check(
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
