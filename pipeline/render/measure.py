"""Measure a finished file from one decode of its picture and sound.

Verification reads the frame count and the sound's track levels, sample counts and loudness; QC
reads everything, without decoding the file again (:class:`MeasuredOutput` travels with the rendered
output). A file QC never reads is measured without its picture: its frames are counted, not decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pipeline.analysis.track_levels import STEREO, SoundMeasures, SoundMeter
from pipeline.media.output_decode import OutputDecode, PictureFrame
from pipeline.media.probe import MediaInfo
from pipeline.render.picture_measures import PictureMeasures, PictureMeter


@dataclass(frozen=True, eq=False)
class MeasuredOutput:
    """What one decode of a finished file found."""

    picture: PictureMeasures | None
    """Per-frame picture measures, the leader left out; None when the picture was counted, not measured."""
    sound: SoundMeasures | None
    """Track levels and the programme's loudness and envelope; None without an audio stream."""
    frame_count: int
    """Frames after the leader: those measured, or without picture measures, the video packets demuxed."""
    programme_start: tuple[int, int]
    """Frames and samples of leader left out of the programme's measures."""


def measure_output(
    path: Path,
    info: MediaInfo,
    programme_tracks: tuple[int, ...],
    programme_start: tuple[int, int] = (0, 0),
    *,
    programme_channels: tuple[str, ...] = STEREO,
    legalised: bool = False,
    picture: bool = True,
) -> MeasuredOutput:
    """Decode ``path`` once and measure its picture and every audio track.

    Args:
        path: The file.
        info: Its probe.
        programme_tracks: The audio tracks (0: the first) that make the programme.
        programme_start: Frames and samples of leader before the programme, left out of the
            picture measures and the programme's loudness (track levels and counts include them).
        programme_channels: The programme's channels, in track order (see
            :class:`~pipeline.analysis.track_levels.SoundMeter`).
        legalised: Also measure what the broadcast legaliser changed in each frame.
        picture: Decode and measure the picture; False: only count its frames by demuxing (for a
            file nobody runs QC on, whose verification needs no more than its frame count).

    Raises:
        MediaError: the file does not open or does not decode.
    """
    frames, samples = programme_start
    duration_s = info.video.duration_s - Fraction(frames) / info.video.frame_rate
    meter = PictureMeter(duration_s, full_range=info.video.color_range == "pc", skip_frames=frames,
                         legalised=legalised) if picture else None
    with OutputDecode(path, picture=picture) as decode:
        sound = (SoundMeter(decode.audio_tracks, programme_tracks, samples, programme_channels)
                 if decode.audio_tracks else None)
        for item in decode:
            if isinstance(item, PictureFrame):
                meter.add(item)
            else:
                sound.feed(item.track, item.samples)
    measures = meter.result() if meter else None
    frame_count = measures.frame_count if measures else max(0, decode.picture_packets - frames)
    return MeasuredOutput(measures, sound.result() if sound else None, frame_count, programme_start)
