"""``postprod reframe``: show (and optionally render) how a clip is reframed to another aspect ratio."""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from pipeline.errors import JobError

PRESET_FOR_ASPECT = {"9:16": "tiktok-9x16", "1:1": "instagram-1x1", "4:5": "instagram-4x5", "16:9": "youtube-1080p"}
"""The platform preset a rendered reframe (``--out``) uses for each aspect ratio."""

stdout = Console()


def _aspect(text: str) -> Fraction:
    try:
        width, height = (int(part) for part in text.split(":"))
        return Fraction(width, height)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not an aspect ratio: {text!r} (use W:H, e.g. 9:16)") from None


def cmd_reframe(args: argparse.Namespace) -> int:
    from pipeline.jobs.finish import finish
    from pipeline.model.job import job_for_clips, job_name_for_clip
    from pipeline.media.probe import probe
    from pipeline.analysis.reframe import analyse, camera_path, framing_for, write_debug_strip

    preset = None
    if args.out:
        # Before the analysis, which can take a while: --out needs a platform preset for the aspect.
        preset = PRESET_FOR_ASPECT.get(f"{args.aspect.numerator}:{args.aspect.denominator}")
        if preset is None:
            raise JobError(f"--out: no platform preset for {args.aspect}; use one of {', '.join(PRESET_FOR_ASPECT)}")
    media = probe(args.file)
    analysis = analyse(args.file, media)
    aspect = float(args.aspect)
    framing = framing_for(args.mode, "most_important", analysis, round(aspect * 1000), 1000)
    path = camera_path(analysis, aspect)
    area = analysis.active
    stdout.print(f"{escape(str(args.file))}: {len(path.shots)} shot(s); active area "
                 f"x {area.left:.3f}-{area.right:.3f}, y {area.top:.3f}-{area.bottom:.3f}")
    if args.mode != "smart" or (framing is not None and framing.blur):
        shown = {"center": "a centred crop", "pad": "the whole picture over bars"}.get(
            args.mode, "the whole picture over a blurred copy of itself")
        stdout.print(f"  {args.mode}: {shown}")
    else:
        for shot in path.shots:
            span = f"{min(shot.centres):.3f}-{max(shot.centres):.3f}"
            stdout.print(f"  {shot.start_s:7.3f}-{shot.end_s:7.3f} s  {shot.mode:10s} crop centre {path.axis} {span}")
    if args.debug:
        strip = write_debug_strip(analysis, media, framing, aspect, args.debug, whole_picture=args.mode == "pad")
        stdout.print(f"debug strip: {escape(str(strip))}")
    if preset is not None:
        name = f"{args.aspect.numerator}x{args.aspect.denominator}"
        job = job_for_clips([args.file], [preset], name=f"{job_name_for_clip(Path(args.file))}-{name}")
        job = job.model_copy(update={"deliverables": [
            job.deliverables[0].model_copy(update={"overrides": {"video": {"fit": args.mode}}})]})
        manifest = finish(job, args.out)
        stdout.print(f"manifest: {escape(str(manifest))}")
    return 0


def add_reframe_command(commands) -> None:
    """Register ``postprod reframe`` on the CLI's subcommands."""
    parser = commands.add_parser("reframe", help="reframe a clip to another aspect ratio: path, debug strip, render")
    parser.add_argument("file", type=Path)
    parser.add_argument("--aspect", type=_aspect, required=True, help="W:H, e.g. 9:16, 1:1, 4:5")
    parser.add_argument("--mode", choices=["smart", "center", "fit_blur", "pad"], default="smart")
    parser.add_argument("--out", type=Path, help="render the reframed clip into this folder")
    parser.add_argument("--debug", type=Path, metavar="STRIP.png",
                        help="write sampled frames with the crop box drawn on each")
    parser.set_defaults(handler=cmd_reframe)
