"""Generator-shaped test and demo clips, made with ffmpeg's lavfi sources.

Each clip carries a ground truth: a moving test pattern, a one-frame white flash and a 1 kHz beep at
the same known instant, over a 440 Hz tone at -20 dBFS. Shapes mirror what text-to-video services
deliver (Sora 2, Veo 3, Kling, LTX...) and the awkward files real projects meet. A
:class:`ClipContent` adds sync faults on purpose: several events at chosen times, beeps shifted
against their flashes or drifting away from them, a still picture, digitally silent sound.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pipeline.media.runner import run_ffmpeg
from pipeline.model.timebase import format_rate

TONE_HZ = 440
TONE_DBFS = -20.0
BEEP_HZ = 1000
BEEP_S = 0.1
"""Length of each beep, in seconds."""
BEEP_FADE_S = 0.01
"""Fade-out at the end of each beep, in seconds."""


@dataclass(frozen=True)
class ClipShape:
    """The technical shape of a generated clip."""

    name: str
    """Identifier, e.g. ``sora2-1280x720-24``."""
    width: int
    """Coded width in pixels."""
    height: int
    """Coded height in pixels."""
    frame_rate: Fraction
    """Frames per second (the mean rate when variable)."""
    audio_rate: int | None = 48000
    """Audio sample rate; None for a silent clip."""
    audio_channels: int = 2
    """Audio channel count."""
    video_codec: str = "h264"
    """``h264`` (8-bit) or ``hevc10`` (10-bit HEVC)."""
    rotation: int = 0
    """Counter-clockwise display rotation written into the display matrix, in degrees."""
    variable_frame_rate: bool = False
    """Jitter frame timestamps so intervals differ."""
    audio_delay_s: Fraction = Fraction(0)
    """Start the audio stream this much after the video (an edit-list start time)."""


@dataclass(frozen=True)
class ClipContent:
    """What happens in a clip and when: the ground truth that sync analysis is measured against."""

    event_times_s: tuple[Fraction, ...] = ()
    """Instants of the flash-and-beep events in picture time, in seconds (put them on frames); empty
    means the one event of :func:`synthesize`'s ``flash_at_s``."""
    audio_shift_s: Fraction = Fraction(0)
    """Each beep sounds this much after its flash (negative: before), in seconds. The audio stream
    itself still starts with the picture: the content is out of sync, not the container."""
    audio_drift_ms_per_min: Fraction = Fraction(0)
    """A further shift that grows with time: the beep of an event at ``t`` seconds comes
    ``t / 60 * audio_drift_ms_per_min`` milliseconds later still."""
    still_picture: bool = False
    """Colour bars that never move or flash, instead of the moving pattern with its flashes."""
    silent_audio: bool = False
    """Digital silence (all-zero samples) instead of the tone and the beeps."""
    beep_s: float = BEEP_S
    """Length of each beep in seconds; a few milliseconds make it a click."""

    def beep_time_s(self, event_s: Fraction) -> Fraction:
        """When the beep of the event at ``event_s`` starts, in seconds."""
        return event_s + self.audio_shift_s + event_s * self.audio_drift_ms_per_min / 60_000


def _shape(name: str, width: int, height: int, rate: str | int, **kwargs) -> ClipShape:
    return ClipShape(name, width, height, Fraction(rate), **kwargs)


SHAPES: dict[str, ClipShape] = {
    shape.name: shape
    for shape in (
        _shape("sora2-1280x720-24", 1280, 720, 24, audio_rate=96000),
        _shape("sora2-720x1280-30", 720, 1280, 30, audio_rate=96000),
        _shape("sora2pro-1792x1024-24", 1792, 1024, 24),
        _shape("sora2pro-1024x1792-30", 1024, 1792, 30, audio_rate=None),
        _shape("sora2pro-1920x1080-30", 1920, 1080, 30),
        _shape("veo3-1920x1080-24", 1920, 1080, 24),
        _shape("kling-1920x1080-30", 1920, 1080, 30, audio_rate=None),
        _shape("ltx-3840x2160-24", 3840, 2160, 24, audio_rate=None),
        _shape("ray-1280x720-24", 1280, 720, 24, audio_rate=None),
        _shape("odd-1279x719-24", 1279, 719, 24),
        _shape("tiny-161x121-25", 161, 121, 25, audio_rate=None),
        _shape("vfr-1280x720-30", 1280, 720, 30, variable_frame_rate=True),
        _shape("phone-rotated-1920x1080-30", 1920, 1080, 30, rotation=90, audio_rate=44100,
               audio_channels=1),
        _shape("hevc10-1920x1080-24", 1920, 1080, 24, video_codec="hevc10"),
        _shape("mono44k-1280x720-24", 1280, 720, 24, audio_rate=44100, audio_channels=1),
        _shape("late-audio-1280x720-24", 1280, 720, 24, audio_delay_s=Fraction(1, 5)),
    )
}


def synthesize(
    shape: ClipShape,
    path: Path,
    duration_s: Fraction,
    flash_at_s: Fraction | None = None,
    content: ClipContent = ClipContent(),
) -> Path:
    """Write a clip of ``shape`` lasting ``duration_s`` to ``path``.

    Args:
        shape: The clip's technical shape.
        path: Output file (.mp4).
        duration_s: Length of the picture, in seconds.
        flash_at_s: When the flash and beep happen; defaults to the middle of the clip, on a frame.
            Ignored when ``content`` names its own event times.
        content: Events, sync faults, still picture or silent sound; by default one event in sync.

    Returns:
        ``path``.
    """
    rate = format_rate(shape.frame_rate)
    frames = int(duration_s * shape.frame_rate)
    if flash_at_s is None:
        flash_at_s = Fraction(frames // 2) / shape.frame_rate
    event_times_s = content.event_times_s or (flash_at_s,)
    # The window spans half a frame either side of the flash frame's start, so float rounding of a
    # frame time cannot make ffmpeg miss it.
    half_frame_s = 1 / (2 * shape.frame_rate)
    flashes = "+".join(
        f"between(t,{float(at - half_frame_s)},{float(at + half_frame_s)})" for at in event_times_s
    )
    # Fixed project text, not user input: building the graph string here is safe.
    # testsrc2 draws even sizes only; odd shapes are cropped from the next even size up and kept
    # 4:4:4, the only way H.264 stores an odd raster.
    odd = shape.width % 2 or shape.height % 2
    pix_fmt = "yuv420p10le" if shape.video_codec == "hevc10" else "yuv444p" if odd else "yuv420p"
    size = f"s={shape.width + shape.width % 2}x{shape.height + shape.height % 2}:r={rate}:d={float(duration_s)}"
    if content.still_picture:
        video_graph = f"smptebars={size}"
    else:
        # testsrc2 draws straight into a YUV format at full-range levels, which an untagged stream
        # then shows as out of gamut; drawn in RGB and converted here, the clip is legal video with
        # the matrix a player assumes for an untagged stream of its size. Its colours are kept
        # within 6-94 % as camera and generator pictures are: 100 % primaries meeting at hard
        # edges, or its per-pixel colour noise, ring out of gamut in any scaler or 4:2:0 encode.
        matrix = "bt709" if max(shape.width, shape.height) >= 1280 else "bt601"
        within = "16+val*224/255"
        video_graph = (
            f"testsrc2={size},format=rgb24,lutrgb=r={within}:g={within}:b={within},"
            f"drawbox=c=white:t=fill:enable='{flashes}',"
            f"scale=out_color_matrix={matrix}:out_range=tv,format={pix_fmt}"
        )
    if odd:
        video_graph += f",crop={shape.width}:{shape.height}:0:0"
    if shape.variable_frame_rate:
        # Odd frames arrive 10 ms late: intervals alternate, the mean rate stays nominal.
        video_graph += f",settb=1/90000,setpts='(N/({rate})+0.010*mod(N\\,2))/TB'"
    args = ["-f", "lavfi", "-i", video_graph]
    if shape.audio_rate:
        args += _sound_args(shape, duration_s, content, event_times_s)
    if shape.video_codec == "hevc10":
        args += ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", pix_fmt, "-tag:v", "hvc1",
                 "-x265-params", "log-level=error"]
    else:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", "-pix_fmt", pix_fmt]
    if shape.variable_frame_rate:
        # A fine encoder time base keeps the jittered timestamps instead of snapping them to the rate.
        args += ["-fps_mode", "passthrough", "-enc_time_base:v", "1/90000"]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not shape.rotation:
        run_ffmpeg([*args, str(path)])
        return path
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        unrotated = Path(scratch) / "unrotated.mp4"
        run_ffmpeg([*args, str(unrotated)])
        run_ffmpeg(["-display_rotation", str(shape.rotation), "-i", str(unrotated), "-c", "copy", str(path)])
    return path


def resound(
    picture_clip: Path, shape: ClipShape, path: Path, duration_s: Fraction, content: ClipContent
) -> Path:
    """Write ``picture_clip``'s video stream, copied, with a new sound for ``content`` to ``path``.

    Many sync faults of one picture cost one video encode: ``picture_clip`` must have been made by
    :func:`synthesize` with the same shape, duration and event times.
    """
    sound = _sound_args(shape, duration_s, content, content.event_times_s)
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(["-i", str(picture_clip), *sound, "-map", "0:v", "-map", "1:a", "-c:v", "copy", str(path)])
    return path


def _sound_args(
    shape: ClipShape, duration_s: Fraction, content: ClipContent, event_times_s: tuple[Fraction, ...]
) -> list[str]:
    """ffmpeg input and encoder arguments for the clip's sound: tone and beeps, or silence, in AAC."""
    audio_graph = (
        f"aevalsrc='{_sound_expression(content, event_times_s)}'"
        f":s={shape.audio_rate}:d={float(duration_s - shape.audio_delay_s)}"
    )
    if shape.audio_channels == 2:
        # The same signal at full level in both channels (a plain upmix would lower it 3 dB).
        audio_graph += ",pan=stereo|c0=c0|c1=c0"
    delay = ["-itsoffset", str(float(shape.audio_delay_s))] if shape.audio_delay_s else []
    return [*delay, "-f", "lavfi", "-i", audio_graph, "-c:a", "aac", "-b:a", "192k"]


def _sound_expression(content: ClipContent, event_times_s: tuple[Fraction, ...]) -> str:
    """aevalsrc expression: the bed tone with a beep per event, or digital silence.

    Each beep starts at full level (the event) and fades out over its last 10 ms, so that its end
    is no click: a click there would be a second, false event a picture cannot match.
    """
    if content.silent_audio:
        return "0"
    amplitude = 10 ** (TONE_DBFS / 20)
    length, fade = content.beep_s, min(BEEP_FADE_S, content.beep_s / 2)
    beep_gates = "+".join(
        f"between(t,{float(start)},{float(start) + length})*min(1,({float(start) + length}-t)/{fade})"
        for start in map(content.beep_time_s, event_times_s)
    )
    return f"{amplitude:.6f}*sin(2*PI*{TONE_HZ}*t)+0.5*sin(2*PI*{BEEP_HZ}*t)*({beep_gates or 0})"


@dataclass(frozen=True)
class ImpactScene:
    """A harder sync ground truth: a ball bouncing on a floor in a noisy picture, each bounce heard as
    a knock over pink noise, with a silent zigzagging distractor and speech-like murmurs that no
    picture matches."""

    impact_times_s: tuple[Fraction, ...]
    """When the ball hits the floor, in seconds of picture time (put them on frames)."""
    audio_shift_s: Fraction = Fraction(0)
    """Each knock sounds this much after its bounce (negative: before), in seconds."""
    murmur_times_s: tuple[Fraction, ...] = ()
    """Starts of 250 ms speech-like bursts with a 30 ms attack, in seconds; nothing in the picture."""
    distractor_turn_s: Fraction = Fraction(7, 10)
    """A second box zigzags sideways, turning every this many seconds, in silence."""
    noise_seed: int = 0
    """Seed of the pink noise under the sound."""


GRAVITY_HEIGHTS_PER_S2 = 2
"""The bouncing ball falls with this acceleration, in picture heights per second squared."""


def synthesize_impacts(shape: ClipShape, path: Path, duration_s: Fraction, scene: ImpactScene) -> Path:
    """Write an :class:`ImpactScene` of ``shape``'s size, rate and audio rate to ``path`` (H.264, AAC).

    The ball drops from rest at the start and each flight between two impacts is a parabola under
    the same gravity, so longer flights go higher and land faster, as a real bounce would.
    """
    rate = format_rate(shape.frame_rate)
    ball = max(4, shape.height // 8)
    floor_y = shape.height - ball - shape.height // 20
    gravity = GRAVITY_HEIGHTS_PER_S2 * shape.height
    # y(t) as nested ifs: the drop to the first impact, then one parabola per flight.
    first = scene.impact_times_s[0]
    ball_y = f"{floor_y}"
    flights = list(zip(scene.impact_times_s, scene.impact_times_s[1:]))
    for start_s, end_s in reversed(flights):
        flight_s = float(end_s - start_s)
        height = gravity * flight_s**2 / 8
        phase = f"(t-{float(start_s)})/{flight_s}"
        ball_y = f"if(lt(t,{float(end_s)}),{floor_y}-{4 * height:.3f}*{phase}*(1-{phase}),{ball_y})"
    drop = gravity * float(first) ** 2 / 2
    ball_y = f"if(lt(t,{float(first)}),{floor_y}-{drop:.3f}*(1-(t/{float(first)})^2),{ball_y})"
    distractor_x = f"{shape.width // 2}+{shape.width // 3}*abs(mod(t/{float(scene.distractor_turn_s)},2)-1)"
    video_graph = (
        f"color=c=0x505050:s={shape.width}x{shape.height}:r={rate}:d={float(duration_s)}[ground];"
        f"color=c=white:s={ball}x{ball}:r={rate}[ball];"
        f"color=c=0xC0C0C0:s={ball}x{ball}:r={rate}[distractor];"
        f"[ground][ball]overlay=x={shape.width // 4}:y='max(0,{ball_y})':shortest=1[with_ball];"
        f"[with_ball][distractor]overlay=x='{distractor_x}':y={shape.height // 4}:shortest=1,"
        "noise=alls=12:allf=t[out0]"
    )
    audio_rate = shape.audio_rate or 48000
    knocks = "+".join(
        f"between(t,{float(at + scene.audio_shift_s)},{float(at + scene.audio_shift_s) + 0.2})"
        f"*exp(-(t-{float(at + scene.audio_shift_s)})/0.025)"
        for at in scene.impact_times_s
    )
    murmurs = "+".join(
        f"between(t,{float(at)},{float(at) + 0.25})*min(1,(t-{float(at)})/0.03)*sin(PI*(t-{float(at)})/0.25)"
        for at in scene.murmur_times_s
    ) or "0"
    sound = (
        f"0.5*(2*random(0)-1)*({knocks})"
        f"+0.15*(sin(2*PI*160*t)+0.6*sin(2*PI*320*t)+0.4*sin(2*PI*480*t))*({murmurs})"
    )
    audio_graph = (
        f"anoisesrc=c=pink:a=0.03:r={audio_rate}:d={float(duration_s)}:seed={scene.noise_seed}[bed];"
        f"aevalsrc='{sound}':s={audio_rate}:d={float(duration_s)}[events];"
        "[bed][events]amix=inputs=2:normalize=0,pan=stereo|c0=c0|c1=c0[out0]"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    run_ffmpeg([
        "-f", "lavfi", "-i", video_graph, "-f", "lavfi", "-i", audio_graph,
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", str(path),
    ])  # fmt: skip
    return path
