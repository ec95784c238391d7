"""Generator-shaped test and demo clips, made with ffmpeg's lavfi sources.

Each clip carries a ground truth: a moving test pattern, a one-frame white flash and a 1 kHz beep at
the same known instant, over a 440 Hz tone at -20 dBFS. Shapes mirror what text-to-video services
deliver (Sora 2, Veo 3, Kling, LTX...) and the awkward files real projects meet.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from pipeline.media import run_ffmpeg
from pipeline.timebase import format_rate

TONE_HZ = 440
TONE_DBFS = -20.0
BEEP_HZ = 1000


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


def synthesize(shape: ClipShape, path: Path, duration_s: Fraction, flash_at_s: Fraction | None = None) -> Path:
    """Write a clip of ``shape`` lasting ``duration_s`` to ``path``.

    Args:
        shape: The clip's technical shape.
        path: Output file (.mp4).
        duration_s: Length of the picture, in seconds.
        flash_at_s: When the flash and beep happen; defaults to the middle of the clip, on a frame.

    Returns:
        ``path``.
    """
    rate = format_rate(shape.frame_rate)
    frames = int(duration_s * shape.frame_rate)
    if flash_at_s is None:
        flash_at_s = Fraction(frames // 2) / shape.frame_rate
    flash_end_s = flash_at_s + 1 / shape.frame_rate
    # Fixed project text, not user input: building the graph string here is safe.
    # testsrc2 draws even sizes only; odd shapes are cropped from the next even size up and kept
    # 4:4:4, the only way H.264 stores an odd raster.
    odd = shape.width % 2 or shape.height % 2
    video_graph = (
        f"testsrc2=s={shape.width + shape.width % 2}x{shape.height + shape.height % 2}"
        f":r={rate}:d={float(duration_s)},"
        + (f"format=yuv444p,crop={shape.width}:{shape.height}:0:0," if odd else "")
        + f"drawbox=c=white:t=fill:enable='between(t,{float(flash_at_s)},{float(flash_end_s) - 1e-4})'"
    )
    if shape.variable_frame_rate:
        # Odd frames arrive 10 ms late: intervals alternate, the mean rate stays nominal.
        video_graph += f",settb=1/90000,setpts='(N/({rate})+0.010*mod(N\\,2))/TB'"
    args = ["-f", "lavfi", "-i", video_graph]
    if shape.audio_rate:
        amplitude = 10 ** (TONE_DBFS / 20)
        beep = f"if(between(t,{float(flash_at_s)},{float(flash_at_s) + 0.1}),0.5*sin(2*PI*{BEEP_HZ}*t),0)"
        audio_graph = (
            f"aevalsrc='{amplitude:.6f}*sin(2*PI*{TONE_HZ}*t)+{beep}'"
            f":s={shape.audio_rate}:d={float(duration_s - shape.audio_delay_s)}"
        )
        if shape.audio_channels == 2:
            # The same signal at full level in both channels (a plain upmix would lower it 3 dB).
            audio_graph += ",pan=stereo|c0=c0|c1=c0"
        if shape.audio_delay_s:
            args += ["-itsoffset", str(float(shape.audio_delay_s))]
        args += ["-f", "lavfi", "-i", audio_graph, "-c:a", "aac", "-b:a", "192k"]
    if shape.video_codec == "hevc10":
        args += ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1",
                 "-x265-params", "log-level=error"]
    else:
        pix_fmt = "yuv444p" if odd else "yuv420p"
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
