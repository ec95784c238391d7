"""Motion graphics from Python: the escape hatch for what ASS and ffmpeg filters cannot draw.

A job's ``graphics`` overlay names a callable, ``package.module:function``, called with keyword
arguments ``width``, ``height`` (the deliverable's frame, pixels), ``duration_s`` and ``frame_rate``
and returning a MoviePy clip with a mask (an animated counter, a chart, a branded sting). Its frames
are rendered once, streamed into ProRes 4444 with alpha, and composited by ffmpeg like any other
layer: MoviePy never runs the main render. Any object with ``size``, ``get_frame(t)`` and a
``mask`` with ``get_frame(t)`` works; MoviePy (``pip install 'postprod[graphics]'``) is the usual one.
"""

from __future__ import annotations

import importlib
from fractions import Fraction

import numpy as np

from pipeline.errors import JobError
from pipeline.media.runner import open_ffmpeg_pipe
from pipeline.model.timebase import format_rate
from pipeline.plan.workfiles import GraphicsRender

PRORES_4444_ARGS = ("-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le",
                    "-alpha_bits", "16", "-vendor", "apl0")


def load_callable(reference: str, field: str):
    """The function ``reference`` (``package.module:function``) names.

    Raises:
        JobError: the module cannot be imported or has no such function; names ``field``.
    """
    module_name, _, function_name = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        hint = " (install MoviePy: pip install 'postprod[graphics]')" if error.name == "moviepy" else ""
        raise JobError(f"{field}: cannot import {module_name!r}: {error}{hint}") from None
    except Exception as error:  # the user's module failed while importing: say so, with its error
        raise JobError(f"{field}: importing {module_name!r} failed: {type(error).__name__}: {error}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise JobError(f"{field}: {module_name!r} has no function {function_name!r}")
    return function


def render_graphics(spec: GraphicsRender) -> None:
    """Call the overlay's function and write its clip, with alpha, to ``spec.path`` (ProRes 4444):
    frames ``spec.first_frame`` to ``spec.end_frame - 1`` of it.

    Raises:
        JobError: the callable is missing, fails, or returns a clip without a mask or of no size.
        FFmpegError: encoding failed.
    """
    function = load_callable(spec.callable, spec.field)
    duration_s = Fraction(spec.frame_count) / spec.frame_rate
    try:
        clip = function(width=spec.width, height=spec.height, duration_s=float(duration_s),
                        frame_rate=float(spec.frame_rate))
    except Exception as error:  # the user's code: report it against the job field
        raise JobError(f"{spec.field}: {spec.callable} raised {type(error).__name__}: {error}") from None
    try:
        mask = getattr(clip, "mask", None)
        if mask is None or not hasattr(clip, "get_frame"):
            raise JobError(f"{spec.field}: {spec.callable} must return a clip with a mask "
                           "(MoviePy: a clip with .with_mask(), or an ImageClip of an RGBA image)")
        width, height = (int(value) for value in clip.size)
        if width < 1 or height < 1:
            raise JobError(f"{spec.field}: {spec.callable} returned a clip of size {width}x{height}")
        args = ["-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{width}x{height}",
                "-framerate", format_rate(spec.frame_rate), "-i", "pipe:0",
                "-vf", "scale=out_color_matrix=bt709:out_range=tv", *PRORES_4444_ARGS,
                "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
                "-f", "mov", str(spec.path)]
        with open_ffmpeg_pipe(args, stdin=True) as process:
            for frame in range(spec.first_frame, spec.end_frame):
                time_s = float(Fraction(frame) / spec.frame_rate)
                try:
                    rgb = np.asarray(clip.get_frame(time_s))[..., :3]
                    alpha = np.asarray(mask.get_frame(time_s), dtype=np.float64)
                except Exception as error:  # the user's code, frame by frame
                    raise JobError(f"{spec.field}: {spec.callable}'s clip raised {type(error).__name__} "
                                   f"at {time_s:.3f} s: {error}") from None
                if rgb.shape[:2] != (height, width) or alpha.shape[:2] != (height, width):
                    raise JobError(f"{spec.field}: frame {frame} is {rgb.shape[1]}x{rgb.shape[0]}, "
                                   f"not the clip's {width}x{height}")
                rgba = np.empty((height, width, 4), dtype=np.uint8)
                rgba[..., :3] = np.clip(rgb, 0, 255)
                rgba[..., 3] = np.clip(np.rint(alpha * 255), 0, 255)
                process.stdin.write(rgba.tobytes())
    finally:
        close = getattr(clip, "close", None)
        if callable(close):
            close()  # MoviePy file clips hold reader processes
