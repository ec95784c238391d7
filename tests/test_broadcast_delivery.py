"""Broadcast delivery: timecode tracks, MXF OP1a (XDCAM HD422, DNxHR HQX) and audio track layouts.

Every property is read back from the rendered file with PyAV (wrapper, codec, profile, field order,
GOP, bit rate, timecode, tracks) or measured in its sound, never taken from the plan.
"""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.plan.audio_tracks import programme_tracks, track_contents
from pipeline.plan.caption_files import caption_file_problems, plan_caption_files, read_back, read_ebu_tt_d
from pipeline.plan.caption_timing import TimedCaption
from pipeline.model.captions import read_captions
from pipeline.plan.cutdown import cutdown_overlays
from pipeline.errors import JobError
from pipeline.jobs.finish import finish, preflight
from pipeline.model.job import parse_job
from pipeline.analysis.loudness import channel_weights, measure
from pipeline.media.runner import run_ffmpeg
from pipeline.model.presets import AudioSpec, TimecodeSpec, get_preset, load_presets
from pipeline.plan.facts import JobFacts
from pipeline.plan.outputs import resolve_preset
from pipeline.plan.planner import plan_job
from pipeline.media.probe import probe
from pipeline.qc.checks import run_qc
from pipeline.model.timebase import parse_time
from pipeline.timeline.timecode_track import file_start_timecode, programme_start_frame, timecode_at
from pipeline.render.verify import verify_output

NTSC = Fraction(30000, 1001)
LEFT_OVER_RIGHT_DB = 6.0
"""The source's left channel is this much louder than its right, so a swap or a copy shows."""


def test_programme_start_frame_counts_drop_and_non_drop_frame():
    assert programme_start_frame(TimecodeSpec(start="10:00:00:00"), Fraction(25)) == 900_000
    assert programme_start_frame(TimecodeSpec(start="10:00:00:00"), NTSC) == 1_080_000
    # Ten hours of drop-frame skip two labels in each of 540 minutes (not the tenth ones).
    assert programme_start_frame(TimecodeSpec(start="10:00:00:00", drop_frame=True), NTSC) == 1_080_000 - 1080


@pytest.mark.parametrize(("spec", "rate", "leader", "expected"), [
    (TimecodeSpec(start="10:00:00:00"), Fraction(25), 0, "10:00:00:00"),
    (TimecodeSpec(start="10:00:00:00"), Fraction(25), 250, "09:59:50:00"),
    (TimecodeSpec(start="10:00:00:00"), NTSC, 300, "09:59:50:00"),
    (TimecodeSpec(start="10:00:00:00", drop_frame=True), NTSC, 300, "09:59:50;00"),
    # Back across a minute that drops labels 00 and 01: 09:59:00;02 minus one frame is 09:58:59;29.
    (TimecodeSpec(start="09:59:00:02", drop_frame=True), NTSC, 1, "09:58:59;29"),
    (TimecodeSpec(start="01:00:00:00", drop_frame=True), Fraction(60000, 1001), 0, "01:00:00;00"),
])
def test_file_start_timecode(spec, rate, leader, expected):
    assert file_start_timecode(spec, rate, leader) == expected


@pytest.mark.parametrize(("spec", "rate", "problem"), [
    (TimecodeSpec(start="10:00:00:00", drop_frame=True), Fraction(25), "drop-frame timecode needs 29.97 or 59.94"),
    (TimecodeSpec(start="10:00:00:25"), Fraction(25), "frame field 25 is not below 25"),
])
def test_impossible_timecodes_are_refused(spec, rate, problem):
    with pytest.raises(ValueError, match=problem):
        file_start_timecode(spec, rate)


L, R, C, LFE, LS, RS = "FL", "FR", "FC", "LFE", "BL", "BR"
SILENT = (None,)


@pytest.mark.parametrize(("layout", "tracks", "second_pair", "contents", "programme"), [
    ("stereo", "stereo", "silent", ((L, R),), (0,)),
    ("stereo", "stereo+stereo", "copy", ((L, R), (L, R)), (0,)),
    ("stereo", "stereo+stereo", "silent", ((L, R), (None, None)), (0,)),
    ("stereo", "8-mono", "copy", ((L,), (R,), (L,), (R,)) + (SILENT,) * 4, (0, 1)),
    ("stereo", "8-mono", "silent", ((L,), (R,)) + (SILENT,) * 6, (0, 1)),
    ("5.1", "5.1", "silent", ((L, R, C, LFE, LS, RS),), (0,)),
    ("5.1", "8-mono", "copy", ((L,), (R,), (C,), (LFE,), (LS,), (RS,), SILENT, SILENT), (0, 1, 2, 3, 4, 5)),
])
def test_track_layouts(layout, tracks, second_pair, contents, programme):
    spec = AudioSpec(encoder="pcm_s24le", codec="pcm_s24le", layout=layout, tracks=tracks, second_pair=second_pair)
    assert track_contents(spec) == contents
    assert programme_tracks(spec) == programme
    assert spec.channels == len(contents[0])


@pytest.mark.parametrize(("audio", "problem"), [
    ({"layout": "stereo", "tracks": "5.1"}, "tracks: 5.1 needs layout 5.1 or source"),
    ({"layout": "5.1", "tracks": "stereo+stereo"}, "tracks: layout 5.1 lays the programme out as 5.1 or 8-mono, not stereo\\+stereo"),
    ({"layout": "source", "tracks": "stereo+stereo"}, "tracks: layout source lays the programme out as 5.1 or 8-mono"),
])
def test_impossible_track_layouts_are_refused(audio, problem):
    with pytest.raises(ValueError, match=problem):
        AudioSpec(encoder="pcm_s24le", codec="pcm_s24le", **audio)


@pytest.fixture(scope="module")
def stereo_source(tmp_path_factory) -> Path:
    """One second of 25 fps picture; left a 1 kHz tone, right 440 Hz six dB quieter."""
    path = tmp_path_factory.mktemp("source") / "source.mov"
    right = 0.1 * 10 ** (-LEFT_OVER_RIGHT_DB / 20)
    run_ffmpeg([
        "-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=1",
        "-f", "lavfi", "-i", f"aevalsrc=0.1*sin(2*PI*1000*t)|{right:.6f}*sin(2*PI*440*t):s=48000:d=1",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", str(path),
    ])  # fmt: skip
    return path


def _job(source: Path, deliverables: list[dict], folder: Path):
    return parse_job({"version": 1, "name": "spot", "shots": [{"source": str(source)}],
                      "deliverables": deliverables}, folder)


def _tracks(path: Path) -> list[np.ndarray]:
    """Every audio stream (24-bit PCM, decoded as packed s32) as float (channels, samples)."""
    with av.open(str(path)) as container:
        decoded = {stream.index: [] for stream in container.streams.audio}
        for packet in container.demux(*container.streams.audio):
            for frame in packet.decode():
                assert frame.format.name == "s32"
                interleaved = frame.to_ndarray().reshape(-1, packet.stream.channels)
                decoded[packet.stream.index].append(interleaved.T.astype(np.float64) / 2**31)
    return [np.concatenate(chunks, axis=1) for chunks in decoded.values()]


def _rms_db(samples: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(samples)))


@pytest.fixture(scope="module")
def mxf_delivery(stereo_source, tmp_path_factory):
    """The XDCAM HD422 1080i25 and DNxHR HQX deliverables of one job, and the job."""
    folder = tmp_path_factory.mktemp("mxf")
    job = _job(stereo_source, [{"preset": "xdcam-hd422-1080i25-mxf"}, {"preset": "dnxhr-hqx-1080p25-mxf"}], folder)
    manifest = json.loads(finish(job, folder / "out").read_text())
    return job, folder, {output["preset"]: Path(output["path"]) for output in manifest["outputs"]}


def test_xdcam_hd422_1080i25_probes_as_the_spec_asks(mxf_delivery):
    path = mxf_delivery[2]["xdcam-hd422-1080i25-mxf"]
    info = probe(path)
    video = info.video
    assert (path.suffix, info.container) == (".mxf", "mxf")
    assert (video.codec, video.profile, video.pix_fmt) == ("mpeg2video", "4:2:2", "yuv422p")
    assert (video.display_width, video.display_height, video.frame_rate, video.frame_count) == (1920, 1080, 25, 25)
    assert video.field_order == "tt"
    assert info.timecode == "10:00:00:00"
    with av.open(str(path)) as container:
        assert container.metadata["operational_pattern_ul"].startswith("060e2b34.04010101.0d010201.0101")  # OP1a
        stream = container.streams.video[0]
        packets = [packet for packet in container.demux(stream) if packet.size]
        keyframes = sorted(int(packet.pts * stream.time_base * 25) for packet in packets if packet.is_keyframe)
        bits = 8 * sum(packet.size for packet in packets)
        container.seek(0)
        frames = list(container.decode(video=0))
    assert all(frame.interlaced_frame for frame in frames)
    assert keyframes == [0, 12, 24]
    assert "".join(" IPB"[int(frame.pict_type)] for frame in frames[:12]) == "IBBPBBPBBPBB"  # N=12, M=3
    assert bits == pytest.approx(50e6, rel=0.05)  # the one-second clip holds 50 Mbit: 50 Mb/s


def test_xdcam_carries_eight_mono_tracks_programme_copied_to_3_4_and_5_8_silent(mxf_delivery):
    path = mxf_delivery[2]["xdcam-hd422-1080i25-mxf"]
    info = probe(path)
    assert [(t.codec, t.sample_rate, t.channels) for t in info.audio_tracks] == [("pcm_s24le", 48000, 1)] * 8
    tracks = _tracks(path)
    assert all(track.shape == (1, 48000) for track in tracks)
    left, right = tracks[0][0], tracks[1][0]
    assert _rms_db(left) - _rms_db(right) == pytest.approx(LEFT_OVER_RIGHT_DB, abs=0.1)
    assert np.array_equal(tracks[2], tracks[0]) and np.array_equal(tracks[3], tracks[1])
    assert all(not track.any() for track in tracks[4:])
    programme = measure(np.stack([left, right]), 48000)
    assert programme.integrated_lufs == pytest.approx(-23.0, abs=0.5)


def test_dnxhr_hqx_mxf_is_10_bit_with_a_silent_second_pair(mxf_delivery):
    path = mxf_delivery[2]["dnxhr-hqx-1080p25-mxf"]
    info = probe(path)
    video = info.video
    assert info.container == "mxf" and info.timecode == "10:00:00:00"
    assert (video.codec, video.profile, video.pix_fmt, video.bit_depth) == ("dnxhd", "DNXHR HQX", "yuv422p10le", 10)
    assert video.field_order in ("progressive", None)
    assert [(t.codec, t.channels) for t in info.audio_tracks] == [("pcm_s24le", 2)] * 2
    programme, second = _tracks(path)
    assert _rms_db(programme[0]) - _rms_db(programme[1]) == pytest.approx(LEFT_OVER_RIGHT_DB, abs=0.1)
    assert not second.any()


def test_verification_catches_a_wrong_timecode_field_order_or_track(mxf_delivery):
    job, folder, paths = mxf_delivery
    expected = preflight(job, folder / "out").outputs[0].expected
    path = paths["xdcam-hd422-1080i25-mxf"]
    assert verify_output(path, expected).mismatches == ()
    wrong = [
        replace(expected, timecode="10:00:00:01"),
        replace(expected, field_order="progressive"),
        replace(expected, audio_tracks=((L,), (R,), SILENT, (R,)) + (SILENT,) * 4),
    ]
    problems = [list(verify_output(path, each).mismatches) for each in wrong]
    assert problems == [
        ["start timecode: expected 10:00:00:01, got 10:00:00:00"],
        ["field order: expected progressive, got tt"],
        [problems[2][0]],
    ]
    assert problems[2][0].startswith("audio track 3: expected silence, got sound")


def test_drop_frame_timecode_and_a_job_override(stereo_source, tmp_path):
    small = {"video": {"width": 320, "height": 180}}
    job = _job(stereo_source, [
        {"preset": "broadcast-prores-hq-1080p2997", "overrides": small},
        {"preset": "web-h264-1080p", "overrides": {**small, "timecode": {"start": "01:00:00:00"}}},
    ], tmp_path)
    manifest = json.loads(finish(job, tmp_path / "out").read_text())
    prores, web = (probe(output["path"]) for output in manifest["outputs"])
    assert (prores.video.frame_rate, prores.timecode) == (NTSC, "10:00:00;00")
    with av.open(str(prores.path)) as container:
        tmcd = [stream for stream in container.streams.data if stream.metadata.get("handler_name") == "TimeCodeHandler"]
        assert [stream.metadata["timecode"] for stream in tmcd] == ["10:00:00;00"]
    assert web.timecode == "01:00:00:00"


def test_drop_frame_at_25_fps_is_a_job_error_naming_the_deliverable(stereo_source, tmp_path):
    job = _job(stereo_source, [{"preset": "broadcast-prores-hq-1080p25",
                                "overrides": {"timecode": {"drop_frame": True}}}], tmp_path)
    with pytest.raises(JobError, match=r"deliverables\.0\.timecode .*drop-frame timecode needs 29.97 or 59.94"):
        preflight(job, tmp_path / "out")


SLATE = {"clock_number": "ABC/DEFG123/030", "title": "Winter {\\an8} sale: 50%, [in];b=1",
         "agency": "O'Brien & Co", "advertiser": "Acme", "date": "2026-12-05"}


def _frame_kinds(path: Path) -> list[str]:
    """Each frame told apart by measurement: ``bars`` (vertical stripes, bright and saturated),
    ``black``, ``slate`` (a dark even field with white text), else ``programme``."""
    kinds = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.reformat(width=160, height=90, format="rgb24").to_ndarray().astype(np.int16)
            luma = rgb.mean(axis=2)
            if luma.max() < 12:
                kinds.append("black")
            elif 20 < np.median(luma) < 45 and np.median(rgb[..., 2] - rgb[..., 0]) > 10 and (luma > 150).mean() > 0.001:
                kinds.append("slate")
            elif np.abs(rgb[5] - rgb[-5]).max() < 8 and luma[45].std() > 40:  # every row alike, stripes
                kinds.append("bars")
            else:
                kinds.append("programme")
    return kinds


@pytest.fixture(scope="module")
def leader_delivery(stereo_source, tmp_path_factory):
    """A 25p ProRes deliverable with a leader (2 s of bars, then the default clock and black), and the
    same without one."""
    folder = tmp_path_factory.mktemp("leader")
    small = {"video": {"width": 320, "height": 180}}
    job = parse_job({"version": 1, "name": "spot", "shots": [{"source": str(stereo_source)}], "slate": SLATE,
                     "deliverables": [
                         {"preset": "broadcast-prores-hq-1080p25", "name": "lead", "overrides": {**small, "leader": {"bars_seconds": 2}}},
                         {"preset": "broadcast-prores-hq-1080p25", "name": "bare", "overrides": small}]}, folder)
    manifest = json.loads(finish(job, folder / "out").read_text())
    return {output["deliverable"]: output for output in manifest["outputs"]}


def test_leader_puts_the_clock_at_09_59_50_and_the_programme_at_10_00_00(leader_delivery):
    path = Path(leader_delivery["lead"]["path"])
    info = probe(path)
    assert info.timecode == "09:59:48:00"
    kinds = _frame_kinds(path)
    changes = [(number, kind) for number, kind in enumerate(kinds) if number == 0 or kind != kinds[number - 1]]
    start = programme_start_frame(TimecodeSpec(start="09:59:48:00"), Fraction(25))
    located = [(timecode_at(start + number, Fraction(25), False), kind) for number, kind in changes]
    assert located == [("09:59:48:00", "bars"), ("09:59:50:00", "slate"), ("09:59:57:00", "black"),
                       ("10:00:00:00", "programme")]
    assert len(kinds) == 12 * 25 + 25
    # The first programme frame is the programme's own first frame.
    with av.open(str(path)) as lead, av.open(leader_delivery["bare"]["path"]) as bare:
        programme = next(frame for number, frame in enumerate(lead.decode(video=0)) if number == 300)
        first = next(bare.decode(video=0))
        difference = programme.to_ndarray(format="rgb24").astype(float) - first.to_ndarray(format="rgb24")
    assert np.abs(difference).max() == 0


def test_leader_tone_is_1khz_at_minus_18_dbfs_then_silence_and_qc_measures_the_programme_only(leader_delivery):
    path = Path(leader_delivery["lead"]["path"])
    sound = _tracks(path)[0]
    tone, quiet, programme = sound[:, :2 * 48000], sound[:, 2 * 48000:12 * 48000], sound[:, 12 * 48000:]
    assert 20 * np.log10(np.abs(tone).max()) == pytest.approx(-18.0, abs=0.05)
    spectrum = np.abs(np.fft.rfft(tone[0, :48000]))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins over one second
    assert not quiet.any()
    assert programme.shape[1] == 48000
    assert measure(programme, 48000).integrated_lufs == pytest.approx(-23.0, abs=0.5)
    qc = json.loads(Path(leader_delivery["lead"]["qc"]["report"]).read_text())
    checks = {check["name"]: check for check in qc["checks"]}
    bare = {check["name"]: check for check in json.loads(Path(leader_delivery["bare"]["qc"]["report"]).read_text())["checks"]}
    assert checks["loudness"]["value"] == bare["loudness"]["value"]
    assert [checks[name]["status"] for name in ("conformance", "black", "freeze", "silence", "loudness")] == ["pass"] * 5


def test_leader_needs_the_sequence_in_one_render(stereo_source, tmp_path):
    job = parse_job({"version": 1, "name": "spot", "shots": [{"source": str(stereo_source)}] * 3,
                     "sequence": {"shots_per_render": 2},
                     "deliverables": [{"preset": "broadcast-prores-hq-1080p25", "overrides": {"leader": {}}}]}, tmp_path)
    with pytest.raises(JobError, match=r"deliverables\.0\.leader .*raise sequence\.shots_per_render to at least 3"):
        preflight(job, tmp_path / "out")


CAPTION_TEXT = ("Fish & chips {\\an8} <now>\nsecond line", "Two")


@pytest.mark.parametrize("rate", [Fraction(25), NTSC])
def test_caption_files_read_back_cue_by_cue(rate, tmp_path):
    captions = (TimedCaption(12, 24, CAPTION_TEXT[0], "a"), TimedCaption(30, 1800, CAPTION_TEXT[1], "b"))
    files = plan_caption_files(captions, rate, ["srt", "vtt", "ttml"], "en-GB", tmp_path / "spot.mov")
    assert [file.path.name for file in files] == ["spot.srt", "spot.vtt", "spot.ttml"]
    for file in files:
        file.path.write_text(file.text, encoding="utf-8")
        assert caption_file_problems(file, file.path, captions, rate) == []
        cues = read_back(file, file.path)
        assert [text for _, _, text in cues] == list(CAPTION_TEXT)
    assert "&amp; chips {\\an8} &lt;now&gt;" in files[1].text
    assert 'xml:lang="en-GB"' in files[2].text and "urn:ebu:tt:distribution:2018-04" in files[2].text
    wrong = (captions[0], TimedCaption(31, 1800, CAPTION_TEXT[1], "b"))
    assert caption_file_problems(files[0], files[0].path, wrong, rate) == ["srt cue 2: frames (30, 1800), planned (31, 1800)"]


@pytest.fixture(scope="module")
def source_24p(tmp_path_factory) -> Path:
    """Two seconds of 24 fps picture with a tone."""
    path = tmp_path_factory.mktemp("source24") / "source24.mov"
    run_ffmpeg([
        "-f", "lavfi", "-i", "testsrc2=s=320x180:r=24:d=2", "-f", "lavfi", "-i", "sine=f=1000:r=48000:d=2",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", "-ac", "2", str(path),
    ])  # fmt: skip
    return path


def test_caption_files_follow_speed_changes_and_the_leader(source_24p, tmp_path):
    small = {"video": {"width": 320, "height": 180}}
    job = parse_job({
        "version": 1, "name": "spot", "shots": [{"source": str(source_24p)}],
        "overlays": [{"kind": "captions", "cues": [{"start": 0.5, "end": 1.0, "text": CAPTION_TEXT[0]},
                                                   {"start": 1.25, "end": 1.75, "text": CAPTION_TEXT[1]}]}],
        "deliverables": [
            {"preset": "broadcast-prores-hq-1080p25", "overrides": {
                **small, "video": {**small["video"], "rate_conversion": "speed"},
                "leader": {"bars_seconds": 1, "slate_seconds": 1, "black_seconds": 1}}},
            {"preset": "web-h264-1080p", "overrides": small},
        ]}, tmp_path)
    manifest = json.loads(finish(job, tmp_path / "out").read_text())
    broadcast, web = manifest["outputs"]
    assert [entry["format"] for entry in broadcast["caption_files"]] == ["srt", "vtt", "ttml"]
    assert [entry["format"] for entry in web["caption_files"]] == ["srt", "vtt"]
    # 25/24 faster: 0.5 s of the sequence plays at 0.48 s, frame 12 at 25 fps; 75 leader frames before.
    expected = {Fraction(25): [(75 + 12, 75 + 24), (75 + 30, 75 + 42)], Fraction(24): [(12, 24), (30, 42)]}
    for output, rate in ((broadcast, Fraction(25)), (web, Fraction(24))):
        assert probe(output["path"]).video.frame_rate == rate
        for entry in output["caption_files"]:
            path = Path(entry["path"])
            assert path.parent == Path(output["path"]).parent and path.stem == Path(output["path"]).stem
            text = path.read_text(encoding="utf-8")
            cues = read_ebu_tt_d(text, entry["path"]) if entry["format"] == "ttml" else [
                (cue.start_s, cue.end_s, cue.text) for cue in read_captions(path)]
            assert [(round(start * rate), round(end * rate)) for start, end, _ in cues] == expected[rate]
            assert [cue_text for _, _, cue_text in cues] == list(CAPTION_TEXT)


def test_cutdown_cues_follow_the_kept_pieces():
    job = parse_job({"version": 1, "name": "spot", "shots": [{"source": "/nonexistent/a.mp4"}],
                     "deliverables": [{"preset": "web-h264-1080p"}],
                     "overlays": [{"kind": "captions", "start": 1, "cues": [
                         {"start": 0, "end": 2, "text": "one"}, {"start": 3, "end": 5, "text": "two"},
                         {"start": 8, "end": 9, "text": "gone"}]}]}, Path("/"))
    # Kept: sequence 2-4 s, then 5.5-7 s; the cut-down is 3.5 s.
    kept, notes = cutdown_overlays(job, Fraction(7, 2), Fraction(10), Fraction(25),
                                   [(Fraction(2), Fraction(2)), (Fraction(11, 2), Fraction(3, 2))])
    assert notes == []
    cues = [(parse_time(cue.start, 1), parse_time(cue.end, 1), cue.text) for cue in kept[0].cues]
    # "one" (1-3 s) keeps 2-3 s, played at 0-1 s; "two" (4-6 s) touches the first piece only at its
    # end and keeps 5.5-6 s of the second, played at 2-2.5 s; "gone" (9-10 s) falls in no piece.
    assert cues == [(0, 1, "one"), (2, Fraction(5, 2), "two")]
    assert (kept[0].start, parse_time(kept[0].end, 1)) == (0, Fraction(7, 2))


def test_cutdown_caption_files_caption_what_the_cutdown_shows(stereo_source, tmp_path):
    """Shot A (a test pattern) captioned "A", shot B (solid red) captioned "B": in the cut-down's
    caption file, every frame under a cue shows the shot its text names."""
    red = tmp_path / "red.mov"
    run_ffmpeg(["-f", "lavfi", "-i", "color=c=red:s=320x180:r=25:d=1", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=1",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", "-ac", "2",
                str(red)])  # fmt: skip
    job = parse_job({
        "version": 1, "name": "spot", "shots": [{"source": str(stereo_source)}, {"source": str(red)}],
        "overlays": [{"kind": "captions", "deliverables": [], "cues": [{"start": 0, "end": 1, "text": "A"},
                                                                       {"start": 1, "end": 2, "text": "B"}]}],
        "deliverables": [{"preset": "web-h264-1080p", "name": "web", "cutdowns": [1.2],
                          "overrides": {"video": {"width": 320, "height": 180}}}]}, tmp_path)
    manifest = json.loads(finish(job, tmp_path / "out").read_text())
    cut = next(output for output in manifest["outputs"] if output["deliverable"] == "web-1.2s")
    srt = next(Path(entry["path"]) for entry in cut["caption_files"] if entry["format"] == "srt")
    cues = read_captions(srt)
    assert cues and sum(cue.end_s - cue.start_s for cue in cues) == pytest.approx(1.2, abs=0.04)
    with av.open(cut["path"]) as container:
        frames = [frame.to_ndarray(format="rgb24").mean(axis=(0, 1)) for frame in container.decode(video=0)]
    for cue in cues:
        shown = frames[round(cue.start_s * 25):round(cue.end_s * 25)]
        reds = [r > 180 and g < 60 and b < 60 for r, g, b in shown]
        assert shown and all(reds) == (cue.text == "B") and any(reds) == (cue.text == "B"), cue


DEVCLIP = Path("../shared/devclips/ai_infinitetalk_dubbing_a.mp4")


@pytest.mark.slow
@pytest.mark.skipif(not DEVCLIP.exists(), reason="development clips not present (../shared/devclips)")
def test_real_clip_into_xdcam_1080i25_with_the_default_leader_and_captions(tmp_path):
    job = parse_job({
        "version": 1, "name": "spot", "shots": [{"source": str(DEVCLIP.resolve())}],
        "slate": SLATE,
        "overlays": [{"kind": "captions", "deliverables": [], "cues": [{"start": 0.5, "end": 3, "text": "Line"}]}],
        "deliverables": [{"preset": "xdcam-hd422-1080i25-mxf", "overrides": {"leader": {}}}]}, tmp_path)
    output = json.loads(finish(job, tmp_path / "out").read_text())["outputs"][0]
    info = probe(output["path"])
    assert (info.container, info.video.codec, info.video.field_order, info.timecode) == ("mxf", "mpeg2video", "tt", "09:59:30:00")
    assert len(info.audio_tracks) == 8 and output["qc"]["status"] != "fail"
    kinds = _frame_kinds(Path(output["path"]))
    start = programme_start_frame(TimecodeSpec(start="09:59:30:00"), Fraction(25))
    firsts = {kind: timecode_at(start + kinds.index(kind), Fraction(25), False) for kind in set(kinds)}
    assert firsts == {"bars": "09:59:30:00", "slate": "09:59:50:00", "black": "09:59:57:00", "programme": "10:00:00:00"}
    srt = next(Path(entry["path"]) for entry in output["caption_files"] if entry["format"] == "srt")
    assert [(round(cue.start_s * 25), round(cue.end_s * 25)) for cue in read_captions(srt)] == [(750 + 13, 750 + 75)]


def test_qc_of_a_file_on_its_own_skips_the_leader_its_preset_describes(leader_delivery):
    preset = get_preset("broadcast-prores-hq-1080p25").with_overrides(
        {"video": {"width": 320, "height": 180}, "leader": {"bars_seconds": 2}})
    report = run_qc(leader_delivery["lead"]["path"], preset)
    checks = {check.name: check for check in report.checks}
    assert report.frame_count == 25  # the programme's frames only
    assert [checks[name].status for name in ("conformance", "black", "freeze", "silence", "loudness")] == ["pass"] * 5
    assert checks["loudness"].value == pytest.approx(-23.0, abs=0.5)


SUBTITLE_TEXT = ("{\\an8}Fish & chips\\N <i>now</i>", "C:\\new {x} \\h 5 < 6 && 7 > 3",
                 "Zürich, 東京 — «ok»\nsecond line")


def test_soft_subtitle_track_carries_caption_text_literally(stereo_source, tmp_path):
    """Braces, backslashes (ASS tags, ``\\N``, ``\\n``), markup-like text, ampersands, non-ASCII and
    line breaks come back from the MP4's mov_text track exactly, on the planned frames."""
    job = parse_job({
        "version": 1, "name": "spot", "shots": [{"source": str(stereo_source)}],
        "overlays": [{"kind": "captions", "deliverables": [], "cues": [
            {"start": 0.08, "end": 0.4, "text": SUBTITLE_TEXT[0]}, {"start": 0.4, "end": 0.6, "text": SUBTITLE_TEXT[1]},
            {"start": 0.72, "end": 0.96, "text": SUBTITLE_TEXT[2]}]}],
        "deliverables": [{"preset": "web-h264-1080p", "overrides": {
            "video": {"width": 320, "height": 180}, "caption_files": {"track": True, "formats": ["vtt"]}}}]}, tmp_path)
    output = json.loads(finish(job, tmp_path / "out").read_text())["outputs"][0]
    with av.open(output["path"]) as container:
        (stream,) = container.streams.subtitles
        assert stream.codec_context.name == "mov_text"
        cues = []
        for packet in container.demux(stream):
            payload = bytes(packet)
            length = int.from_bytes(payload[:2], "big")
            if length:
                # Plain text only: no style boxes after it.
                assert len(payload) == 2 + length
                start = packet.pts * stream.time_base
                cues.append((round(start * 25), round((start + packet.duration * stream.time_base) * 25),
                             payload[2:].decode()))
    assert cues == [(2, 10, SUBTITLE_TEXT[0]), (10, 15, SUBTITLE_TEXT[1]), (18, 24, SUBTITLE_TEXT[2])]
    # SubRip cannot carry "<i>" literally (see test_caption_files_read_back_cue_by_cue): WebVTT only.
    assert [entry["format"] for entry in output["caption_files"]] == ["vtt"]

    plan = plan_job(job, JobFacts({stereo_source: probe(stereo_source)}), load_presets(), tmp_path / "out")
    expected = plan.outputs[0].expected
    wrong = replace(expected, subtitle_cues=(*expected.subtitle_cues[:2],
                                             replace(expected.subtitle_cues[2], text="Zurich")))
    assert verify_output(Path(output["path"]), wrong).mismatches == (
        f"subtitle track cue 3: text {SUBTITLE_TEXT[2]!r}, planned 'Zurich'",)


def test_soft_subtitle_track_is_mp4_only():
    with pytest.raises(JobError, match=r"deliverables.0.overrides: caption_files.track: a soft subtitle track is "
                                       r"written into MP4 only; this preset's container is mov"):
        resolve_preset(parse_job({"version": 1, "name": "spot", "shots": [{"source": "/nonexistent/a.mp4"}],
                                  "deliverables": [{"preset": "broadcast-prores-hq-1080p25",
                                                    "overrides": {"caption_files": {"track": True}}}]}, Path("/")),
                       0, load_presets())


FIVE_ONE = ("FL", "FR", "FC", "LFE", "BL", "BR")
FIVE_ONE_HZ = (300, 500, 700, 60, 1100, 1300)
"""A distinct sine per source channel, so the channel each one lands on shows."""
FIVE_ONE_AMPLITUDE = (0.1, 0.08, 0.12, 0.1, 0.05, 0.04)


def _five_one_source(path: Path, layout: str = "5.1") -> Path:
    exprs = "|".join(f"{amplitude}*sin(2*PI*{hz}*t)" for hz, amplitude in zip(FIVE_ONE_HZ, FIVE_ONE_AMPLITUDE))
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=1",
                "-f", "lavfi", "-i", f"aevalsrc={exprs}:s=48000:d=1:c={layout}",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", str(path)])
    return path


def _channels(path: Path) -> np.ndarray:
    """Every channel of every audio track, in order, as float (channels, samples)."""
    tracks = []
    with av.open(str(path)) as container:
        for stream in container.streams.audio:
            resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
            container.seek(0)
            tracks.append(np.concatenate([converted.to_ndarray() for frame in container.decode(stream)
                                          for converted in resampler.resample(frame)], axis=1))
    length = min(track.shape[1] for track in tracks)
    return np.concatenate([track[:, :length] for track in tracks])


def _dominant_hz(samples: np.ndarray) -> list[int]:
    """The strongest frequency of each channel (0.9 s at 48 kHz resolves 1.1 Hz)."""
    spectrum = np.abs(np.fft.rfft(samples, axis=1))
    return [round(hz) for hz in np.fft.rfftfreq(samples.shape[1], 1 / 48000)[spectrum.argmax(axis=1)]]


def test_five_one_passes_through_channel_for_channel(tmp_path):
    """L stays L and LFE stays LFE, in one AAC 5.1 track (MP4) and in eight mono PCM tracks (MOV,
    7-8 silent); the levels between channels are kept, and the programme meets its target measured
    with BS.1770's 5.1 weights (surrounds +1.5 dB, LFE left out)."""
    source = _five_one_source(tmp_path / "five_one.mov")
    small = {"width": 320, "height": 180}
    job = _job(source, [
        {"preset": "web-h264-1080p", "overrides": {"video": small, "audio": {"layout": "source", "tracks": "5.1"}}},
        {"preset": "broadcast-prores-hq-1080p25",
         "overrides": {"video": small, "audio": {"layout": "5.1", "tracks": "8-mono"}}},
    ], tmp_path)
    outputs = json.loads(finish(job, tmp_path / "out").read_text())["outputs"]
    assert [output["qc"]["status"] for output in outputs] == ["pass", "pass"]
    web, broadcast = (Path(output["path"]) for output in outputs)
    assert [(track.codec, track.layout) for track in probe(web).audio_tracks] == [("aac", "5.1")]
    assert [(track.channels, track.layout) for track in probe(broadcast).audio_tracks] == [(1, "1 channels")] * 8
    source_samples = _channels(source)
    source_db = 20 * np.log10(FIVE_ONE_AMPLITUDE)
    for path, target, tolerance in ((web, -14.0, 0.3), (broadcast, -23.0, 0.05)):
        samples = _channels(path)
        programme = samples[:6, 2400:45600]
        assert _dominant_hz(programme) == _dominant_hz(source_samples[:, 2400:45600]) == list(FIVE_ONE_HZ)
        levels = [_rms_db(channel) for channel in programme]
        gain = levels[0] - (source_db[0] - 3.01)
        # AAC band-limits the LFE channel (to 120 Hz) and codes the rest lossily: within 0.5 dB.
        assert np.allclose(levels, source_db - 3.01 + gain, atol=0.5 if path == web else 0.02)
        assert measure(programme, 48000, channel_weights(list(FIVE_ONE))).integrated_lufs == pytest.approx(target, abs=tolerance)
    assert not np.any(_channels(broadcast)[6:])
    # QC of the files on their own: ``source`` is read from the file, the eight mono tracks are
    # joined as L R C LFE Ls Rs by the preset's layout.
    for path, overrides, target in ((web, {"layout": "source", "tracks": "5.1"}, -14.0),
                                    (broadcast, {"layout": "5.1", "tracks": "8-mono"}, -23.0)):
        preset = get_preset("web-h264-1080p" if path == web else "broadcast-prores-hq-1080p25")
        checks = {check.name: check for check in run_qc(path, preset.with_overrides(
            {"video": small, "audio": overrides})).checks}
        assert (checks["conformance"].status, checks["loudness"].status) == ("pass", "pass")
        assert checks["loudness"].value == pytest.approx(target, abs=0.3)


@pytest.mark.parametrize("shots_per_render", [8, pytest.param(2, marks=pytest.mark.slow)])
def test_five_one_programme_from_stereo_and_five_one_shots(shots_per_render, tmp_path):
    """``layout: source`` with a stereo shot and then two 5.1(side) shots under a stereo music bed, in
    one render and (slow) in windows of two shots: 5.1, the stereo shot and the bed on L and R only
    (no upmix), the 5.1 shots channel for channel (side surrounds on the back ones)."""
    stereo, music = tmp_path / "stereo.mov", tmp_path / "music.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=1",
                "-f", "lavfi", "-i", "aevalsrc=0.1*sin(2*PI*2000*t)|0.1*sin(2*PI*3000*t):s=48000:d=1",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", str(stereo)])
    run_ffmpeg(["-f", "lavfi", "-i", "aevalsrc=0.02*sin(2*PI*4000*t)|0.02*sin(2*PI*5000*t):s=48000:d=3", str(music)])
    side = _five_one_source(tmp_path / "side.mov", "5.1(side)")
    assert probe(side).audio.layout == "5.1(side)"
    job = parse_job({"version": 1, "name": "spot", "sequence": {"shots_per_render": shots_per_render},
                     "music": {"source": str(music)},
                     "shots": [{"source": str(stereo)}, {"source": str(side)}, {"source": str(side)}],
                     "deliverables": [{"preset": "broadcast-prores-hq-1080p25", "overrides": {
                         "video": {"width": 320, "height": 180}, "audio": {"layout": "source", "tracks": "5.1"}}}]},
                    tmp_path)
    output = json.loads(finish(job, tmp_path / "out").read_text())["outputs"][0]
    assert output["qc"]["status"] == "pass"
    samples = _channels(Path(output["path"]))
    assert samples.shape == (6, 144000)
    seconds = [samples[:, 48000 * second + 2400 : 48000 * second + 45600] for second in range(3)]
    assert _dominant_hz(seconds[0][:2]) == [2000, 3000]
    assert np.abs(seconds[0][2:]).max() == 0
    assert _dominant_hz(seconds[1]) == _dominant_hz(seconds[2]) == list(FIVE_ONE_HZ)
    # The bed's left (4 kHz) on L only, its right (5 kHz) on R only, all through.
    spectrum = np.abs(np.fft.rfft(samples[:, :48000 * 2], axis=1))
    bins = [round(hz * 2) for hz in (4000, 5000)]
    bed = spectrum[:, bins] / spectrum[:, bins].max()
    assert np.allclose(bed, [[1, 0], [0, 1]] + [[0, 0]] * 4, atol=1e-3)


def test_five_one_without_a_five_one_source_is_a_job_error_and_source_layout_falls_back_to_stereo(stereo_source, tmp_path):
    overrides = {"video": {"width": 320, "height": 180}, "audio": {"layout": "5.1", "tracks": "5.1"}}
    with pytest.raises(JobError, match=r"deliverables.0 \(broadcast-prores-hq-1080p25\): audio.layout 5.1 needs a "
                                       r"shot whose sound is 5.1.*postprod does not upmix"):
        preflight(_job(stereo_source, [{"preset": "broadcast-prores-hq-1080p25", "overrides": overrides}], tmp_path),
                  tmp_path / "out")
    overrides["audio"]["layout"] = "source"
    expected = preflight(_job(stereo_source, [{"preset": "broadcast-prores-hq-1080p25", "overrides": overrides}],
                              tmp_path), tmp_path / "out").outputs[0].expected
    assert (expected.channels, expected.layout, expected.audio_tracks) == (2, "stereo", (("FL", "FR"),))


REAL_FIVE_ONE_CLIPS = {name: Path("../shared/devclips") / name for name in (
    "ai_infinitetalk_dubbing_a.mp4", "real_vggsound_whale_shark.mp4", "mp3_in_mp4_outdoor.mp4")}


@pytest.mark.slow
@pytest.mark.skipif(not all(path.exists() for path in REAL_FIVE_ONE_CLIPS.values()),
                    reason="development clips not present (../shared/devclips)")
def test_real_sound_as_five_one_into_xdcam_and_aac(tmp_path):
    """A 5.1 source built from real clips (speech on C, a whale-shark ambience on L/R and, low-passed,
    on the LFE, an outdoor recording on Ls/Rs): each output channel is its source channel scaled by
    the one loudness gain (correlation with it, and with no other), and the programme meets R 128
    and the streaming target measured with BS.1770's 5.1 weights."""
    speech, ambience, outdoor = (str(path.resolve()) for path in REAL_FIVE_ONE_CLIPS.values())
    source = tmp_path / "real51.mov"
    run_ffmpeg(["-i", speech, "-i", ambience, "-i", outdoor, "-filter_complex",
                "[0:a]pan=mono|c0=c0[c];[1:a]asplit[lr][low];[low]pan=mono|c0=0.5*c0+0.5*c1,lowpass=f=120[lfe];"
                "[lr][c][lfe][2:a]join=inputs=4:channel_layout=5.1:map=0.0-FL|0.1-FR|1.0-FC|2.0-LFE|3.0-BL|3.1-BR,"
                "aresample=48000[a]",
                "-map", "0:v", "-map", "[a]", "-t", "6", "-c:v", "copy", "-c:a", "pcm_s24le", str(source)])
    job = _job(source, [{"preset": "xdcam-hd422-1080i25-mxf", "overrides": {"audio": {"layout": "5.1"}}},
                        {"preset": "web-h264-1080p", "overrides": {"video": {"width": 640, "height": 320},
                                                                   "audio": {"layout": "source", "tracks": "5.1"}}}],
               tmp_path)
    outputs = json.loads(finish(job, tmp_path / "out").read_text())["outputs"]
    source_samples = _channels(source)[:, 4800:4800 + 48000 * 5]
    for output, target, matching in zip(outputs, (-23.0, -14.0), (0.9999, 0.97), strict=True):
        samples = _channels(Path(output["path"]))
        programme = samples[:6, 4800:4800 + 48000 * 5]
        correlation = np.corrcoef(np.concatenate([programme, source_samples]))[:6, 6:]
        assert np.all(np.diag(correlation) > matching), np.diag(correlation)
        # Real channels correlate with each other (L with R, Ls with Rs): each output channel must
        # correlate with every source channel as its own source channel does.
        assert np.allclose(correlation, np.corrcoef(source_samples), atol=1 - matching), correlation
        assert measure(samples[:6], 48000, channel_weights(list(FIVE_ONE))).integrated_lufs == pytest.approx(
            target, abs=0.1 if target == -23.0 else 0.5)


def test_five_one_leader_tone_identifies_each_channel(tmp_path):
    """A leader before a 5.1 programme carries the EBU multichannel line-up, read back in quarter
    seconds: 3 s of 1 kHz on the five main channels, half a second of silence, then L, C, R, Rs, Ls
    each alone for half a second (half a second apart), again from 8.5 s; 80 Hz on the LFE all
    through the bars; all at -18 dBFS peak (-21 dB RMS); silence under the slate."""
    source = _five_one_source(tmp_path / "five_one.mov")
    job = _job(source, [{"preset": "broadcast-prores-hq-1080p25", "overrides": {
        "video": {"width": 320, "height": 180}, "audio": {"layout": "5.1", "tracks": "5.1"},
        "leader": {"bars_seconds": 9, "slate_seconds": 1, "black_seconds": 0}}}], tmp_path)
    output = json.loads(finish(job, tmp_path / "out").read_text())["outputs"][0]
    assert output["qc"]["status"] == "pass"
    samples = _channels(Path(output["path"]))
    ident = {"FL": 3.5, "FC": 4.5, "FR": 5.5, "BR": 6.5, "BL": 7.5}
    for quarter in range(40):
        start = quarter / 4
        window = samples[:6, 12000 * quarter + 1200 : 12000 * quarter + 10800]
        levels = [_rms_db(channel) if np.any(channel) else None for channel in window]
        cycle = start % 8.5
        wanted = [None] * 6 if start >= 9 else [
            -21.0 if name == "LFE" or cycle < 3 or ident[name] <= cycle < ident[name] + 0.5 else None
            for name in FIVE_ONE]
        assert [None if level is None else round(level, 1) for level in levels] == wanted, start
        sounding = [number for number, level in enumerate(levels) if level is not None]
        assert _dominant_hz(window[sounding]) == [80 if FIVE_ONE[n] == "LFE" else 1000 for n in sounding]
