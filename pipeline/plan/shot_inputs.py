"""The sources as ffmpeg inputs of one render graph: one input per shot, split into a branch per
deliverable, each deliverable planned on its own timeline."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg

from pipeline.analysis.reframe import Framing
from pipeline.media.probe import MediaInfo
from pipeline.model.job import Job
from pipeline.model.presets import Preset
from pipeline.plan.conform import PictureFormat, silence
from pipeline.plan.enhance import shot_speeds
from pipeline.plan.leader import LeaderPlan
from pipeline.plan.outputs import OutputPlan
from pipeline.plan.overlays import OverlayPlan
from pipeline.timeline.sequence import Timeline, build_timeline

INPUT_MARGIN_S = Fraction(1, 2)
"""Decode this much past the last frame a shot needs, so rate rounding never starves it."""


def deliverable_timeline(
    job: Job, shot_media: list[MediaInfo], preset: Preset, picture: PictureFormat, sequence_rate: Fraction
) -> Timeline:
    """The cut at the deliverable's frame and sample rates, shots sped up where its rate conversion
    plays frames faster (``speed``)."""
    speeds = shot_speeds(picture.enhance.rate_conversion, [m.video.planning_rate for m in shot_media], picture.frame_rate)
    return build_timeline(job.shots, shot_media, picture.frame_rate, preset.audio.sample_rate, sequence_rate, speeds)


@dataclass(frozen=True)
class PlannedDeliverable:
    """One deliverable as a render graph builds it: its output, raster and timeline, and what is
    framed, drawn and led in on it."""

    output: OutputPlan
    picture: PictureFormat
    timeline: Timeline
    sequence_rate: Fraction
    """The rate the job's frame counts (music fade, transitions) are given at; not the output's."""
    framings: dict[Path, Framing | None] | None = None
    overlays: OverlayPlan | None = None
    leader: LeaderPlan | None = None


class ShotInputs:
    """One ffmpeg input per shot, split into one branch per deliverable.

    Per shot, not per source: a source used by two shots would otherwise be split across the
    timeline, and ffmpeg would hold every decoded frame of the later use in memory. ``-t`` stops
    decoding after the last frame a shot can need. Shots that use the same source up to the same
    point share an input (ffmpeg-python merges identical inputs anyway), and silent shots share one
    silence source; shared streams are split once into as many branches as they have uses.
    """

    def __init__(
        self,
        job: Job,
        shot_media: list[MediaInfo],
        sync_corrections: dict[Path, Fraction],
        group: list[PlannedDeliverable],
    ):
        self._video_keys: list[tuple[Path, str]] = []
        self._audio_keys: list[tuple[Path, str] | str] = []
        inputs = {}
        for shot, info in enumerate(shot_media):
            correction = sync_corrections.get(job.shots[shot].source, Fraction(0))
            # Sound moved earlier (a negative correction) is read further into the source.
            needed_s = _decode_limit_s(shot, info, group) + max(Fraction(0), -correction)
            limit = f"{float(needed_s + INPUT_MARGIN_S):.3f}"
            key = (job.shots[shot].source, limit)
            inputs.setdefault(key, ffmpeg.input(str(key[0]), t=limit))
            self._video_keys.append(key)
            self._audio_keys.append(key if info.audio is not None else "silence")
        uses = len(group)
        self._video = _split_by_use(
            {key: node.video for key, node in inputs.items()}, self._video_keys, uses, "split"
        )
        audio_streams = {key: inputs[key].audio for key in self._audio_keys if key != "silence"}
        if "silence" in self._audio_keys:
            audio_streams["silence"] = silence()
        self._audio = _split_by_use(audio_streams, self._audio_keys, uses, "asplit")
        self._taken: dict[object, int] = {}

    def take(self, shot: int):
        """Unused (video, audio) branches of ``shot``: call once per deliverable."""
        return self._next(self._video, self._video_keys[shot]), self._next(self._audio, self._audio_keys[shot])

    def _next(self, streams, key):
        index = self._taken.get((id(streams), key), 0)
        self._taken[(id(streams), key)] = index + 1
        return streams[key][index]


def _split_by_use(streams: dict, keys: list, uses_per_key: int, split_filter: str) -> dict:
    """Each stream as a list of branches, one per use (a split filter only when used more than once)."""
    branches = {}
    for key, stream in streams.items():
        count = keys.count(key) * uses_per_key
        if count == 1:
            branches[key] = [stream]
        else:
            node = stream.filter_multi_output(split_filter, count)
            branches[key] = [node[index] for index in range(count)]
    return branches


def _decode_limit_s(shot: int, info: MediaInfo, group: list[PlannedDeliverable]) -> Fraction:
    """Source time after which no deliverable needs anything from this shot, in seconds."""
    limit = Fraction(0)
    for item in group:
        span = item.timeline.spans[shot]
        # Timeline time is source time divided by the shot's speed.
        picture_end = (span.source_start_frame + span.frame_count) / item.picture.frame_rate * span.speed
        sound_end = Fraction(span.audio_source_start_sample + span.sample_count, item.timeline.sample_rate) * span.speed
        if info.audio is not None:
            sound_end += max(Fraction(0), info.audio.start_time_s - info.video.start_time_s)
        limit = max(limit, info.video.start_time_s + max(picture_end, sound_end))
    return limit
