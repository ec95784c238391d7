"""A long sequence rendered in windows of shots, each one ffmpeg, then joined per deliverable."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import ffmpeg

from pipeline.media.probe import AudioStreamInfo, MediaInfo
from pipeline.model.job import Job
from pipeline.plan.audio_tracks import TRACK_FILTERS, lay_out_tracks
from pipeline.plan.outputs import RenderPlan, encoder_args
from pipeline.plan.programme_sound import mix_music, music_branches, normalise_loudness
from pipeline.plan.subtitle_track import subtitle_track
from pipeline.plan.render_graph import one_graph_render
from pipeline.plan.shot_inputs import PlannedDeliverable
from pipeline.plan.workfiles import TextFile
from pipeline.timeline.sequence import split_timeline

WINDOW_CONTAINER = "nut"
"""Container of a window: carries every deliverable codec and float PCM, with exact frame times."""


WINDOW_AUDIO_CODEC = "pcm_f32le"
"""Sound of a window, kept as float so the joined programme is encoded (and mixed) only once."""


def windowed_render_plans(
    job: Job,
    shot_media: list[MediaInfo],
    music_audio: AudioStreamInfo | None,
    sync_corrections: dict[Path, Fraction],
    group: list[PlannedDeliverable],
) -> list[RenderPlan]:
    """A long sequence as windows of shots, each one ffmpeg, then one join per deliverable.

    Each window encodes its pictures with the deliverable's own encoder into a hidden NUT file
    beside the output, with float sound; the join copies the encoded pictures end to end (no second
    encode) and encodes the sound once, mixing in the music bed over the whole length.
    """
    windows = split_timeline(group[0].timeline, job.sequence.shots_per_render)
    plans = []
    parts: dict[int, list[tuple[Path, Fraction]]] = {index: [] for index in range(len(group))}
    for number, window in enumerate(windows, start=1):
        window_job = job.model_copy(update={
            "shots": job.shots[window.first_shot : window.first_shot + window.shot_count],
            "music": None,
        })
        window_items = []
        for index, item in enumerate(group):
            part = item.output.path.with_name(f".{item.output.path.name}.part{number:03d}.nut")
            parts[index].append((part, Fraction(window.timeline.frame_count) / window.timeline.frame_rate))
            preset = item.output.preset.model_copy(update={
                "container": WINDOW_CONTAINER,
                "faststart": False,
                # The sample entry (hvc1, avc1) is a mov/mp4 tag; the join writes it.
                "video": item.output.preset.video.model_copy(update={"codec_tag": None}),
                "audio": item.output.preset.audio.model_copy(
                    update={"encoder": WINDOW_AUDIO_CODEC, "codec": WINDOW_AUDIO_CODEC, "options": {},
                            "tracks": "stereo"}
                ),
                # The join lays out the tracks and writes the timecode.
                "timecode": None,
            })
            # Loudness is corrected once, where the windows are joined.
            output = replace(item.output, preset=preset, partial_path=part, loudness=None)
            overlays = item.overlays and item.overlays.for_window(
                number, window.timeline.start_frame, window.timeline.frame_count)
            window_items.append(replace(item, output=output, timeline=window.timeline, overlays=overlays))
        window_media = shot_media[window.first_shot : window.first_shot + window.shot_count]
        plan = one_graph_render(window_job, window_media, None, sync_corrections, window_items)
        plans.append(replace(
            plan,
            outputs=(),
            duration_s=Fraction(window.timeline.frame_count) / window.timeline.frame_rate,
            title=f"{plan.title} (shots {window.first_shot + 1}-{window.first_shot + window.shot_count} "
                  f"of {len(job.shots)})",
            intermediates=tuple(paths[-1][0] for paths in parts.values()),
        ))
    for index, item in enumerate(group):
        plans.append(_join_plan(job, item, parts[index], music_audio))
    return plans


def _join_plan(
    job: Job, item: PlannedDeliverable, parts: list[tuple[Path, Fraction]], music_audio: AudioStreamInfo | None
) -> RenderPlan:
    """Windows end to end: pictures copied as encoded, sound (and music) encoded once.

    Each window's duration is written into the concat list: the demuxer would otherwise estimate it
    from the file and place the next window's frames off the frame grid.
    """
    concat_list = item.output.path.with_name(f".{item.output.path.name}.parts.ffconcat")
    listing = "ffconcat version 1.0\n" + "".join(
        f"file {_concat_quote(part)}\nduration {float(duration):.6f}\n" for part, duration in parts
    )
    joined = ffmpeg.input(str(concat_list), f="concat", safe=0)
    audio = joined.audio
    if job.music is not None:
        audio = mix_music(audio, music_branches(job, 1)[0], music_audio, job, item)
    audio = normalise_loudness(audio, item.output.loudness, item.timeline)
    preset = item.output.preset
    args = encoder_args(preset, item.picture, item.output.expected.timecode)
    args = {key: value for key, value in args.items() if not key.endswith(":v") or key == "tag:v"}
    args["c:v"] = "copy"
    subtitles, subtitle_args, subtitle_script = subtitle_track(
        preset.container, item.output.expected.subtitle_cues, item.picture.frame_rate, item.output.path)
    node = ffmpeg.output(joined.video, *lay_out_tracks(audio, preset.audio), *subtitles, str(item.output.partial_path),
                         **args, **subtitle_args)
    return RenderPlan(
        args=tuple(node.compile(cmd=[])),
        outputs=(item.output,),
        duration_s=item.output.expected.duration_s,
        encoders=(preset.audio.encoder,),
        filters=("amix", "volume", "afade", "apad", "atrim", "asetpts", "aeval", "aresample", "aformat",
                 "alimiter") + TRACK_FILTERS,
        title=f"{item.output.deliverable} (joining {len(parts)} windows)",
        consumes=tuple(part for part, _ in parts),
        prepared_files=(TextFile(concat_list, listing), *subtitle_script),
    )


def _concat_quote(path: Path) -> str:
    """A path as the concat demuxer reads it: single-quoted, each quote written as '\\''."""
    return "'" + str(path.resolve()).replace("'", "'\\''") + "'"
