"""Check a rendered file against the properties its plan promised."""

from __future__ import annotations

from pathlib import Path

from pipeline.media.isobmff import is_faststart
from pipeline.analysis.loudness import loudness_problems, measure_file
from pipeline.plan.planner import ExpectedOutput
from pipeline.media.probe import MediaInfo, decoded_audio_samples, probe


def find_mismatches(path: Path, expected: ExpectedOutput) -> tuple[MediaInfo, list[str]]:
    """Probe ``path`` and list every way it differs from ``expected`` (empty when it conforms)."""
    info = probe(path)
    video, audio = info.video, info.audio
    problems: list[str] = []

    def check(what: str, actual, wanted) -> None:
        if actual != wanted:
            problems.append(f"{what}: expected {wanted}, got {actual}")

    check("container brand", info.brand, expected.brand)
    check("video codec", video.codec, expected.video_codec)
    if expected.video_profile is not None:
        check("video profile", video.profile, expected.video_profile)
    if expected.codec_tag is not None:
        check("video codec tag", video.codec_tag, expected.codec_tag)
    check("pixel format", video.pix_fmt, expected.pix_fmt)
    check("frame size", (video.display_width, video.display_height), (expected.width, expected.height))
    check("sample aspect ratio", video.sample_aspect_ratio, 1)
    check("frame rate", video.frame_rate, expected.frame_rate)
    check("variable frame rate", video.variable_frame_rate, False)
    check("frame count", video.frame_count, expected.frame_count)
    check("video duration", video.duration_s, expected.duration_s)
    primaries, transfer, matrix = expected.colour_tags
    check("colour primaries", video.color_primaries, primaries)
    check("colour transfer", video.color_transfer, transfer)
    check("colour matrix", video.color_matrix, matrix)
    if expected.faststart:
        check("moov before mdat (faststart)", is_faststart(path), True)
    if audio is None:
        problems.append("audio: expected a stream, found none")
    else:
        check("audio codec", audio.codec, expected.audio_codec)
        check("audio sample rate", audio.sample_rate, expected.sample_rate)
        check("audio channels", audio.channels, expected.channels)
        check("audio layout", audio.layout, expected.layout)
        # One decode of the sound serves both the sample count and, where promised, the loudness.
        loudness = measure_file(path) if expected.loudness is not None else None
        samples = decoded_audio_samples(path) if loudness is None else loudness.sample_count
        if abs(samples - expected.sample_count) > expected.sample_tolerance:
            problems.append(
                f"audio samples: expected {expected.sample_count} "
                f"(±{expected.sample_tolerance}), got {samples}"
            )
        if loudness is not None:
            problems += loudness_problems(loudness, expected.loudness)
    return info, problems
