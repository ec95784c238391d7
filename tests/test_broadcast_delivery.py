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
from pipeline.analysis.loudness import measure
from pipeline.media.runner import run_ffmpeg
from pipeline.model.presets import AudioSpec, TimecodeSpec, get_preset
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


@pytest.mark.parametrize(("tracks", "second_pair", "contents", "programme"), [
    ("stereo", "silent", ("programme",), (0,)),
    ("stereo+stereo", "copy", ("programme", "programme"), (0,)),
    ("stereo+stereo", "silent", ("programme", "silent"), (0,)),
    ("8-mono", "copy", ("left", "right", "left", "right") + ("silent",) * 4, (0, 1)),
    ("8-mono", "silent", ("left", "right") + ("silent",) * 6, (0, 1)),
])
def test_track_layouts(tracks, second_pair, contents, programme):
    spec = AudioSpec(encoder="pcm_s24le", codec="pcm_s24le", tracks=tracks, second_pair=second_pair)
    assert track_contents(spec) == contents
    assert programme_tracks(spec) == programme
    assert spec.channels == (1 if tracks == "8-mono" else 2)


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
        replace(expected, audio_tracks=("left", "right", "silent", "right") + ("silent",) * 4),
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
