"""Editorial exports: the assembled sequence as OpenTimelineIO, CMX 3600 EDL and FCP 7 XML.

The cut is laid out once by :func:`pipeline.timeline.sequence.build_timeline` at the sequence rate and
described as OTIO data: one video track and one audio track, each shot a clip that references its
source file (so an editor can relink) with the in point and duration the render used. Transitions
sit between clips, centred on the cut: a transition of N frames overlaps the outgoing clip by N // 2
frames (``in_offset``) and the incoming one by the rest (``out_offset``), and plays on the handles
beyond each clip's range, so the track lasts exactly the rendered length (sum of shots less sum of
overlaps). J/L split edits move the cut between the audio clips; audio crossfades are transitions on
the audio track.

EDL and FCP XML are written from that timeline through OTIO's adapters after
:func:`adapt_for_format` has removed what the format cannot carry; each removal is returned as a
note and logged. Both count SMPTE timecode, which exists only at the standard video rates: a cut at
another rate (an 8 or 10 fps generator clip) is written as OTIO only, and the EDL and XML are
reported as skipped (:func:`inexpressible`). The exports are optional outputs: a skipped one never
fails the job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import opentimelineio as otio

from pipeline.files import write_text_atomically
from pipeline.model.job import Job, Shot
from pipeline.media.probe import MediaInfo
from pipeline.timeline.sequence import sequence_layout, sequence_rate, shot_media_ranges
from pipeline.model.timebase import format_rate, seconds_to_frames

log = logging.getLogger(__name__)

METADATA_NAMESPACE = "postprod"
"""Key of postprod's own entries in every OTIO object's metadata."""

DISSOLVE_XFADE = "fade"
"""The xfade transition an editor's dissolve renders with; written as an SMPTE dissolve."""

FormatName = Literal["cmx_3600", "fcp_xml"]

FORMAT_TITLES: dict[FormatName, str] = {"cmx_3600": "CMX 3600 EDL", "fcp_xml": "FCP 7 XML"}
"""What each editorial format is called in messages."""

# FCP 7's equal-power audio crossfade, the curve postprod renders (the adapter's default effect
# for every transition is the video "Cross Dissolve").
_FCP_AUDIO_CROSSFADE = {
    "effect": {
        "name": "Cross Fade (+3dB)",
        "effectid": "KGAudioTransCrossFade3dB",
        "effecttype": "transition",
        "mediatype": "audio",
    }
}


@dataclass(frozen=True)
class AdaptedTimeline:
    """A copy of the export timeline reduced to what one editorial format carries."""

    timeline: otio.schema.Timeline
    """The timeline to hand to the format's adapter."""
    dropped: tuple[str, ...]
    """One sentence per thing the format loses, naming the shots involved."""


@dataclass(frozen=True)
class SkippedExport:
    """An editorial file not written because its format cannot express the cut."""

    path: Path
    """The file that would have been written (an older copy of it is removed)."""
    format_name: FormatName
    """The OTIO adapter it is for."""
    reason: str
    """Why the format cannot hold this cut, in a sentence."""

    def to_dict(self) -> dict[str, str]:
        """The manifest's entry."""
        return {"path": str(self.path), "format": self.format_name, "reason": self.reason}


@dataclass(frozen=True)
class EditorialExports:
    """What :func:`write_editorial_exports` wrote and what it skipped."""

    written: tuple[Path, ...]
    """The files written, ``.otio`` first."""
    skipped: tuple[SkippedExport, ...]
    """The formats that cannot express the cut, with the reason."""


def build_otio_timeline(
    job: Job, media: dict[Path, MediaInfo], conformed_media: list[Path] | None = None
) -> otio.schema.Timeline:
    """The assembled sequence as an OTIO timeline at the sequence rate.

    Args:
        job: The job; its shots, transitions, split edits, fill and music.
        media: Probe results keyed by source path (as :func:`pipeline.jobs.finish.probe_sources` returns).
        conformed_media: One file per shot holding :func:`shot_media_ranges` at the sequence rate;
            clips then reference these instead of the sources.

    Returns:
        A timeline named after the job with a ``V1`` video track and an ``A1`` audio track. Clip
        ranges are at the source's own rate where that is exact, else at the sequence rate; track
        positions and transition offsets are at the sequence rate. A shot whose source is silent
        is a gap on ``A1``.

    Raises:
        JobError: a transition or split edit does not fit its shots (as for rendering).
    """
    rate = sequence_rate(job, media)
    shot_media = [media[shot.source] for shot in job.shots]
    layout = sequence_layout(job, media)
    overlaps = [join.overlap_frames for join in layout.joins]
    # Where each clip ends on its track: the middle of each transition's overlap, moved by the
    # split edit on the audio track.
    picture_cuts = [
        span.timeline_start_frame + overlap // 2
        for span, overlap in zip(layout.spans[1:], overlaps, strict=True)
    ]
    sound_cuts = [
        cut + shot.audio_offset_frames for cut, shot in zip(picture_cuts, job.shots[:-1], strict=True)
    ]
    picture_bounds = [0, *picture_cuts, layout.frame_count]
    sound_bounds = [0, *sound_cuts, layout.frame_count]
    media_ranges = shot_media_ranges(job, media) if conformed_media else None

    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
    for number, (shot, info, span) in enumerate(zip(job.shots, shot_media, layout.spans, strict=True)):
        if number and overlaps[number - 1]:
            video.append(_video_transition(job, number - 1, overlaps[number - 1], rate))
            if job.shots[number - 1].transition.audio == "crossfade":
                audio.append(_audio_crossfade(number - 1, overlaps[number - 1], rate))
        details = {
            "shot": number,
            "source": str(shot.source),
            "source_rate": format_rate(info.video.planning_rate),
            "fill": shot.fill or job.sequence.fill,
            "audio_offset_frames": shot.audio_offset_frames,
        }
        reference = _reference(info)
        reference_start = 0
        if conformed_media:
            reference_start, reference_frames = media_ranges[number]
            reference = otio.schema.ExternalReference(
                target_url=conformed_media[number].resolve().as_uri(),
                available_range=_frames_range(0, reference_frames, rate),
            )
            details["conformed_from_frame"] = reference_start
        picture_start, picture_end = picture_bounds[number : number + 2]
        video.append(_clip(
            shot, info, reference, span.source_start_frame + picture_start - span.timeline_start_frame
            - reference_start, picture_end - picture_start, rate, conformed=bool(conformed_media),
            details=details,
        ))
        sound_start, sound_end = sound_bounds[number : number + 2]
        if info.audio is None:
            audio.append(otio.schema.Gap(
                source_range=_frames_range(0, sound_end - sound_start, rate),
                metadata={METADATA_NAMESPACE: {**details, "silent_source": True}},
            ))
        else:
            audio.append(_clip(
                shot, info, reference, span.source_start_frame + sound_start - span.timeline_start_frame
                - reference_start, sound_end - sound_start, rate, conformed=bool(conformed_media),
                details=details,
            ))

    music = job.music
    return otio.schema.Timeline(
        name=job.name,
        global_start_time=otio.opentime.RationalTime(0, float(rate)),
        tracks=[video, audio],
        metadata={METADATA_NAMESPACE: {
            "job": job.name,
            "sequence_rate": format_rate(rate),
            "frame_count": layout.frame_count,
            "fill": job.sequence.fill,
            "music": None if music is None else {
                "source": music.source.as_uri(),
                "gain_db": music.gain_db,
                "fade_out_frames": music.fade_out_frames,
            },
        }},
    )


def adapt_for_format(timeline: otio.schema.Timeline, format_name: FormatName) -> AdaptedTimeline:
    """Reduce a copy of :func:`build_otio_timeline`'s result to what a format's adapter carries.

    Both formats: a transition other than a dissolve becomes a cut at its midpoint (the clips keep
    their ranges, so the length and every other cut stay put); an eased dissolve is written as a
    linear one; the fill and the music bed are not written. ``cmx_3600``: only the video track is
    written, so the sound layout (crossfades, split edits) is not, and source timecode is counted
    at the sequence rate. ``fcp_xml``: an audio crossfade into or out of a silent shot becomes a
    cut (the adapter mispositions a transition beside a gap); the others are marked as FCP's
    equal-power "Cross Fade (+3dB)".

    Args:
        timeline: A timeline from :func:`build_otio_timeline` (left unchanged).
        format_name: The OTIO adapter the result is for.

    Returns:
        The adapted copy and a note for each thing dropped.
    """
    adapted = timeline.deepcopy()
    video, audio = adapted.tracks
    dropped = _reduce_transitions(video, format_name)
    settings = adapted.metadata[METADATA_NAMESPACE]
    if settings["music"] is not None:
        dropped.append(f"the music bed ({settings['music']['source']}) is not written")
    shot_details = [clip.metadata[METADATA_NAMESPACE] for clip in video.find_clips()]
    fills = sorted({details["fill"] for details in shot_details} - {"black"})
    if fills:
        dropped.append(f"the {', '.join(fills)} fill around shots of another shape is not written")

    if format_name == "cmx_3600":
        del adapted.tracks[1]
        splits = [details["shot"] for details in shot_details if details["audio_offset_frames"]]
        dropped.append(
            "the audio track is not written (the EDL lists the video track's events)"
            + (f", so the split edits after shots {splits} are lost" if splits else "")
        )
        rate = settings["sequence_rate"]
        other_rates = sorted({details["source_rate"] for details in shot_details} - {rate})
        if other_rates:
            dropped.append(
                f"source timecode of the {', '.join(other_rates)} fps sources is counted at the "
                f"sequence's {rate} fps"
            )
    else:
        # The adapter writes a clip that serialises like an earlier one (a shot's sound beside its
        # picture, a shot used twice) as a reference to that one, at its place; ids keep them apart.
        for number, clip in enumerate(adapted.find_clips(), start=1):
            clip.metadata["fcp_xml"] = {"@id": f"clipitem-{number}"}
        silent_joins = []
        for index in reversed(range(len(audio))):
            item = audio[index]
            if not isinstance(item, otio.schema.Transition):
                continue
            if isinstance(audio[index - 1], otio.schema.Gap) or isinstance(audio[index + 1], otio.schema.Gap):
                silent_joins.insert(0, item.metadata[METADATA_NAMESPACE]["shot"])
                del audio[index]
            else:
                item.metadata["fcp_xml"] = _FCP_AUDIO_CROSSFADE
        dropped += [
            f"the sound crossfade between shots {shot} and {shot + 1} (one of them silent) is written "
            "as a cut at its midpoint"
            for shot in silent_joins
        ]
    return AdaptedTimeline(adapted, tuple(dropped))


def _reduce_transitions(video: otio.schema.Track, format_name: FormatName) -> list[str]:
    """Turn the video track's non-dissolve transitions into cuts; notes in playback order."""
    dropped = []
    for index in reversed(range(len(video))):
        item = video[index]
        if not isinstance(item, otio.schema.Transition):
            continue
        details = item.metadata[METADATA_NAMESPACE]
        join = (
            f"the {details['frames']}-frame {details['type']} between shots {details['shot']} "
            f"and {details['shot'] + 1}"
        )
        if item.transition_type != otio.schema.TransitionTypes.SMPTE_Dissolve:
            del video[index]
            dropped.append(f"{join} is written as a cut at its midpoint")
            if format_name == "cmx_3600":
                # The EDL writer copies these onto the incoming clip's event as comment lines.
                video[index].metadata["cmx_3600"] = {
                    "comments": [f"POSTPROD TRANSITION: {details['type']} {details['frames']} FRAMES CENTRED"]
                }
        elif details["easing"] != "linear":
            dropped.append(f"{join} is written as a linear dissolve (its {details['easing']} easing is lost)")
    return dropped[::-1]


def inexpressible(format_name: FormatName, rate: Fraction) -> str | None:
    """Why ``format_name`` cannot express a cut counted at ``rate``, or None when it can.

    CMX 3600 events and FCP 7 XML clip items are placed by SMPTE timecode (the XML adapter writes a
    timecode element per clip), and SMPTE timecode counts only the standard rates (23.976 to 60
    fps): an 8 fps cut has no timecode to write. Counting it at another rate would put every event
    at the wrong place, so the file is not written. OTIO holds a range at any rate and is always
    written.
    """
    if otio.opentime.RationalTime.is_smpte_timecode_rate(float(rate)):
        return None
    return (
        f"{FORMAT_TITLES[format_name]} places events by SMPTE timecode, which has no count at the "
        f"sequence's {format_rate(rate)} fps; the .otio file holds the cut"
    )


def write_editorial_exports(
    job: Job, media: dict[Path, MediaInfo], out_dir: Path, conformed_media: list[Path] | None = None
) -> EditorialExports:
    """Write ``{job.name}.otio``, ``{job.name}.edl`` (CMX 3600) and ``{job.name}.xml`` (FCP 7 XML).

    Every file is rendered before any is written, and each is written under a temporary name and
    renamed into place. What the EDL or XML cannot carry is logged at WARNING (see
    :func:`adapt_for_format`); a format that cannot express the cut at all (see
    :func:`inexpressible`) is skipped with a WARNING, and an older file of that name is removed so
    that nothing beside the new cut describes an old one.

    Args:
        job: The job.
        media: Probe results keyed by source path.
        out_dir: Folder for the files (created if missing).
        conformed_media: Conformed copies of the shots to reference instead of the sources.

    Returns:
        The paths written (``.otio``, then ``.edl`` and ``.xml`` where written) and those skipped.

    Raises:
        JobError: a transition or split edit does not fit its shots.
    """
    timeline = build_otio_timeline(job, media, conformed_media)
    rate = sequence_rate(job, media)
    texts = {".otio": otio.adapters.write_to_string(timeline, "otio_json")}
    skipped = []
    for suffix, format_name, options in (
        (".edl", "cmx_3600", {"rate": float(rate)}),
        (".xml", "fcp_xml", {}),
    ):
        reason = inexpressible(format_name, rate)
        if reason is not None:
            skipped.append(SkippedExport(out_dir / f"{job.name}{suffix}", format_name, reason))
            log.warning("%s%s not written: %s", job.name, suffix, reason)
            continue
        adapted = adapt_for_format(timeline, format_name)
        for note in adapted.dropped:
            log.warning("%s%s: %s", job.name, suffix, note)
        texts[suffix] = otio.adapters.write_to_string(adapted.timeline, format_name, **options)

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_text_atomically(out_dir / f"{job.name}{suffix}", text) for suffix, text in texts.items()]
    for export in skipped:
        export.path.unlink(missing_ok=True)
    return EditorialExports(tuple(paths), tuple(skipped))


def _video_transition(job: Job, number: int, overlap: int, rate: Fraction) -> otio.schema.Transition:
    transition = job.shots[number].transition
    dissolve = transition.xfade_name == DISSOLVE_XFADE
    return otio.schema.Transition(
        name=transition.type,
        transition_type=(
            otio.schema.TransitionTypes.SMPTE_Dissolve if dissolve else otio.schema.TransitionTypes.Custom
        ),
        in_offset=otio.opentime.RationalTime(overlap // 2, float(rate)),
        out_offset=otio.opentime.RationalTime(overlap - overlap // 2, float(rate)),
        metadata={METADATA_NAMESPACE: {
            "shot": number,
            "type": transition.type,
            "xfade": transition.xfade_name,
            "frames": transition.frames,
            "easing": transition.easing,
            "audio": transition.audio,
        }},
    )


def _audio_crossfade(number: int, overlap: int, rate: Fraction) -> otio.schema.Transition:
    return otio.schema.Transition(
        name="crossfade",
        transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
        in_offset=otio.opentime.RationalTime(overlap // 2, float(rate)),
        out_offset=otio.opentime.RationalTime(overlap - overlap // 2, float(rate)),
        metadata={METADATA_NAMESPACE: {"shot": number, "curve": "equal_power"}},
    )


def _reference(info: MediaInfo) -> otio.schema.ExternalReference:
    """The original source, its whole length at its own rate."""
    source_rate = info.video.planning_rate
    return otio.schema.ExternalReference(
        target_url=info.path.resolve().as_uri(),
        available_range=_frames_range(0, seconds_to_frames(info.video.duration_s, source_rate), source_rate),
    )


def _clip(
    shot: Shot, info: MediaInfo, reference: otio.schema.ExternalReference, start: int, count: int,
    rate: Fraction, *, conformed: bool, details: dict[str, object],
) -> otio.schema.Clip:
    """A clip of ``count`` frames from frame ``start`` of ``reference``, both at the sequence ``rate``.

    Conformed media run at the sequence rate; a source's range is given at its own rate where exact.
    """
    return otio.schema.Clip(
        name=Path(reference.target_url).name if conformed else shot.source.name,
        media_reference=reference,
        source_range=(_frames_range(start, count, rate) if conformed
                      else _source_range(start, count, rate, info.video.planning_rate)),
        metadata={METADATA_NAMESPACE: dict(details)},
    )


def _frames_range(start: int, count: int, rate: Fraction) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(
        otio.opentime.RationalTime(start, float(rate)), otio.opentime.RationalTime(count, float(rate))
    )


def _source_range(start: int, count: int, rate: Fraction, source_rate: Fraction) -> otio.opentime.TimeRange:
    """Frames at the sequence rate as a range at the source's rate where that is exact."""
    start_at, count_at = start * source_rate / rate, count * source_rate / rate
    if start_at.denominator == 1 and count_at.denominator == 1:
        return _frames_range(int(start_at), int(count_at), source_rate)
    return _frames_range(start, count, rate)
