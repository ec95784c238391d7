"""What a deliverable's content credentials say postprod did, from its plan and the job's facts."""

from __future__ import annotations

from fractions import Fraction

from pipeline.model.job import Job
from pipeline.model.provenance import EditAction, ProvenancePlan
from pipeline.plan.conform import PictureFormat
from pipeline.plan.facts import JobFacts
from pipeline.plan.outputs import OutputPlan
from pipeline.plan.overlays import overlays_for


def describe_edit(job: Job, facts: JobFacts, picture: PictureFormat, output: OutputPlan) -> ProvenancePlan:
    """The actions a deliverable's credentials list: transcoded always; trimmed, reframed, scaled,
    rate-converted, burnt in and normalised where its plan does those things."""
    preset, video = output.preset, output.preset.video
    shot_media = [facts.media[shot.source] for shot in job.shots]
    source_sizes = [(info.video.display_width, info.video.display_height) for info in shot_media]
    width, height = picture.width, picture.height
    encoding = " ".join(filter(None, (video.codec, video.profile, "in", preset.container)))
    actions = [EditAction("c2pa.transcoded", f"encoded as {encoding}")]
    if any(shot.in_point is not None or shot.out_point is not None for shot in job.shots):
        actions.append(EditAction("c2pa.trimmed", "shots trimmed to their in and out points"))
    reshaped = [size for size in source_sizes if Fraction(*size) != Fraction(width, height)]
    if reshaped and video.fit != "pad":
        actions.append(EditAction("c2pa.cropped", f"reframed to {width}x{height} ({video.fit} fit)"))
    if any(size != (width, height) for size in source_sizes):
        actions.append(EditAction("c2pa.resized", f"scaled to {width}x{height}"))
    if any(info.video.frame_rate != picture.frame_rate for info in shot_media):
        actions.append(EditAction("c2pa.edited", f"frame rate converted to {_rate_text(picture.frame_rate)} fps"))
    overlay_kinds = [overlay.kind for _, overlay in overlays_for(job, output.deliverable)]
    if video.burn_in_timecode:
        overlay_kinds.append("timecode")
    if overlay_kinds:
        kinds = ", ".join(dict.fromkeys(kind.replace("_", " ") for kind in overlay_kinds))
        actions.append(EditAction("c2pa.edited", f"burnt in: {kinds}"))
    if output.loudness is not None:
        actions.append(EditAction("c2pa.edited", f"sound normalised to {output.loudness.target.target_lufs:g} LUFS"))
    sources = tuple(dict.fromkeys(shot.source for shot in job.shots))
    return ProvenancePlan(sources, tuple(actions), job.provenance.ai_generated, preset.provenance.credentials)


def _rate_text(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.3f}"
