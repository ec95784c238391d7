"""The planner: pure, exact geometry, argument lists that are never shell strings, range checks."""

from __future__ import annotations

import re
import shutil
from fractions import Fraction
from pathlib import Path

import pytest

from pipeline.plan.conform import PictureFormat, Placement, place
from pipeline.errors import JobError
from pipeline.jobs.finish import finish
from pipeline.model.job import parse_job
from pipeline.plan.planner import plan_job
from pipeline.model.presets import load_presets
from pipeline.media.probe import AudioStreamInfo, MediaInfo, VideoStreamInfo, probe
from pipeline.plan.facts import JobFacts

PROJECT = Path("/nonexistent/project")
"""Sources of planning-only tests live nowhere: planning must not touch files."""

AWKWARD_NAME = "take 2; 'final' \"cut\" [v1]: a&b $(x).mp4"
"""Spaces, quotes, brackets, colon, semicolon, ampersand and a command substitution."""


def _video_stream(
    width: int, height: int, *, rotation: int = 0, sar: Fraction = Fraction(1),
    frame_rate: Fraction = Fraction(24), seconds: Fraction = Fraction(2),
) -> VideoStreamInfo:
    """Stream facts as probe reports them: display size swapped and aspect inverted when rotated."""
    turned = rotation in (90, 270)
    picture_aspect = Fraction(width) * sar / height
    return VideoStreamInfo(
        index=0, codec="h264", profile="High", codec_tag="avc1", coded_width=width, coded_height=height,
        rotation=rotation, display_width=height if turned else width,
        display_height=width if turned else height, sample_aspect_ratio=sar,
        display_aspect_ratio=1 / picture_aspect if turned else picture_aspect, frame_rate=frame_rate,
        variable_frame_rate=False, frame_count=int(seconds * frame_rate), start_time_s=Fraction(0),
        duration_s=seconds, pix_fmt="yuv420p", bit_depth=8, color_primaries="bt709",
        color_transfer="bt709", color_matrix="bt709", color_range="tv",
    )


def _media(path: Path, video: VideoStreamInfo) -> MediaInfo:
    audio = AudioStreamInfo(
        index=1, codec="aac", profile="LC", sample_rate=48000, channels=2, layout="stereo",
        sample_format="fltp", start_time_s=Fraction(0), duration_s=video.duration_s,
    )
    return MediaInfo(
        path=path, size_bytes=1, container="mov,mp4,m4a,3gp,3g2,mj2", brand="isom",
        duration_s=video.duration_s, video=video, audio=audio,
    )


def _job(shots: list[dict], presets: list[str], base_dir: Path = PROJECT):
    return parse_job(
        {"version": 1, "name": "plan-test", "shots": shots,
         "deliverables": [{"preset": name} for name in presets]},
        base_dir,
    )


def _plan(shots: list[dict], presets: list[str], video: VideoStreamInfo, one_process: bool = True):
    job = _job(shots, presets)
    media = {shot.source: _media(shot.source, video) for shot in job.shots}
    return plan_job(job, JobFacts(media), load_presets(), PROJECT / "out", one_process=one_process)


def _input_files(args: tuple[str, ...]) -> list[str]:
    """The argument after each ``-i``: what ffmpeg opens."""
    return [args[position + 1] for position, arg in enumerate(args) if arg == "-i"]


def test_planning_is_pure_and_repeatable():
    """Two plans of one job are identical, and the sources need not exist (nothing is decoded)."""
    shots = [{"source": "a.mp4", "in": "12f", "out": 1.5}, {"source": "b.mp4"}, {"source": "a.mp4"}]
    presets = ["web-h264-1080p", "broadcast-prores-hq-1080p2997", "social-9x16"]
    video = _video_stream(1280, 720)

    first, second = _plan(shots, presets, video), _plan(shots, presets, video)

    assert [render.args for render in first.renders] == [render.args for render in second.renders]
    assert first == second


def test_each_source_is_one_input_even_when_used_twice():
    plan = _plan([{"source": "a.mp4"}, {"source": "b.mp4"}, {"source": "a.mp4"}],
                 ["web-h264-1080p", "prores-proxy-1080p"], _video_stream(1280, 720))
    (render,) = plan.renders
    assert _input_files(render.args) == [str(PROJECT / "a.mp4"), str(PROJECT / "b.mp4")]


def test_separate_processes_make_one_render_per_deliverable():
    plan = _plan([{"source": "a.mp4"}], ["web-h264-1080p", "prores-proxy-1080p"], _video_stream(1280, 720),
                 one_process=False)
    assert [[output.deliverable for output in render.outputs] for render in plan.renders] == [
        ["web-h264-1080p"], ["prores-proxy-1080p"],
    ]


def _encoder_threads(args: tuple[str, ...]) -> list[str | None]:
    """Each output's ``-threads:v`` value (None where it has none), in output order: an output's
    options run from after the previous output's path up to its own path."""
    outputs, threads = [], None
    for position, arg in enumerate(args):
        if arg == "-threads:v":
            threads = args[position + 1]
        elif arg.endswith(".partial"):
            outputs.append(threads)
            threads = None
    return outputs


@pytest.mark.parametrize(("cores", "presets", "expected"), [
    (2, ["web-h264-1080p", "social-9x16"], ["1", "1"]),
    (8, ["web-h264-1080p", "social-9x16"], ["4", "4"]),
    (8, ["web-h264-1080p", "social-9x16", "prores-proxy-1080p"], ["2", "2", "2"]),
    (1, ["web-h264-1080p", "social-9x16"], ["1", "1"]),
    (8, ["web-h264-1080p"], [None]),
])
def test_encoders_in_one_ffmpeg_share_the_cores(monkeypatch, cores, presets, expected):
    """Encoders side by side in one ffmpeg each get an equal share of the cores as their threads (left
    alone, each would start about 1.5 threads per core); a lone encoder keeps its own default."""
    monkeypatch.setattr("pipeline.plan.render_graph.os.sched_getaffinity", lambda pid: set(range(cores)))
    (render,) = _plan([{"source": "a.mp4"}], presets, _video_stream(1280, 720)).renders
    assert _encoder_threads(render.args) == expected


def test_a_presets_own_encoder_threads_are_kept(monkeypatch):
    monkeypatch.setattr("pipeline.plan.render_graph.os.sched_getaffinity", lambda pid: set(range(8)))
    job = parse_job({"version": 1, "name": "plan-test", "shots": [{"source": "a.mp4"}], "deliverables": [
        {"preset": "web-h264-1080p", "overrides": {"video": {"options": {"threads": 6}}}},
        {"preset": "social-9x16"}]}, PROJECT)
    media = {shot.source: _media(shot.source, _video_stream(1280, 720)) for shot in job.shots}
    (render,) = plan_job(job, JobFacts(media), load_presets(), PROJECT / "out").renders
    assert _encoder_threads(render.args) == ["6", "4"]


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        # Pillarboxed: 1792 * 1080/1024 = 1890 wide; (1920 - 1890) / 2 = 15, made even.
        (_video_stream(1792, 1024), PictureFormat(1920, 1080, Fraction(25), "yuv422p10le", "pad"),
         Placement(1890, 1080, 14, 0)),
        (_video_stream(1920, 1080), PictureFormat(1920, 1080, Fraction(25), "yuv422p10le", "pad"),
         Placement(1920, 1080, 0, 0)),
        # Portrait into landscape: 720 * 1080/1280 = 607.5, rounded to the even 608.
        (_video_stream(720, 1280), PictureFormat(1920, 1080, Fraction(25), "yuv420p", "pad"),
         Placement(608, 1080, 656, 0)),
        # Landscape filling portrait: 1920 * 1920/1080 = 3413.3 -> 3414, crop window from x = 1167 -> 1166.
        (_video_stream(1920, 1080), PictureFormat(1080, 1920, Fraction(30), "yuv420p", "crop"),
         Placement(3414, 1920, 1166, 0)),
        (_video_stream(1920, 1080), PictureFormat(1080, 1080, Fraction(30), "yuv420p", "crop"),
         Placement(1920, 1080, 420, 0)),
        # Odd raster: width-bound, height 719 * 1920/1279 = 1079.3 -> 1080.
        (_video_stream(1279, 719), PictureFormat(1920, 1080, Fraction(24), "yuv420p", "pad"),
         Placement(1920, 1080, 0, 0)),
        (_video_stream(1279, 719), PictureFormat(1280, 720, Fraction(24), "yuv420p", "pad"),
         Placement(1280, 720, 0, 0)),
        # Anamorphic 1440x1080 with 4:3 pixels shows as 16:9.
        (_video_stream(1440, 1080, sar=Fraction(4, 3)),
         PictureFormat(1920, 1080, Fraction(25), "yuv420p", "pad"),
         Placement(1920, 1080, 0, 0)),
        # A phone clip stored 1920x1080 and turned 90 degrees is portrait.
        (_video_stream(1920, 1080, rotation=90), PictureFormat(1920, 1080, Fraction(30), "yuv420p", "pad"),
         Placement(608, 1080, 656, 0)),
        (_video_stream(1920, 1080, rotation=270), PictureFormat(1080, 1920, Fraction(30), "yuv420p", "crop"),
         Placement(1080, 1920, 0, 0)),
    ],
    ids=["1792x1024-pad-1080p", "1080p-pad-1080p", "720x1280-pad-1080p", "1080p-crop-9x16",
         "1080p-crop-1x1", "1279x719-pad-1080p", "1279x719-pad-720p", "anamorphic-pad-1080p",
         "rotated90-pad-1080p", "rotated270-crop-9x16"],
)
def test_place_geometry(source, target, expected):
    placement = place(source, target)
    assert placement == expected
    assert placement.x % 2 == 0 and placement.y % 2 == 0
    if target.fit == "pad":
        assert placement.x + placement.scaled_width <= target.width
        assert placement.y + placement.scaled_height <= target.height
    else:
        assert placement.x + target.width <= placement.scaled_width
        assert placement.y + target.height <= placement.scaled_height


def test_rotated_phone_clip_probes_and_places_as_portrait(make_clip):
    info = probe(make_clip("phone-rotated-1920x1080-30"))
    assert (info.video.coded_width, info.video.coded_height) == (1920, 1080)
    assert info.video.rotation in (90, 270)
    assert (info.video.display_width, info.video.display_height) == (1080, 1920)
    target = PictureFormat(1920, 1080, Fraction(30), "yuv420p", "pad")
    assert place(info.video, target) == Placement(608, 1080, 656, 0)


def test_awkward_file_names_are_single_arguments():
    """User names reach ffmpeg as list elements, whole, never through a shell or split on spaces."""
    out_dir = Path("/nonexistent/out dir; [final]")
    job = _job([{"source": AWKWARD_NAME}], ["prores-proxy-1080p"])
    source = job.shots[0].source
    plan = plan_job(job, JobFacts({source: _media(source, _video_stream(1280, 720))}), load_presets(), out_dir)

    (render,) = plan.renders
    (output,) = render.outputs
    assert isinstance(render.args, tuple) and all(isinstance(arg, str) for arg in render.args)
    assert _input_files(render.args) == [str(PROJECT / AWKWARD_NAME)]
    assert render.args.count(str(PROJECT / AWKWARD_NAME)) == 1
    assert render.args[-1] == str(output.partial_path)
    assert output.partial_path.parent == out_dir


def test_awkward_file_name_renders_end_to_end(make_clip, tmp_path):
    """master-prores-4444 keeps the source's size, so a 161x121 clip is the cheapest real render
    (about 0.1 s, against 0.5 s or more for the 1080p presets)."""
    source = tmp_path / AWKWARD_NAME
    shutil.copyfile(make_clip("tiny-161x121-25", audio_rate=48000), source)
    out_dir = tmp_path / "out dir; 'v1' [x]:y"
    job = _job([{"source": AWKWARD_NAME}], ["master-prores-4444"], base_dir=tmp_path)

    manifest = finish(job, out_dir)

    output = out_dir / "plan-test_master-prores-4444.mov"
    editorial = ["plan-test.edl", "plan-test.otio", "plan-test.xml"]
    qc = ["plan-test.qc.html", "plan-test_master-prores-4444.qc.json"]
    assert sorted(path.name for path in out_dir.iterdir()) == sorted([manifest.name, output.name, *editorial, *qc])
    rendered = probe(output)
    assert (rendered.video.codec, rendered.video.profile) == ("prores", "4444")
    assert (rendered.video.display_width, rendered.video.display_height) == (161, 121)
    assert rendered.video.frame_count == probe(source).video.frame_count


@pytest.mark.parametrize(
    ("shots", "message"),
    [
        ([{"source": "a.mp4", "out": 2.5}],
         r"^shots\.0\.out: 2\.5 is past the end of .*a\.mp4 \(2\.000 s\)$"),
        ([{"source": "a.mp4", "out": "49f"}], r"^shots\.0\.out: 49f is past the end"),
        ([{"source": "a.mp4"}, {"source": "a.mp4", "out": "00:00:02:01"}],
         r"^shots\.1\.out: 00:00:02:01 is past"),
        ([{"source": "a.mp4", "in": 2}], r"^shots\.0\.in: 2 is at or past the end"),
        ([{"source": "a.mp4", "in": "24f", "out": "12f"}],
         r"^shots\.0: in point 24f is not before out point 12f$"),
        ([{"source": "a.mp4", "in": "00:00:01:00", "out": "24f"}],
         r"^shots\.0: in point 00:00:01:00 is not before out point 24f$"),
        ([{"source": "a.mp4", "in": "1s", "out": "00:00:00:12"}], r"^shots\.0: in point 1s is not before"),
    ],
    ids=["out-seconds-past-end", "out-frames-past-end", "second-shot-timecode-past-end", "in-at-end",
         "frames-in-after-out", "timecode-in-equals-out", "mixed-in-after-out"],
)
def test_planner_checks_points_against_the_source(shots, message):
    """A 2 s, 24 fps source: frames and timecode are only comparable once its rate is known."""
    with pytest.raises(JobError, match=message):
        _plan(shots, ["prores-proxy-1080p"], _video_stream(1280, 720, seconds=Fraction(2)))


def test_timecode_frame_field_past_the_source_rate_names_the_field():
    """The job accepts 00:00:01:24 (it cannot know the rate); at 24 fps the planner must reject it."""
    with pytest.raises(JobError, match=r"^shots\.0\.out: .*frame field 24 is not below 24 fps"):
        _plan([{"source": "a.mp4", "out": "00:00:01:24"}], ["prores-proxy-1080p"], _video_stream(1280, 720))


def test_a_filter_graph_too_long_for_one_argument_goes_through_a_file(make_colour_clip, tmp_path, monkeypatch):
    """Past the argument-length threshold the graph is read from a prepared file, and renders the same."""
    import json

    from pipeline.plan import render_graph
    clip = make_colour_clip("blue", seconds=Fraction(1))
    job = _job([{"source": str(clip), "transition": {"type": "dissolve", "frames": 6}}, {"source": str(clip)}],
               ["review-540p"], base_dir=tmp_path)
    monkeypatch.setattr(render_graph, "FILTER_GRAPH_ARGUMENT_MAX", 100)
    (render,) = plan_job(job, JobFacts({clip: probe(clip)}), load_presets(), tmp_path / "out").renders
    assert "-filter_complex" not in render.args
    script = Path(render.args[render.args.index("-/filter_complex") + 1])
    assert script in [file.path for file in render.prepared_files]

    manifest = json.loads(finish(job, tmp_path / "out").read_text())
    assert probe(manifest["outputs"][0]["path"]).video.frame_count == 2 * 24 - 6
    assert not script.exists(), "the graph file is removed after the render"


def test_music_fade_is_counted_at_the_sequence_rate_not_the_deliverables():
    """12 frames of a 24 fps sequence are 0.5 s (24000 samples) in a 25 fps deliverable too, not 12/25 s."""
    job = parse_job(
        {"version": 1, "name": "fade", "shots": [{"source": "a.mp4"}],
         "deliverables": [{"preset": "broadcast-prores-hq-1080p25"}, {"preset": "prores-proxy-1080p"}],
         "music": {"source": "bed.wav", "fade_out_frames": 12}},
        PROJECT,
    )
    shot = _media(PROJECT / "a.mp4", _video_stream(1280, 720, frame_rate=Fraction(24)))
    bed = shot.audio
    plan = plan_job(job, JobFacts({shot.path: shot}, music=bed), load_presets(), PROJECT / "out", one_process=False)
    fades = [re.findall(r"afade=[^;\[]*", render.args[render.args.index("-filter_complex") + 1])
             for render in plan.renders]
    assert [len(found) for found in fades] == [1, 1]
    assert all("nb_samples=24000" in found[0] for found in fades), fades


def test_broadcast_renders_legalise_last_and_prepare_their_lut():
    """The legaliser runs after the whole picture chain of a broadcast deliverable, in every window
    of a long sequence, and nowhere else; its LUT is a file the render writes first."""
    video = _video_stream(1280, 720)
    shots = [{"source": f"{name}.mp4", "transition": {"type": "dip_to_white", "frames": 6}} for name in "ab"]
    shots.append({"source": "c.mp4"})
    whole = _plan(shots, ["broadcast-prores-hq-1080p25", "web-h264-1080p"], video)
    (render,) = whole.renders
    graph = render.args[render.args.index("-filter_complex") + 1]
    assert graph.count("lut3d") == 1 and "lut3d" in render.filters
    assert graph.index("xfade") < graph.index("lut3d")
    luts = [file for file in render.prepared_files if str(file.path).endswith(".legalise.cube")]
    assert len(luts) == 1 and "LUT_3D_SIZE 65" in luts[0].text
    assert "fadewhite" not in graph and graph.count("fade=") >= 4

    job = _job([{"source": f"{name}.mp4"} for name in "abcd"], ["broadcast-prores-hq-1080p25"])
    job = job.model_copy(update={"sequence": job.sequence.model_copy(update={"shots_per_render": 2})})
    windowed = plan_job(job, JobFacts({shot.source: _media(shot.source, video) for shot in job.shots}), load_presets(),
                        PROJECT / "out")
    windows = [plan for plan in windowed.renders if plan.intermediates]
    assert len(windows) >= 2
    for window in windows:
        assert sum(str(file.path).endswith(".legalise.cube") for file in window.prepared_files) == 1
