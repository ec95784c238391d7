"""Editorial exports: the .otio re-read has the rendered cut exactly; EDL and FCP XML keep what they can.

One five-shot job covers a smooth 12-frame dissolve with an L-cut, an 8-frame wipe into a silent
30 fps shot, a hard cut with a J-cut, and an odd 9-frame dissolve with a hard sound cut. At 24 fps
(the first shot's rate) the shots lie on the timeline at:

    shot 0 red    source 6..42   timeline   0..36    dissolve 12 -> picture cut at 24 + 6 = 30
    shot 1 green  source 0..48   timeline  24..72    wipe 8      -> picture cut at 64 + 4 = 68
    shot 2 kling  source 0..24   timeline  64..88    cut         -> picture cut at 88
    shot 3 blue   source 6..40   timeline  88..122   dissolve 9  -> picture cut at 113 + 4 = 117
    shot 4 red    source 0..48   timeline 113..161

so the sequence is 36 + 48 + 24 + 34 + 48 - 12 - 8 - 9 = 161 frames. The sound cuts sit at the
picture cuts moved by the split edits: 30 + 4 = 34, 68, 88 - 3 = 85 and 117.
"""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from pipeline.jobs.analyses import probe_sources
from pipeline.model.job import parse_job
from pipeline.export.otio_export import adapt_for_format, build_otio_timeline, write_editorial_exports
from pipeline.timeline.sequence import build_timeline

RATE = 24
DISSOLVE = otio.schema.TransitionTypes.SMPTE_Dissolve
CUSTOM = otio.schema.TransitionTypes.Custom


def frames(start: int, count: int, rate: int = RATE) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(
        otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(count, rate)
    )


VIDEO_RANGES = [frames(6, 30), frames(6, 38), frames(5, 25, rate=30), frames(6, 29), frames(4, 44)]
"""Each shot between its picture cuts; the 30 fps shot's range is exact at its own rate (4/24 s = 5/30 s)."""
SOUND_RANGES = [frames(6, 34), frames(10, 34), None, frames(3, 32), frames(4, 44)]
"""Each shot between its sound cuts; None for the silent shot, a 17-frame gap (68..85)."""


@pytest.fixture(scope="module")
def sources(make_colour_clip, make_clip):
    return {
        "red": make_colour_clip("red", Fraction(2)),
        "green": make_colour_clip("green", Fraction(2)),
        "blue": make_colour_clip("blue", Fraction(2)),
        "kling": make_clip("kling-1920x1080-30", seconds=Fraction(1)),  # 30 fps, silent
    }


@pytest.fixture(scope="module")
def edit(sources, tmp_path_factory):
    job = parse_job({
        "version": 1,
        "name": "spot",
        "shots": [
            {"source": str(sources["red"]), "in": "6f", "out": "42f", "audio_offset_frames": 4,
             "transition": {"type": "dissolve", "frames": 12, "easing": "smooth"}},
            {"source": str(sources["green"]), "transition": {"type": "wipe_left", "frames": 8}},
            {"source": str(sources["kling"]), "audio_offset_frames": -3},
            {"source": str(sources["blue"]), "in": "6f", "out": "40f",
             "transition": {"type": "dissolve", "frames": 9, "audio": "cut"}},
            {"source": str(sources["red"])},
        ],
        "deliverables": [{"preset": "web-h264-1080p"}],
        "sequence": {"fill": "#202020"},
        "music": {"source": str(sources["red"]), "gain_db": -18},
    }, tmp_path_factory.mktemp("job"))
    return job, probe_sources(job)


@pytest.fixture(scope="module")
def exported(edit, tmp_path_factory):
    job, media = edit
    out_dir = tmp_path_factory.mktemp("editorial")
    return out_dir, write_editorial_exports(job, media, out_dir)


def items(track, kind):
    return [item for item in track if isinstance(item, kind)]


def url(sources, name):
    return sources[name].as_uri()


SHOT_NAMES = ["red", "green", "kling", "blue", "red"]


def test_writes_three_files_in_place(exported):
    out_dir, exports = exported
    assert [path.name for path in exports.written] == ["spot.otio", "spot.edl", "spot.xml"]
    assert exports.skipped == ()
    assert sorted(path.name for path in out_dir.iterdir()) == ["spot.edl", "spot.otio", "spot.xml"]


def test_otio_has_the_rendered_cut_exactly(exported, edit, sources):
    job, media = edit
    timeline = otio.adapters.read_from_file(str(exported[1].written[0]))
    video, audio = timeline.tracks
    assert (video.kind, audio.kind) == (otio.schema.TrackKind.Video, otio.schema.TrackKind.Audio)

    clips = items(video, otio.schema.Clip)
    assert [clip.media_reference.target_url for clip in clips] == [url(sources, name) for name in SHOT_NAMES]
    for clip, expected in zip(clips, VIDEO_RANGES, strict=True):
        assert clip.source_range.start_time.strictly_equal(expected.start_time), clip.name
        assert clip.source_range.duration.strictly_equal(expected.duration), clip.name
    assert clips[2].media_reference.available_range.duration.strictly_equal(frames(0, 30, rate=30).duration)
    assert clips[0].media_reference.available_range.duration.strictly_equal(frames(0, 48).duration)

    transitions = items(video, otio.schema.Transition)
    assert [(t.name, t.transition_type, t.in_offset.value, t.out_offset.value) for t in transitions] == [
        ("dissolve", DISSOLVE, 6, 6), ("wipe_left", CUSTOM, 4, 4), ("dissolve", DISSOLVE, 4, 5)
    ]
    assert transitions[0].metadata["postprod"]["easing"] == "smooth"
    assert transitions[1].metadata["postprod"]["xfade"] == "wipeleft"

    layout = build_timeline(job.shots, [media[shot.source] for shot in job.shots], Fraction(RATE), 48000)
    assert layout.frame_count == 161
    for track in (video, audio):
        assert track.duration().rescaled_to(RATE).value == pytest.approx(layout.frame_count, abs=1e-9)
    # Each transition sits exactly on the overlap the renderer cross-fades (joins 0, 1 and 3).
    for transition, join_number in zip(transitions, (0, 1, 3), strict=True):
        start = layout.spans[join_number + 1].timeline_start_frame
        assert video.range_of_child(transition) == frames(start, layout.joins[join_number].overlap_frames)


def test_otio_sound_track_carries_split_edits_and_crossfades(exported, sources):
    timeline = otio.adapters.read_from_file(str(exported[1].written[0]))
    audio = timeline.tracks[1]
    shots = [item for item in audio if not isinstance(item, otio.schema.Transition)]
    assert isinstance(shots[2], otio.schema.Gap) and shots[2].metadata["postprod"]["silent_source"]
    assert shots[2].duration().value == 85 - 68
    for item, expected, name in zip(shots, SOUND_RANGES, SHOT_NAMES, strict=True):
        if expected is not None:
            assert item.media_reference.target_url == url(sources, name)
            assert item.source_range.start_time.strictly_equal(expected.start_time), name
            assert item.source_range.duration.strictly_equal(expected.duration), name
    # Crossfades under the dissolve and the wipe; the 9-frame dissolve cuts its sound at the middle.
    crossfades = items(audio, otio.schema.Transition)
    assert [(t.transition_type, t.in_offset.value, t.out_offset.value) for t in crossfades] == [
        (DISSOLVE, 6, 6), (DISSOLVE, 4, 4)
    ]
    assert audio.range_of_child(crossfades[0]) == frames(34 - 6, 12)  # the L-cut moves it 4 frames on

    settings = timeline.metadata["postprod"]
    assert (settings["job"], settings["sequence_rate"], settings["frame_count"]) == ("spot", "24", 161)
    assert settings["fill"] == "#202020"
    assert settings["music"]["source"] == url(sources, "red") and settings["music"]["gain_db"] == -18
    clips = items(timeline.tracks[0], otio.schema.Clip)
    assert [clip.metadata["postprod"]["audio_offset_frames"] for clip in clips] == [4, 0, -3, 0, 0]


def test_edl_keeps_video_cuts_dissolves_and_sources(exported, sources):
    text = exported[1].written[1].read_text()
    timeline = otio.adapters.read_from_file(str(exported[1].written[1]), rate=RATE)
    assert len(timeline.tracks) == 1 and timeline.tracks[0].kind == otio.schema.TrackKind.Video
    track = timeline.tracks[0]
    # An EDL dissolve starts at the cut: the outgoing event ends where the dissolve begins and the
    # incoming one starts there, so the ranges shift by the dissolve's in_offset; the wipe is a cut.
    expected = [
        frames(6, 30 - 6), frames(6 - 6, 38 + 6), frames(4, 20), frames(6, 29 - 4), frames(4 - 4, 44 + 4)
    ]
    clips = items(track, otio.schema.Clip)
    assert [clip.name for clip in clips] == [sources[name].name for name in SHOT_NAMES]
    assert [clip.source_range for clip in clips] == expected  # == compares times: 4/24 s is 5/30 s
    dissolves = items(track, otio.schema.Transition)
    assert [(t.in_offset.value, t.out_offset.value) for t in dissolves] == [(0, 12), (0, 9)]
    assert track.duration() == otio.opentime.RationalTime(161, RATE)
    # Each source file is named in the event's comments; OTIO's reader gives a dissolve's incoming
    # clip the outgoing clip's FROM CLIP, so the TO CLIP lines are checked in the text.
    for index in (0, 2, 3):
        assert clips[index].media_reference.target_url == url(sources, SHOT_NAMES[index])
    assert f"* TO CLIP: {url(sources, 'green')}" in text and f"* TO CLIP: {url(sources, 'red')}" in text
    assert "* POSTPROD TRANSITION: wipe_left 8 FRAMES CENTRED" in text


def test_fcp_xml_keeps_both_tracks_dissolves_and_source_rates(exported, sources):
    timeline = otio.adapters.read_from_file(str(exported[1].written[2]))
    video, audio = timeline.tracks
    clips = items(video, otio.schema.Clip)
    assert [clip.media_reference.target_url for clip in clips] == [url(sources, name) for name in SHOT_NAMES]
    for clip, expected in zip(clips, VIDEO_RANGES, strict=True):
        assert clip.source_range.start_time.strictly_equal(expected.start_time), clip.name
        assert clip.source_range.duration.strictly_equal(expected.duration), clip.name
    dissolves = items(video, otio.schema.Transition)
    assert [(t.transition_type, t.in_offset.value, t.out_offset.value) for t in dissolves] == [
        (DISSOLVE, 6, 6), (DISSOLVE, 4, 5)
    ]
    sound = [item for item in audio if not isinstance(item, otio.schema.Transition)]
    for item, expected in zip(sound, SOUND_RANGES, strict=True):
        if expected is None:
            assert isinstance(item, otio.schema.Gap) and item.duration().value == 17
        else:
            assert item.source_range == expected
    # The crossfade under the wipe runs into the silent shot's gap: written as a cut.
    crossfades = items(audio, otio.schema.Transition)
    assert [(t.name, t.in_offset.value, t.out_offset.value) for t in crossfades] == [
        ("Cross Fade (+3dB)", 6, 6)
    ]
    for track in (video, audio):
        assert track.duration().rescaled_to(RATE).value == pytest.approx(161, abs=1e-9)


def test_what_each_format_drops_is_named_and_logged(edit, sources, tmp_path, caplog):
    job, media = edit
    timeline = build_otio_timeline(job, media)
    both = [
        "the 12-frame dissolve between shots 0 and 1 is written as a linear dissolve (its smooth easing is lost)",
        "the 8-frame wipe_left between shots 1 and 2 is written as a cut at its midpoint",
        f"the music bed ({url(sources, 'red')}) is not written",
        "the #202020 fill around shots of another shape is not written",
    ]
    assert adapt_for_format(timeline, "cmx_3600").dropped == (
        *both,
        "the audio track is not written (the EDL lists the video track's events), so the split edits "
        "after shots [0, 2] are lost",
        "source timecode of the 30 fps sources is counted at the sequence's 24 fps",
    )
    assert adapt_for_format(timeline, "fcp_xml").dropped == (
        *both,
        "the sound crossfade between shots 1 and 2 (one of them silent) is written as a cut at its midpoint",
    )
    assert len(timeline.tracks) == 2 and len(items(timeline.tracks[0], otio.schema.Transition)) == 3

    with caplog.at_level(logging.WARNING, logger="pipeline.export.otio_export"):
        write_editorial_exports(job, media, tmp_path)
    assert "spot.edl: the 8-frame wipe_left between shots 1 and 2 is written as a cut" in caplog.text
    assert "spot.xml: the sound crossfade between shots 1 and 2" in caplog.text


def test_a_range_not_exact_at_the_source_rate_is_given_at_the_sequence_rate(sources, tmp_path):
    job = parse_job({
        "version": 1,
        "name": "inexact",
        "shots": [{"source": str(sources["red"])}, {"source": str(sources["kling"]), "in": "1f"}],
        "deliverables": [{"preset": "web-h264-1080p"}],
    }, tmp_path)
    kling = build_otio_timeline(job, probe_sources(job)).tracks[0][1]
    # 1/30 s lands on 24 fps frame 1 (1/24 s), which is 1.25 frames at 30 fps.
    assert kling.source_range.start_time.strictly_equal(otio.opentime.RationalTime(1, RATE))
    assert kling.source_range.duration.strictly_equal(otio.opentime.RationalTime(23, RATE))


def test_exports_can_reference_conformed_media_with_handles(edit, tmp_path):
    """With ``editorial.conformed_media`` each shot is rendered in the sequence format, handles
    included, and every clip and transition of the .otio lies inside its conformed file."""
    from pipeline.jobs.finish import finish
    from pipeline.media.output_decode import counting_decodes
    from pipeline.media.probe import decoded_audio_samples, probe

    job, _ = edit
    small = job.model_copy(update={
        "deliverables": [job.deliverables[0].model_copy(update={"overrides": {"video": {"width": 320, "height": 180}}})],
        "editorial": job.editorial.model_copy(update={"conformed_media": True}),
    })
    with counting_decodes() as decodes:
        manifest = json.loads(finish(small, tmp_path).read_text())

    timeline = otio.adapters.read_from_file(str(tmp_path / "spot.otio"))
    video, audio = timeline.tracks
    media_files = sorted((tmp_path / "spot_media").iterdir())
    assert [path.name for path in media_files] == [
        f"{number:02d}_{source.stem}.mov"
        for number, source in enumerate((shot.source for shot in job.shots), start=1)
    ]
    for path in media_files:
        info = probe(path)
        assert (info.video.codec, info.video.profile, info.video.display_width, info.video.display_height,
                info.video.frame_rate) == ("prores", "LT", 320, 180, RATE)
        assert decoded_audio_samples(path) == info.video.frame_count * 48000 // RATE
        # Verified without decoding its picture (QC never reads it): frames counted by demuxing.
        assert _decodes_of(decodes, path.name) == (0, 1)
    assert _decodes_of(decodes, Path(manifest["outputs"][0]["path"]).name) == (1, 1), "the deliverable's, for QC"

    for track in (video, audio):
        for clip in items(track, otio.schema.Clip):
            assert clip.media_reference.target_url in [path.as_uri() for path in media_files]
            available = clip.media_reference.available_range
            frame_count = probe(Path(clip.media_reference.target_url.removeprefix("file://"))).video.frame_count
            assert available.duration.value == frame_count
            # The clip plus the handles its transitions play on stay inside the conformed file.
            before, after = track.neighbors_of(clip)
            head = before.in_offset.value if isinstance(before, otio.schema.Transition) else 0
            tail = after.out_offset.value if isinstance(after, otio.schema.Transition) else 0
            assert clip.source_range.start_time.value - head >= 0, clip.name
            assert clip.source_range.end_time_exclusive().value + tail <= frame_count, clip.name


def _decodes_of(decodes, name: str) -> tuple[int, int]:
    """Picture and sound decode passes of the partial file ``name`` was verified as."""
    partial = next(file for file, _ in decodes if file.startswith(f".{name}.") and file.endswith(".partial"))
    return decodes[partial, "picture"], decodes[partial, "sound"]
