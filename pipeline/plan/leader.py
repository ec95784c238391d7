"""The leader before a broadcast programme: bars and line-up tone, a slate (clock) counting down, black.

Planned as data (frame counts, the slate's ASS script and font link) and built as ffmpeg-python
streams that the planner puts in front of the programme. The slate's fields are user text: they
are written into an ASS script for libass as literal text (see
:func:`pipeline.plan.ass_script.escape_ass_text`), never into filter arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg

from pipeline.plan.conform import PictureFormat
from pipeline.plan.hdr import output_colour
from pipeline.errors import JobError
from pipeline.plan.fonts import default_font_path
from pipeline.model.job import Slate
from pipeline.plan.ass_script import ass_time, escape_ass_text
from pipeline.plan.overlay_layout import fit_text, font_face
from pipeline.model.presets import LeaderSpec
from pipeline.model.timebase import format_rate, frames_to_samples, round_half_up
from pipeline.timeline.timecode_track import timecode_at
from pipeline.plan.workfiles import FontLink, PreparedFile, TextFile

TONE_HZ = 1000
"""Line-up tone frequency."""
LFE_TONE_HZ = 80
"""Line-up tone of a 5.1 programme's LFE channel."""
FIVE_ONE_TONE_S = 3
"""A 5.1 line-up cycle starts with this much tone on the five main channels, then half a second of
silence, then each main channel named by a half-second burst and half a second of silence."""
FIVE_ONE_IDENT_ORDER = {"FL": 0, "FC": 1, "FR": 2, "BR": 3, "BL": 4}
"""Where each main channel's burst comes in the cycle: clockwise from front left (L, C, R, Rs, Ls)."""
BARS_SOURCES = {"ebu": "pal75bars", "smpte": "smptehdbars"}
"""ffmpeg sources of the bars patterns."""
SLATE_BACKGROUND = "0x1c2430"
"""Dark slate grey: a clock is told apart from the black after it at a glance."""
BLACK = "black"
FIELD_SIZE = 0.045
"""Height of a slate field line, as a share of the frame height."""
COUNTDOWN_SIZE = 0.22
"""Height of the countdown number, as a share of the frame height."""
LEADER_FILTERS = ("pal75bars", "smptehdbars", "color", "aevalsrc", "anullsrc", "split", "asplit", "trim",
                  "setpts", "scale", "format", "setsar", "setparams", "subtitles", "atrim", "asetpts", "concat")


@dataclass(frozen=True)
class LeaderPlan:
    """The leader of one deliverable, timed in its frames."""

    spec: LeaderSpec
    """What the preset asked for."""
    picture: PictureFormat
    """The deliverable's raster and rate."""
    bars_frames: int
    """Frames of bars and tone."""
    slate_frames: int
    """Frames of the slate."""
    black_frames: int
    """Frames of black before the programme."""
    script: Path
    """The slate's ASS script."""
    fonts_dir: Path
    """The folder libass reads the slate's font from."""
    files: tuple[PreparedFile, ...]
    """The script and the font link, made before ffmpeg starts."""
    layout: str = "stereo"
    """The programme's channel layout, which the tone is laid out in (see :func:`line_up_tone`)."""

    @property
    def frame_count(self) -> int:
        """Frames of the whole leader: the programme's first frame is this frame of the file."""
        return self.bars_frames + self.slate_frames + self.black_frames

    def sample_count(self, sample_rate: int) -> int:
        """Samples of the whole leader."""
        return frames_to_samples(self.frame_count, self.picture.frame_rate, sample_rate)


def leader_frames(spec: LeaderSpec, rate: Fraction) -> int:
    """Frames of a whole leader at ``rate``: its timecode seconds times the nominal rate."""
    return (spec.bars_seconds + spec.slate_seconds + spec.black_seconds) * round_half_up(rate)


def plan_leader(spec: LeaderSpec, slate: Slate, picture: PictureFormat, programme_frames: int,
                work_dir: Path, layout: str = "stereo") -> LeaderPlan:
    """Time the leader at the deliverable's rate and write its slate.

    The slate shows the job's fields, the programme's duration, and the whole seconds left until
    the programme starts, changing on each timecode second.

    Raises:
        JobError: the slate's font has no glyph for a character of its text.
    """
    second = round_half_up(picture.frame_rate)
    bars, slate_frames, black = (spec.bars_seconds * second, spec.slate_seconds * second, spec.black_seconds * second)
    script = work_dir / "slate.ass"
    font = default_font_path()
    fonts_dir = work_dir / "fonts"
    text = _slate_script(slate, picture, programme_frames, spec)
    return LeaderPlan(spec, picture, bars, slate_frames, black, script, fonts_dir,
                      (TextFile(script, text), FontLink(fonts_dir / f"slate{font.suffix.lower()}", font)), layout)


def slate_fields(slate: Slate, picture: PictureFormat, programme_frames: int) -> list[tuple[str, str]]:
    """(label, value) of each line of the slate, in order; fields the job left out are skipped."""
    duration = timecode_at(programme_frames, picture.frame_rate, drop_frame=False)
    fields = [("Clock number", slate.clock_number), ("Title", slate.title), ("Agency", slate.agency),
              ("Advertiser", slate.advertiser), ("Duration", duration), ("Date", slate.date)]
    return [(label, value) for label, value in fields if value]


def _slate_script(slate: Slate, picture: PictureFormat, programme_frames: int, spec: LeaderSpec) -> str:
    face = font_face(default_font_path())
    width, height = picture.width, picture.height
    field_px = FIELD_SIZE * height
    left, top = 0.08 * width, 0.2 * height
    events = []
    end = spec.slate_seconds * round_half_up(picture.frame_rate)
    for line, (label, value) in enumerate(slate_fields(slate, picture, programme_frames)):
        text = f"{label}: {value}"
        missing = sorted({ch for ch in text if not ch.isspace() and not face.covers(ch)})
        if missing:
            raise JobError(f"slate.{label.lower().replace(' ', '_')}: the slate's font has no glyph for "
                           f"{' '.join(repr(ch) for ch in missing[:8])}")
        block = fit_text(text, field_px, (face,), 0.58 * width, field_px * 1.3, max_lines=1)
        y = top + line * field_px * 1.4
        events.append(_dialogue(0, end, picture.frame_rate, "Field",
                                f"{{\\an7\\pos({left:.1f},{y:.1f})\\fs{block.size_px:.2f}}}"
                                + escape_ass_text(" ".join(block.lines))))
    second = round_half_up(picture.frame_rate)
    for elapsed in range(spec.slate_seconds):
        remaining = spec.slate_seconds + spec.black_seconds - elapsed
        events.append(_dialogue(elapsed * second, (elapsed + 1) * second, picture.frame_rate, "Count",
                                f"{{\\an5\\pos({0.8 * width:.1f},{0.5 * height:.1f})}}{remaining}"))
    family = face.family.replace(",", " ")
    return "\n".join([
        "[Script Info]", "ScriptType: v4.00+", f"PlayResX: {width}", f"PlayResY: {height}",
        "WrapStyle: 2", "ScaledBorderAndShadow: yes", "YCbCr Matrix: None", "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
        "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
        "Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
        f"Style: Field,{family},{field_px:.2f},&H00FFFFFF,&H00FFFFFF,&H00000000,&H00000000,0,0,0,0,"
        "100,100,0,0,1,0,0,7,0,0,0,1",
        f"Style: Count,{family},{COUNTDOWN_SIZE * height:.2f},&H00FFFFFF,&H00FFFFFF,&H00000000,"
        "&H00000000,-1,0,0,0,100,100,0,0,1,0,0,5,0,0,0,1",
        "", "[Events]", "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        *events, "",
    ])


def _dialogue(start: int, end: int, rate: Fraction, style: str, text: str) -> str:
    return f"Dialogue: 0,{ass_time(start, rate)},{ass_time(end, rate)},{style},,0,0,0,,{text}"


def _requests(plan: LeaderPlan, sample_rate: int) -> list[tuple[str, str]]:
    """The ffmpeg sources (``video`` or ``audio``, lavfi description) a leader reads, in the order
    :func:`leader_streams` takes them."""
    picture = plan.picture
    raster = f"size={picture.width}x{picture.height}:rate={format_rate(picture.frame_rate)}"
    requests = [("video", f"{BARS_SOURCES[plan.spec.bars]}={raster}"),
                ("video", f"color=color={SLATE_BACKGROUND}:{raster}")]
    if plan.black_frames:
        requests.append(("video", f"color=color={BLACK}:{raster}"))
    # Spelt unlike conform.silence(), so the two never merge into one ffmpeg-python node.
    return requests + [("audio", f"aevalsrc={line_up_tone(plan.spec.tone_dbfs, plan.layout)}:s={sample_rate}:"
                                 f"c={plan.layout}"),
                       ("audio", f"anullsrc=channel_layout={plan.layout}:sample_rate={sample_rate}")]


def line_up_tone(tone_dbfs: float, layout: str) -> str:
    """``aevalsrc`` channel expressions of the line-up tone, escaped for a lavfi source description.

    Stereo: 1 kHz on both channels. 5.1, the EBU multichannel line-up: a repeating cycle of
    :data:`FIVE_ONE_TONE_S` of 1 kHz on the five main channels, half a second of silence, then each
    main channel identified in turn (clockwise from front left) by a half-second burst followed by
    half a second of silence; the LFE carries :data:`LFE_TONE_HZ` throughout. All at ``tone_dbfs``.
    """
    amplitude = f"{10 ** (tone_dbfs / 20):.6f}"
    tone = f"{amplitude}*sin(2*PI*{TONE_HZ}*t)"
    if layout == "stereo":
        return f"{tone}|{tone}"
    cycle = FIVE_ONE_TONE_S + Fraction(1, 2) + len(FIVE_ONE_IDENT_ORDER)
    position = f"mod(t\\,{float(cycle)})"
    expressions = []
    for name in ("FL", "FR", "FC", "LFE", "BL", "BR"):
        if name == "LFE":
            expressions.append(f"{amplitude}*sin(2*PI*{LFE_TONE_HZ}*t)")
            continue
        burst = FIVE_ONE_TONE_S + Fraction(1, 2) + FIVE_ONE_IDENT_ORDER[name]
        expressions.append(f"{tone}*(lt({position}\\,{FIVE_ONE_TONE_S})+gte({position}\\,{float(burst)})"
                           f"*lt({position}\\,{float(burst + Fraction(1, 2))}))")
    return "|".join(expressions)


class LeaderSources:
    """The ffmpeg sources of every leader in one render, each opened once and split into one branch
    per use: ffmpeg-python merges identical inputs into one node, and a node's output feeds one filter."""

    def __init__(self, leaders: list[tuple[LeaderPlan, int]]):
        requests = [request for plan, sample_rate in leaders for request in _requests(plan, sample_rate)]
        self._branches = {}
        for request in dict.fromkeys(requests):
            kind, description = request
            node = ffmpeg.input(description, f="lavfi")
            stream, uses = (node.video if kind == "video" else node.audio), requests.count(request)
            split = "split" if kind == "video" else "asplit"
            branches = [stream] if uses == 1 else [stream.filter_multi_output(split, uses)[n] for n in range(uses)]
            self._branches[request] = iter(branches)

    def take(self, request: tuple[str, str]):
        """An unused branch of a source."""
        return next(self._branches[request])


def _picture(stream, picture: PictureFormat, frames: int):
    """``frames`` frames of a picture source in the deliverable's format (BT.709, limited range)."""
    return (
        stream.filter("trim", end_frame=frames).filter("setpts", "PTS-STARTPTS")
        .filter("scale", out_color_matrix="bt709", out_range="tv")
        .filter("format", picture.pix_fmt).filter("setsar", 1)
        .filter("setparams", **output_colour("bt709"))
    )


def leader_streams(plan: LeaderPlan, sample_rate: int, sources: LeaderSources) -> tuple[list, list]:
    """The leader's picture segments (bars, slate, black) and sound segments (tone, silence), each a
    list of ffmpeg-python streams to concatenate in front of the programme."""
    requests = iter(_requests(plan, sample_rate))
    picture = plan.picture
    bars = _picture(sources.take(next(requests)), picture, plan.bars_frames)
    slate = _picture(sources.take(next(requests)), picture, plan.slate_frames).filter(
        "subtitles", filename=str(plan.script), fontsdir=str(plan.fonts_dir))
    segments = [bars, slate]
    if plan.black_frames:
        segments.append(_picture(sources.take(next(requests)), picture, plan.black_frames))
    tone_samples = frames_to_samples(plan.bars_frames, picture.frame_rate, sample_rate)
    tone, silence = sources.take(next(requests)), sources.take(next(requests))
    sound = [
        tone.filter("atrim", end_sample=tone_samples).filter("asetpts", "PTS-STARTPTS"),
        silence.filter("atrim", end_sample=plan.sample_count(sample_rate) - tone_samples)
        .filter("asetpts", "PTS-STARTPTS"),
    ]
    return segments, sound


def with_leader(video, audio, plan: LeaderPlan | None, sample_rate: int, sources: LeaderSources):
    """``video`` and ``audio`` (the programme) with the leader in front; unchanged without one."""
    if plan is None:
        return video, audio
    pictures, sounds = leader_streams(plan, sample_rate, sources)
    return (ffmpeg.concat(*pictures, video, v=1, a=0), ffmpeg.concat(*sounds, audio, v=0, a=1))
