"""QC's conformance check: verification's mismatches, for a file finished here or checked on its own.

One function judges conformance (:func:`pipeline.render.verify.find_mismatches`, against an
:class:`ExpectedOutput`). A deliverable finished in a job was judged against its plan's promises by
verification; QC reports those mismatches. A file checked on its own has no plan, so
:func:`expected_of_file` builds the promises from what its preset fixes and the file itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from pipeline.media.probe import MediaInfo
from pipeline.model.presets import Preset
from pipeline.plan.audio_tracks import programme_tracks, track_contents
from pipeline.plan.hdr import COLOUR_TAGS
from pipeline.plan.outputs import BRANDS, DEMUXERS, ExpectedOutput, probed_layout
from pipeline.qc.report import Check
from pipeline.render.measure import MeasuredOutput
from pipeline.timeline.timecode_track import file_start_timecode


def expected_of_file(preset: Preset, info: MediaInfo, measured: MeasuredOutput) -> ExpectedOutput:
    """What a file checked without its plan must be: what ``preset`` fixes (container, codecs,
    colour, field order, sound, its raster and rate where set, its timecode's start), and the file's
    own length, its sound within a frame of its picture.

    Args:
        preset: The preset, resolved for the file's audio tracks.
        info: The file's probe.
        measured: The file's one decode (its frame count and the leader its preset puts first).
    """
    video, spec = info.video, preset.video
    leader_frames, leader_samples = measured.programme_start
    frame_count = leader_frames + measured.frame_count
    sample_rate = info.audio.sample_rate if info.audio else preset.audio.sample_rate
    samples_per_frame = Fraction(sample_rate) / video.frame_rate
    width, height = (spec.width, spec.height) if spec.width and spec.height else (
        video.display_width, video.display_height)
    return ExpectedOutput(
        brand=BRANDS[preset.container],
        faststart=preset.faststart,
        video_codec=spec.codec,
        video_profile=spec.profile,
        codec_tag=spec.codec_tag,
        pix_fmt=spec.probed_pix_fmt or spec.pix_fmt,
        width=width,
        height=height,
        frame_rate=spec.frame_rate or video.frame_rate,
        frame_count=frame_count,
        audio_codec=preset.audio.codec,
        sample_rate=preset.audio.sample_rate,
        channels=preset.audio.channels,
        layout=probed_layout(preset),
        sample_count=round(frame_count * samples_per_frame),
        # Strictly less than one frame of sound more or less than the picture.
        sample_tolerance=math.ceil(samples_per_frame) - 1,
        colour_tags=COLOUR_TAGS[spec.colour],
        demuxer=DEMUXERS[preset.container],
        timecode=_start_timecode(preset, video.frame_rate, leader_frames),
        field_order="tt" if spec.field_order == "tff" else "progressive",
        audio_tracks=track_contents(preset.audio),
        programme_tracks=programme_tracks(preset.audio),
        programme_start_frame=leader_frames,
        programme_start_sample=leader_samples,
    )


def _start_timecode(preset: Preset, frame_rate: Fraction, leader_frames: int) -> str | None:
    """The start timecode the preset gives a file at ``frame_rate``; None when it writes no
    timecode track, or when its timecode cannot be written at that rate (then a file carrying one
    is reported, as is the rate the preset fixes)."""
    if preset.timecode is None:
        return None
    try:
        return file_start_timecode(preset.timecode, frame_rate, leader_frames)
    except ValueError:
        return None


def conformance_check(mismatches: Sequence[str], preset: Preset) -> Check:
    """The conformance verdict on ``mismatches`` (:func:`pipeline.render.verify.find_mismatches`)."""
    return Check(
        "conformance", "fail" if mismatches else "pass", len(mismatches), "mismatches",
        f"container, codecs, raster, rate, colour, sound and length as preset {preset.name} "
        "and the plan (if any) say",
        "; ".join(mismatches),
    )
