"""One frame of a deliverable, overlays and all, as a PNG: a quick look without rendering the job.

The deliverable is planned as a render plans it, reframing analysis included (so a ``smart``
crop is where the render puts it); its filter graph is then cut after the requested frame
(``trim``) and only that frame is encoded. Decoding still runs from the start of the sequence to
that frame, since transitions and overlays depend on what came before. The Python-side enhance
modes (``flow``, ``destutter``, ``learned``) are not run for a still: it shows the frame as the
ffmpeg-side conform makes it.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

from pipeline.analysis.cache import AnalysisCache
from pipeline.errors import JobError
from pipeline.files import partial_path
from pipeline.jobs.analyses import analyse_sources, probe_music, probe_sources
from pipeline.model.job import Job
from pipeline.media.runner import run_ffmpeg
from pipeline.plan.facts import JobFacts
from pipeline.plan.outputs import RenderPlan
from pipeline.plan.planner import plan_job
from pipeline.plan.render_graph import long_graph_through_file
from pipeline.model.presets import Preset, load_presets
from pipeline.model.timebase import parse_time
from pipeline.plan.workfiles import TextFile
from pipeline.render.prepare import prepared


def still_args(plan: RenderPlan, frame: int, out_path: Path) -> tuple[list[str], tuple[TextFile, ...]]:
    """``plan``'s arguments (one output) rewritten to write only picture frame ``frame`` as a PNG,
    and the graph file to prepare when the graph is too long for one argument."""
    args = list(plan.args)
    if "-filter_complex" in args:
        graph_at = args.index("-filter_complex")
        graph = args[graph_at + 1]
    else:  # a long graph, in the file the plan prepares
        graph_at = args.index("-/filter_complex")
        script = Path(args[graph_at + 1])
        graph = next(file.text for file in plan.prepared_files if isinstance(file, TextFile) and file.path == script)
    maps = [args[index + 1] for index in range(graph_at + 2, len(args) - 1) if args[index] == "-map"]
    if len(maps) != 2:
        raise ValueError(f"expected one output with a picture and a sound map, found maps {maps}")
    picture, sound = maps
    graph = (f"{graph};{picture}trim=start_frame={frame}:end_frame={frame + 1},"
             f"setpts=PTS-STARTPTS[still];{sound}anullsink")
    still = [*args[:graph_at], "-filter_complex", graph, "-map", "[still]", "-frames:v", "1",
             "-c:v", "png", "-f", "image2", "-update", "1", str(out_path)]
    return long_graph_through_file(still, out_path.with_name(f"{out_path.name}.filtergraph"))


def render_still(job: Job, deliverable: str, at: str, out_path: Path,
                 presets: dict[str, Preset] | None = None) -> Path:
    """Write the frame of ``deliverable`` shown at ``at`` (seconds, ``36f`` frames or timecode at
    the deliverable's rate) to ``out_path`` as a PNG.

    Raises:
        JobError: no such deliverable, a bad time, or a time past the end of the sequence.
        MediaError: a source cannot be read.
    """
    chosen = [item for item in job.deliverables if item.label == deliverable]
    if not chosen:
        known = ", ".join(item.label for item in job.deliverables)
        raise JobError(f"--deliverable: the job has no deliverable {deliverable!r} (it has {known})")
    # One graph, however many shots: only one frame is encoded.
    single = job.model_copy(update={
        "deliverables": chosen,
        "sequence": job.sequence.model_copy(update={"shots_per_render": max(2, len(job.shots))}),
    })
    out_path = out_path.resolve()
    presets = presets or load_presets()
    media = probe_sources(single)
    found = analyse_sources(single, media, presets, AnalysisCache.from_environment().get_or_compute)
    facts = JobFacts(media, music=probe_music(single), reframe=found.reframe, active_area=found.active_area)
    plan = plan_job(single, facts, presets, out_path.parent)
    render_plan = plan.renders[0]
    expected = render_plan.outputs[0].expected
    try:
        frame = int(parse_time(at, expected.frame_rate) * expected.frame_rate)
    except ValueError as error:
        raise JobError(f"--at: {error}") from None
    if frame >= expected.frame_count:
        end_s = Fraction(expected.frame_count) / expected.frame_rate
        raise JobError(f"--at: {at} is at or after the end of the sequence ({float(end_s):.3f} s, "
                       f"{expected.frame_count} frames)")
    partial = partial_path(out_path)
    try:
        args, graph_files = still_args(render_plan, frame, partial)
        with prepared(render_plan.prepared_files + graph_files):
            run_ffmpeg(args)
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return out_path
