"""One ffmpeg graph that renders a group of deliverables: pictures conformed and joined, sound,
overlays, leader, legaliser, encoder arguments, a long graph moved into a file."""

from __future__ import annotations

import os
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import ffmpeg

from pipeline.media.probe import AudioStreamInfo, MediaInfo
from pipeline.model.job import Job
from pipeline.model.presets import Preset, Hdr10Spec
from pipeline.model.timebase import format_rate, frames_to_timecode
from pipeline.plan.audio_tracks import TRACK_FILTERS, lay_out_tracks
from pipeline.plan.conform import PictureFormat, conform_video, full_chroma
from pipeline.plan.fonts import default_font_path
from pipeline.plan.hdr import output_colour, x265_hdr10_params
from pipeline.plan.leader import LEADER_FILTERS, LeaderSources, with_leader
from pipeline.plan.legalise import bit_depth, legalise, lut_file
from pipeline.plan.outputs import RenderPlan, encoder_args
from pipeline.plan.overlays import OVERLAY_FILTERS, apply_overlays, LogoInputs
from pipeline.plan.programme_sound import music_branches, programme_sound, shot_sound
from pipeline.plan.shot_inputs import PlannedDeliverable, ShotInputs
from pipeline.plan.subtitle_track import subtitle_track
from pipeline.plan.workfiles import TextFile
from pipeline.timeline.sequence import Timeline

FILTERS_USED = ("setpts", "fps", "trim", "tpad", "scale", "pad", "crop", "setsar", "format",
                "setparams", "split", "gblur", "overlay", "xfade", "aresample", "aeval", "aformat",
                "asetpts", "adelay", "atrim", "apad", "anullsrc", "asplit", "acrossfade", "concat",
                "volume", "afade", "amix", "drawtext", "settb", "alimiter", "framerate", "minterpolate",
                "zscale", "unsharp", "atempo", "fade", "setfield") + TRACK_FILTERS


LEGALISE_FILTERS = ("mergeplanes", "lut3d")
"""Filters the broadcast legaliser needs (:mod:`pipeline.plan.legalise`)."""


DIP_TRANSITIONS = {"fadeblack": "black", "fadewhite": "white"}
"""xfade's dips, which fade through full-range black and white (10-bit luma 0 and 1023), mapped to
the colour the planner dips through instead, at legal levels (``fade`` to the colour, then a mix)."""


def one_graph_render(
    job: Job,
    shot_media: list[MediaInfo],
    music_audio: AudioStreamInfo | None,
    sync_corrections: dict[Path, Fraction],
    group: list[PlannedDeliverable],
) -> RenderPlan:
    """One ffmpeg invocation that decodes the shots once and encodes every deliverable of ``group``."""
    shot_inputs = ShotInputs(job, shot_media, sync_corrections, group)
    music = music_branches(job, len(group))
    logos = LogoInputs([item.overlays for item in group])
    leaders = LeaderSources([(item.leader, item.timeline.sample_rate) for item in group if item.leader])
    output_nodes = []
    prepared: tuple[TextFile, ...] = ()
    threads = encoder_thread_share(len(group))
    for branch, item in enumerate(group):
        video_segments, audio_segments = [], []
        shot_picture = item.picture
        if any(join.xfade for join in item.timeline.joins):
            shot_picture = replace(item.picture, pix_fmt=full_chroma(item.picture.pix_fmt))
        for shot, (info, span) in enumerate(zip(shot_media, item.timeline.spans, strict=True)):
            video_branch, audio_branch = shot_inputs.take(shot)
            fill = job.shots[shot].fill or job.sequence.fill
            framing = (item.framings or {}).get(job.shots[shot].source)
            video_segments.append(conform_video(video_branch, info.video, span, shot_picture, fill, framing))
            audio_segments.append(shot_sound(job, shot, info, span, audio_branch, item, sync_corrections))
        video = _assemble_picture(video_segments, item.timeline)
        audio = programme_sound(job, audio_segments, item, None if music is None else music[branch], music_audio)
        video = apply_overlays(video, item.overlays, logos, item.timeline.start_frame)
        if item.output.preset.video.burn_in_timecode:
            video = _burn_in_timecode(video, item.picture, item.timeline.start_frame)
        video, audio = with_leader(video, audio, item.leader, item.timeline.sample_rate, leaders)
        video, legaliser_files = _legalised(video, item)
        prepared += legaliser_files
        # Transitions and text may renegotiate the format; the encoder gets exactly the preset's.
        video = video.filter("format", item.picture.pix_fmt)
        if item.output.preset.video.field_order == "tff":
            video = video.filter("setfield", "tff")
        subtitles, subtitle_args, subtitle_script = subtitle_track(
            item.output.preset.container, item.output.expected.subtitle_cues, item.picture.frame_rate, item.output.path)
        prepared += subtitle_script
        output_nodes.append(
            ffmpeg.output(
                video, *lay_out_tracks(audio, item.output.preset.audio), *subtitles, str(item.output.partial_path),
                **{**_thread_args(item.output.preset, threads),
                   **encoder_args(item.output.preset, item.picture,
                                  item.output.expected.timecode if item.output.preset.timecode else None),
                   **_hdr10_args(item.output.preset, shot_media), **subtitle_args},
            )
        )
    first_output = group[0].output.partial_path
    args, graph_files = long_graph_through_file(
        ffmpeg.merge_outputs(*output_nodes).compile(cmd=[]), first_output.with_suffix(".filtergraph")
    )
    outputs = tuple(item.output for item in group)
    return RenderPlan(
        args=tuple(args),
        outputs=outputs,
        duration_s=max(output.expected.duration_s for output in outputs),
        encoders=tuple(sorted({e for o in outputs for e in (o.preset.video.encoder, o.preset.audio.encoder)})),
        filters=FILTERS_USED + (OVERLAY_FILTERS if any(item.overlays for item in group) else ())
        + (LEGALISE_FILTERS if prepared else ())
        + (LEADER_FILTERS if any(item.leader for item in group) else ()),
        title=", ".join(output.deliverable for output in outputs),
        prepared_files=tuple(file for item in group if item.overlays for file in item.overlays.files)
        + tuple(file for item in group if item.leader for file in item.leader.files) + prepared + graph_files,
    )


def encoder_thread_share(video_encoders: int) -> int | None:
    """Threads for each of ``video_encoders`` encoders that one ffmpeg runs side by side: an equal
    share of the CPU cores this process may use, at least one; None for a lone encoder, which keeps
    its own default.

    Left to themselves, libx264 and the other frame-threaded encoders each start about 1.5 threads
    per core: two of them in one ffmpeg on 2 cores run 6 or more encoding threads, and x264 pays for
    its frame threads in CPU. On 2 cores, the batch's two H.264 deliverables took 21.0 CPU s from one
    8 s 720p clip with the encoders' default threads and 18.0 with one thread each, and finished
    sooner (10.1 against 10.7 s); two hand-written ffmpeg commands took 19.0 (``bench/batch_graphs.py``).
    """
    if video_encoders <= 1:
        return None
    return max(1, len(os.sched_getaffinity(0)) // video_encoders)


def _thread_args(preset: Preset, threads: int | None) -> dict[str, str]:
    """The video encoder's thread count where its preset does not set one."""
    if threads is None or "threads" in preset.video.options:
        return {}
    return {"threads:v": str(threads)}


def _hdr10_args(preset: Preset, shot_media: list[MediaInfo]) -> dict[str, str]:
    """x265's HDR10 signalling for a ``bt2020-pq`` deliverable: the first shot's mastering display and
    light levels where it carries them, else the preset's; nothing for SDR deliverables."""
    if preset.video.colour != "bt2020-pq":
        return {}
    params = x265_hdr10_params(preset.video.hdr10 or Hdr10Spec(), shot_media[0].video.hdr10)
    own = preset.video.options.get("x265-params")
    return {"x265-params:v": f"{own}:{params}" if own else params}


def _legalised(video, item: PlannedDeliverable) -> tuple[object, tuple[TextFile, ...]]:
    """The finished picture through the broadcast legaliser when the preset asks for it, and the
    LUT file to write for it; unchanged and nothing to write otherwise."""
    if not item.output.preset.video.legalise:
        return video, ()
    partial = item.output.partial_path
    lut = lut_file(partial.with_name(f"{partial.name}.legalise.cube"), bit_depth(item.picture.pix_fmt))
    # The relabelled planes lose the colour tags on the way; the encoder must see them.
    return legalise(video, item.picture.pix_fmt, lut.path).filter("setparams", **output_colour("bt709")), (lut,)


FILTER_GRAPH_ARGUMENT_MAX = 64 * 1024
"""Longest filter graph passed as an argument, in bytes; a longer one goes through a file, since
Linux caps a single argument at 128 KiB and a long window with tracked crop paths can pass that."""


def long_graph_through_file(args: list[str], script: Path) -> tuple[list[str], tuple[TextFile, ...]]:
    """``args`` with a ``-filter_complex`` over :data:`FILTER_GRAPH_ARGUMENT_MAX` moved into ``script``
    (read by ffmpeg's ``-/filter_complex FILE``), and that file to prepare."""
    index = args.index("-filter_complex")
    graph = args[index + 1]
    if len(graph.encode()) <= FILTER_GRAPH_ARGUMENT_MAX:
        return args, ()
    return [*args[:index], "-/filter_complex", str(script), *args[index + 2 :]], (TextFile(script, graph),)


def _assemble_picture(segments: list, timeline: Timeline):
    """Join conformed shots: xfade over each overlap, concat at each cut."""
    picture = segments[0]
    for number, join in enumerate(timeline.joins):
        incoming = segments[number + 1]
        rate = timeline.frame_rate
        if join.xfade is None:
            # concat hands out a microsecond time base; xfade needs both inputs on the frame grid.
            time_base = f"{rate.denominator}/{rate.numerator}"
            picture = ffmpeg.concat(picture, incoming, v=1, a=0).filter("settb", time_base)
            continue
        transition = {"transition": join.xfade}
        duration_s = Fraction(join.overlap_frames) / rate
        offset_s = Fraction(timeline.spans[number + 1].timeline_start_frame) / rate
        if join.xfade in DIP_TRANSITIONS:
            picture, incoming = _dip_halves(picture, incoming, DIP_TRANSITIONS[join.xfade], offset_s, duration_s)
            transition = {"transition": "fade"}
        if join.smooth:
            # xfade's progress P runs from 1 to 0; smoothstep it and mix A (outgoing) with B.
            transition = {"transition": "custom", "expr": "A*P*P*(3-2*P)+B*(1-P*P*(3-2*P))"}
        picture = ffmpeg.filter(
            [picture, incoming],
            "xfade",
            duration=f"{float(duration_s):.9f}",
            offset=f"{float(offset_s):.9f}",
            **transition,
        )
    return picture


def _dip_halves(outgoing, incoming, colour: str, offset_s: Fraction, duration_s: Fraction):
    """A dip through ``colour`` at legal levels: the outgoing picture faded to it over the first half
    of the overlap, the incoming one faded up from it over the second; the ``fade`` transition
    mixing the two then passes through the pure colour at the middle. ``fade`` uses the format's
    legal black and white (10-bit luma 64 and 940), and a mix of legal pictures stays legal."""
    half = f"{float(duration_s / 2):.9f}"
    return (
        outgoing.filter("fade", type="out", start_time=f"{float(offset_s):.9f}", duration=half, color=colour),
        incoming.filter("fade", type="in", start_time=half, duration=half, color=colour),
    )


def _burn_in_timecode(video, picture: PictureFormat, start_frame: int = 0):
    """Record timecode from ``start_frame`` (the sequence frame of the first picture), bottom centre."""
    return video.filter(
        "drawtext",
        fontfile=str(default_font_path()),
        timecode=frames_to_timecode(start_frame, picture.frame_rate),
        rate=format_rate(picture.frame_rate),
        fontsize=max(12, picture.height // 18),
        fontcolor="white",
        box=1,
        boxcolor="black@0.6",
        boxborderw=max(2, picture.height // 120),
        x="(w-text_w)/2",
        y=f"h-text_h-{max(4, picture.height // 30)}",
    )
