"""A deliverable's programme sound: the shots' sound conformed and joined, the music bed mixed under
it, the loudness correction (gain and true-peak limiter) applied, and the audio-only render that
writes the programmes for measuring (or encoded as their deliverables' sound, for the codec check).
The encode and the measurement share this one chain."""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import ffmpeg

from pipeline.analysis.loudness import LoudnessCorrection, oversampling_factor
from pipeline.analysis.source_loudness import measurable
from pipeline.media.probe import AudioStreamInfo, MediaInfo
from pipeline.model.job import Job
from pipeline.model.presets import Preset
from pipeline.model.timebase import frames_to_samples
from pipeline.plan.audio_tracks import resolve_programme_layout
from pipeline.plan.conform import audio_offset_samples, conform_audio, to_layout
from pipeline.plan.facts import JobFacts
from pipeline.plan.outputs import OutputPlan, expected_output, picture_format, resolve_preset
from pipeline.plan.shot_inputs import PlannedDeliverable, ShotInputs, deliverable_timeline
from pipeline.timeline.sequence import ShotSpan, Timeline, sequence_rate as sequence_rate_of


def shot_sound(job: Job, shot: int, info: MediaInfo, span: ShotSpan, branch, item: PlannedDeliverable,
               sync_corrections: dict[Path, Fraction]):
    """One shot's sound conformed to the deliverable's timeline and programme layout, or silence for
    a silent source."""
    rate, layout = item.timeline.sample_rate, item.output.preset.audio.layout
    if info.audio is None:
        # The silence source is shared by every deliverable; each takes it at its own rate and layout.
        return to_layout(branch, 2, rate, layout).filter("atrim", end_sample=span.sample_count)
    correction = sync_corrections.get(job.shots[shot].source, Fraction(0))
    return conform_audio(branch, info, span, rate, correction, layout)


def programme_sound(job: Job, segments: list, item: PlannedDeliverable, music_branch,
                    music_audio: AudioStreamInfo | None):
    """The shots' sound joined, the music bed mixed under it, and the loudness correction applied:
    the same chain for the encode and for the loudness measurement, so what is measured is what ships."""
    audio = _assemble_sound(segments, item.timeline)
    if music_branch is not None:
        audio = mix_music(audio, music_branch, music_audio, job, item)
    return normalise_loudness(audio, item.output.loudness, item.timeline)


def _assemble_sound(segments: list, timeline: Timeline):
    """Join shots' sound: an equal-power crossfade over each audio overlap, concat at each cut."""
    sound = segments[0]
    for number, join in enumerate(timeline.joins):
        incoming = segments[number + 1]
        if join.crossfade_samples:
            # Quarter-sine curves in and out sum to constant power.
            sound = ffmpeg.filter(
                [sound, incoming], "acrossfade", ns=join.crossfade_samples, c1="qsin", c2="qsin"
            )
        else:
            sound = ffmpeg.concat(sound, incoming, v=0, a=1)
    return sound


def music_branches(job: Job, count: int):
    """The music bed's sound as ``count`` branches (one per deliverable), or None without a bed."""
    if job.music is None:
        return None
    music = ffmpeg.input(str(job.music.source)).audio
    return music.asplit() if count > 1 else [music]


def mix_music(program, music, music_audio: AudioStreamInfo, job: Job, item: PlannedDeliverable):
    """The music bed at its gain, cut to the sequence and faded out, mixed under the programme. The
    fade's frames are counted at the sequence rate, whatever the deliverable's own rate."""
    timeline = item.timeline
    total = timeline.sample_count
    fade = frames_to_samples(job.music.fade_out_frames, item.sequence_rate, timeline.sample_rate)
    bed = (
        to_layout(music, music_audio.channels, timeline.sample_rate, item.output.preset.audio.layout)
        .filter("volume", f"{job.music.gain_db}dB")
        .filter("asetpts", "PTS-STARTPTS")
        .filter("atrim", end_sample=total)
        .filter("apad", whole_len=total)
    )
    if fade:
        bed = bed.filter("afade", type="out", start_sample=max(0, total - fade), nb_samples=min(fade, total))
    return ffmpeg.filter([program, bed], "amix", inputs=2, duration="first", normalize=0)


LIMITER_ATTACK_MS = 1.0
"""Look-ahead of the true-peak limiter: short, so only the peaks themselves are held down."""


LIMITER_RELEASE_MS = 100.0
"""Recovery of the true-peak limiter: long enough not to pump on a tone under clicks."""


PROGRAMME_AUDIO_CODEC = "pcm_f32le"
"""Measurement renders keep the mixed programme as 32-bit float: no clipping, no rounding."""


def with_loudness(output: OutputPlan, correction: LoudnessCorrection | None) -> OutputPlan:
    """The output with its loudness correction, and the target it must then be verified against."""
    if correction is None or not correction.applies:
        return output
    return replace(output, loudness=correction, expected=replace(output.expected, loudness=correction.target))


def normalise_loudness(audio, correction: LoudnessCorrection | None, timeline: Timeline):
    """The programme sound with its loudness gain, then (only if the correction says so) a true-peak
    limiter: the sound oversampled to at least 192 kHz, peak-limited there (``alimiter`` with its
    look-ahead delay compensated), and resampled back, cut to the exact sample count again."""
    if correction is None or not correction.applies:
        return audio
    # Float samples: a gain above 0 dB must not clip before the limiter sees it.
    audio = audio.filter("aformat", sample_fmts="fltp").filter("volume", f"{correction.gain_db:.4f}dB")
    if correction.limiter_ceiling_dbtp is None:
        return audio
    rate = timeline.sample_rate
    return (
        audio.filter("aresample", rate * oversampling_factor(rate), resampler="soxr")
        .filter(
            "alimiter",
            limit=f"{10 ** (correction.limiter_ceiling_dbtp / 20):.6f}",
            attack=LIMITER_ATTACK_MS,
            release=LIMITER_RELEASE_MS,
            level=0,
            latency=1,
        )
        .filter("aresample", rate, resampler="soxr")
        .filter("apad", whole_len=timeline.sample_count)
        .filter("atrim", end_sample=timeline.sample_count)
    )


SOURCE_SOUND_EDGE_S = Fraction(1, 20)
"""How much of a source's sound the conform may cut at either end for the programme still to
count as that sound (:func:`source_sound_programmes`): a compressed sound stream starts a few
milliseconds before its picture (the encoder's priming, kept by an edit list) and its last frame
runs past the picture by up to a frame's length (1024 samples, 21 ms at 48 kHz). 50 ms of 400 ms
loudness blocks and of a programme of seconds moves the integrated loudness by far less than
0.1 LU (``tests/test_source_loudness.py`` measures the development clips both ways)."""


def source_sound_programmes(job: Job, facts: JobFacts, presets: dict[str, Preset]) -> dict[str, int]:
    """The deliverables with a loudness target whose programme is the job's one source's sound as
    it is, by label, each with its programme's sample rate: what the source pass's measurement of
    that sound (:mod:`pipeline.analysis.source_loudness`) stands for.

    That is one shot from the source's first frame, at its own speed, to the end of the sound; the
    sound starting with the picture (both ends within :data:`SOURCE_SOUND_EDGE_S`) and not moved by
    a sync correction; mono or stereo sound in a stereo programme; no music bed. Anything else (cuts,
    cut-downs, crossfades, a music bed, in and out points, a sync fix, a 5.1 programme) is a mix the
    pass cannot know: its programme is rendered and measured (:func:`plan_programme_audio`).
    """
    if len(job.shots) != 1 or job.music is not None:
        return {}
    source = job.shots[0].source
    info = facts.media[source]
    if not measurable(info) or facts.sync_corrections.get(source, Fraction(0)):
        return {}
    sequence_rate = sequence_rate_of(job, facts.media)
    rates = {}
    for index, deliverable in enumerate(job.deliverables):
        preset = resolve_programme_layout(resolve_preset(job, index, presets), [info], index)
        if preset.loudness is None or preset.audio.layout != "stereo":
            continue
        timeline = deliverable_timeline(job, [info], preset, picture_format(preset, info), sequence_rate)
        (span,) = timeline.spans
        rate = timeline.sample_rate
        offset = Fraction(audio_offset_samples(info, rate), rate)
        if (span.speed == 1 and span.audio_source_start_sample == 0 and abs(offset) <= SOURCE_SOUND_EDGE_S
                and offset + info.audio.duration_s <= Fraction(span.sample_count, rate) + SOURCE_SOUND_EDGE_S):
            rates[deliverable.label] = rate
    return rates


def sound_encode_options(preset: Preset) -> dict[str, str]:
    """The ffmpeg output options that encode a programme as ``preset``'s sound: its encoder and
    options, rate and channels, into Matroska (which carries every codec)."""
    audio = preset.audio
    return {"c:a": audio.encoder, **{f"{key}:a": str(value) for key, value in audio.options.items()},
            "ar": str(audio.sample_rate), "ac": str(audio.channels), "f": "matroska"}


@dataclass(frozen=True)
class ProgrammeAudioPlan:
    """One audio-only ffmpeg run that writes each deliverable's mixed programme sound, for measuring."""

    args: tuple[str, ...]
    """ffmpeg arguments after the binary name."""
    paths: dict[str, Path]
    """The file written for each deliverable label; deliverables whose programmes come out the
    same share one."""
    duration_s: Fraction
    """Longest programme, in seconds, for progress."""


def plan_programme_audio(
    job: Job,
    facts: JobFacts,
    presets: dict[str, Preset],
    scratch_dir: Path,
    *,
    encoded: bool = False,
) -> ProgrammeAudioPlan:
    """The sound of every deliverable that has a loudness target, exactly as its encode will mix it
    (conformed shots, crossfades, music bed, and the facts' loudness correction), as float WAV files in
    ``scratch_dir``, or with ``encoded`` encoded as the deliverable's sound (:func:`sound_encode_options`).
    No picture is decoded. Deliverables whose programmes are the same (timeline, layout and
    correction, and with ``encoded`` the sound encode) share one file, written once.

    Deliverables without a loudness target are left out; the plan may then write nothing (no
    ``paths``), and must not be run.
    """
    media = facts.media
    shot_media = [media[shot.source] for shot in job.shots]
    sequence_rate = sequence_rate_of(job, media)
    group = []
    paths: dict[str, Path] = {}
    written: dict[tuple, Path] = {}
    for index, deliverable in enumerate(job.deliverables):
        preset = resolve_programme_layout(resolve_preset(job, index, presets), shot_media, index)
        if preset.loudness is None:
            continue
        picture = picture_format(preset, shot_media[0])
        timeline = deliverable_timeline(job, shot_media, preset, picture, sequence_rate)
        correction = facts.loudness.get(deliverable.label)
        applied = (correction.gain_db, correction.limiter_ceiling_dbtp) if correction and correction.applies else None
        encode = tuple(sound_encode_options(preset).items()) if encoded else None
        key = (timeline, preset.audio.layout, encode, applied)
        if key in written:
            paths[deliverable.label] = written[key]
            continue
        path = scratch_dir / f"{len(group):03d}{'.mkv' if encoded else '.wav'}"
        written[key] = paths[deliverable.label] = path
        output = OutputPlan(deliverable.label, preset, path, path, expected_output(preset, picture, timeline))
        output = with_loudness(output, correction)
        group.append(PlannedDeliverable(output, picture, timeline, sequence_rate))
    if not group:
        return ProgrammeAudioPlan(args=(), paths={}, duration_s=Fraction(0))
    corrections = facts.sync_corrections
    shot_inputs = ShotInputs(job, shot_media, corrections, group)
    music_streams = music_branches(job, len(group))
    nodes = []
    for branch, item in enumerate(group):
        segments = [
            shot_sound(job, shot, info, span, shot_inputs.take(shot)[1], item, corrections)
            for shot, (info, span) in enumerate(zip(shot_media, item.timeline.spans, strict=True))
        ]
        audio = programme_sound(job, segments, item, None if music_streams is None else music_streams[branch],
                                 facts.music)
        options = sound_encode_options(item.output.preset) if encoded else {"f": "wav", "c:a": PROGRAMME_AUDIO_CODEC}
        nodes.append(ffmpeg.output(audio, str(item.output.path), **options))
    args = ffmpeg.merge_outputs(*nodes).compile(cmd=[])
    return ProgrammeAudioPlan(
        args=tuple(args),
        paths=paths,
        duration_s=max(item.output.expected.duration_s for item in group),
    )
