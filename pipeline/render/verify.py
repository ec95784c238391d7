"""Check a file against the properties an :class:`ExpectedOutput` promises: the one conformance check.

A rendered file is held to its plan's promises here before it is kept; QC's ``conformance`` check
reports the same mismatches (verification's, for a file finished in a job; for a file checked on
its own, :func:`find_mismatches` against what its preset and the file itself fix, see
:mod:`pipeline.qc.conformance`). The container facts come from the probe; the decoded frame count,
the sound's sample counts, track levels and loudness from the one decode of the file
(:func:`pipeline.render.measure.measure_output`) whose measures QC reuses. A file QC never reads
(conformed editorial media) has its frames counted by demuxing instead of decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.media.isobmff import is_faststart
from pipeline.media.text_track import read_text_track
from pipeline.plan.caption_files import cue_problems
from pipeline.analysis.loudness import loudness_problems
from pipeline.analysis.track_levels import SoundMeasures
from pipeline.plan.outputs import ExpectedOutput
from pipeline.media.probe import MediaInfo, probe
from pipeline.render.measure import MeasuredOutput, measure_output

COPY_MATCH_DB = 0.01
"""A track that carries the programme (or one of its channels) has that channel's RMS level within
this much, in dB."""


@dataclass(frozen=True, eq=False)
class Verification:
    """A rendered file's probe, its one decode's measures, and how it differs from its plan."""

    info: MediaInfo
    """What the file probes as."""
    measured: MeasuredOutput
    """Its picture and sound measures (QC judges them)."""
    mismatches: tuple[str, ...]
    """Every way it differs from what was expected; empty when it conforms."""


def verify_output(path: Path, expected: ExpectedOutput, *, legalised: bool = False,
                  picture: bool = True) -> Verification:
    """Probe and decode ``path`` once, and list every way it differs from ``expected``.

    Args:
        path: The rendered file.
        expected: What its plan promised.
        legalised: Its preset legalises the picture (QC reports how much the legaliser changed).
        picture: Measure the picture for QC; False: count its frames by demuxing, decode only the sound.

    Raises:
        MediaError: the file does not open or does not decode.
    """
    info = probe(path)
    channels = tuple(name for number in expected.programme_tracks for name in expected.audio_tracks[number])
    measured = measure_output(path, info, expected.programme_tracks,
                              (expected.programme_start_frame, expected.programme_start_sample),
                              programme_channels=channels, legalised=legalised, picture=picture)
    return Verification(info, measured, tuple(find_mismatches(path, info, measured, expected)))


def find_mismatches(path: Path, info: MediaInfo, measured: MeasuredOutput, expected: ExpectedOutput) -> list[str]:
    """Every way the file differs from ``expected``, each naming the field, what was expected and
    what the file has: the probe's facts, and the decode's frame count and sound measures."""
    video, audio = info.video, info.audio
    problems: list[str] = []

    def check(what: str, actual, wanted) -> None:
        if actual != wanted:
            problems.append(f"{what}: expected {wanted}, got {actual}")

    check("container", info.container, expected.demuxer)
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
    check("frames decoded" if measured.picture else "video packets", measured.programme_start[0] + measured.frame_count,
          expected.frame_count)
    check("video duration", video.duration_s, expected.duration_s)
    primaries, transfer, matrix = expected.colour_tags
    check("colour primaries", video.color_primaries, primaries)
    check("colour transfer", video.color_transfer, transfer)
    check("colour matrix", video.color_matrix, matrix)
    check("colour range", video.color_range, expected.colour_range)
    # A progressive stream may leave its field order unsaid (DNxHR in MOV does).
    check("field order", video.field_order or "progressive", expected.field_order)
    check("start timecode", info.timecode, expected.timecode)
    if expected.faststart:
        check("moov before mdat (faststart)", is_faststart(path), True)
    if audio is None:
        problems.append("audio: expected a stream, found none")
    else:
        check("audio codec", audio.codec, expected.audio_codec)
        check("audio sample rate", audio.sample_rate, expected.sample_rate)
        check("audio channels", audio.channels, expected.channels)
        check("audio layout", audio.layout, expected.layout)
        check("audio tracks", len(info.audio_tracks), len(expected.audio_tracks))
        for number, track in enumerate(info.audio_tracks[1:], start=2):
            check(f"audio track {number} codec, channels, layout", (track.codec, track.channels, track.layout),
                  (expected.audio_codec, expected.channels, expected.layout))
        if len(info.audio_tracks) == len(expected.audio_tracks) and measured.sound is not None:
            problems += _track_problems(measured.sound, expected)
    if expected.subtitle_cues:
        problems += cue_problems("subtitle track", read_text_track(path), expected.subtitle_cues, expected.frame_rate)
    return problems


def _track_problems(levels: SoundMeasures, expected: ExpectedOutput) -> list[str]:
    """Sample counts, silent tracks silent, each other track's channels at the levels of the
    programme channels they carry, and where promised the programme's loudness. Levels are
    compared only when the programme has the channels expected (else the channel count is the
    mismatch, reported with the stream's facts)."""
    channels = tuple(name for number in expected.programme_tracks for name in expected.audio_tracks[number])
    programme_levels = tuple(level for number in expected.programme_tracks for level in levels.tracks[number].rms_dbfs)
    programme = dict(zip(channels, programme_levels, strict=True)) if len(programme_levels) == len(channels) else None
    problems = []
    for number, (track, content) in enumerate(zip(levels.tracks, expected.audio_tracks, strict=True), start=1):
        if abs(track.sample_count - expected.sample_count) > expected.sample_tolerance:
            problems.append(f"audio track {number} samples: expected {expected.sample_count} "
                            f"(±{expected.sample_tolerance}), got {track.sample_count}")
        measured = ", ".join(f"{level:.2f}" for level in track.rms_dbfs)
        if programme is None:
            continue
        if all(name is None for name in content):
            if not track.silent:
                problems.append(f"audio track {number}: expected silence, got sound ({measured} dBFS RMS)")
            continue
        wanted = tuple(programme[name] for name in content)
        if len(track.rms_dbfs) != len(wanted) or not all(map(_same_level, track.rms_dbfs, wanted)):
            problems.append(f"audio track {number}: expected the programme's {' '.join(content)} "
                            f"({', '.join(f'{level:.2f}' for level in wanted)} dBFS RMS), got {measured}")
    if expected.loudness is not None and levels.programme is not None:
        problems += loudness_problems(levels.programme, expected.loudness)
    return problems


def _same_level(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= COPY_MATCH_DB
