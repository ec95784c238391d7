"""Overlays burnt into real renders on a flat grey picture, checked pixel by pixel: inside the
deliverable's text-safe area (16:9 broadcast insets, 9:16 TikTok zones), frame-exact in and out,
captions on their cue frames, long titles wrapped and shrunk, literal text, shaped right-to-left
scripts and CJK compared with HarfBuzz's shaping drawn from the same font's outlines (everywhere) and
with Pillow's rendering (where it has libraqm), and clear errors.

Deliverables are rendered at a fifth of 1920x1080 / 1080x1920 through preset overrides: layout is
relative to the frame, so the geometry is the same as at full size.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw, ImageFont, features

from pipeline.errors import JobError
from pipeline.jobs.analyses import probe_sources
from pipeline.jobs.finish import finish, preflight
from pipeline.plan.fonts import default_font_path
from pipeline.model.job import load_job
from pipeline.plan.ass_script import escape_ass_text
from pipeline.plan.overlay_layout import SafeBox, fit_text, font_face
from pipeline.plan.planner import plan_job
from pipeline.model.presets import load_presets
from pipeline.jobs.still import render_still
from pipeline.plan.workfiles import GraphicsRender
from pipeline.plan.facts import JobFacts
from tests.glyph_outlines import draw_glyphs, nominal_glyphs, shaped_glyphs

GREY = "#808080"
CHANGED = 24
"""Luma difference (8-bit) that counts as an overlay pixel; the H.264 grey background varies by 1-2."""
WIDE = {"preset": "web-h264-1080p", "name": "wide",
        "overrides": {"video": {"width": 384, "height": 216, "frame_rate": 24, "options": {"preset": "veryfast"}}}}
TALL = {"preset": "social-9x16", "name": "tall",
        "overrides": {"video": {"width": 216, "height": 384, "frame_rate": 24, "options": {"preset": "veryfast"}}}}
SQUARE = {"preset": "social-1x1", "name": "square",
          "overrides": {"video": {"width": 216, "height": 216, "frame_rate": 24, "options": {"preset": "veryfast"}}}}
LITERAL = "It's 50% off: C:\\path {\\b1} %{pts}"


def _fonts_of(package: str, pattern: str) -> Path:
    module = pytest.importorskip(package)
    root = Path(getattr(module, "ROOT", None) or Path(module.__file__).parent)
    return next(root.rglob(pattern))


def _job_file(tmp_path: Path, clip: Path, deliverables: list[dict], overlays: list[dict], **extra) -> Path:
    data = {"version": 1, "name": "ov", "shots": [{"source": str(clip)}], "deliverables": deliverables,
            "overlays": overlays, **extra}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _luma_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="gray").astype(int) for frame in container.decode(video=0)])


def _changed(frames: np.ndarray) -> np.ndarray:
    background = int(np.median(frames[:, :4, :4]))
    return np.abs(frames - background) > CHANGED


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of True pixels, right and bottom exclusive."""
    rows, columns = np.nonzero(mask)
    return columns.min(), rows.min(), columns.max() + 1, rows.max() + 1


def _safe_box(preset: str, width: int, height: int) -> SafeBox:
    return SafeBox.of(load_presets()[preset].safe_area.text, width, height)


def _assert_inside(mask: np.ndarray, box: SafeBox) -> None:
    left, top, right, bottom = _bbox(mask)
    # One pixel for anti-aliasing and chroma siting.
    assert left >= box.left - 1 and top >= box.top - 1, (left, top, box)
    assert right <= box.right + 1 and bottom <= box.bottom + 1, (right, bottom, box)


@pytest.fixture(scope="module")
def grey_clip(make_colour_clip) -> Path:
    return make_colour_clip(GREY, seconds=Fraction(1), size="160x90", rate=24)


@pytest.fixture(scope="module")
def logo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("logo") / "logo.png"
    image = np.zeros((40, 80, 4), dtype=np.uint8)
    image[8:32, 8:72] = (0, 0, 255, 255)  # BGRA: an opaque red bar in a transparent border
    cv2.imwrite(str(path), image)
    return path


def test_layers_stay_in_16x9_safe_area_and_are_frame_exact(tmp_path, grey_clip, logo):
    """Title frames 6..17 only; caption on its cue frames only; everything inside EBU graphics-safe."""
    captions = tmp_path / "captions.srt"
    captions.write_text("1\n00:00:00,500 --> 00:00:00,750\nA caption on its cue\n", encoding="utf-8")
    job = _job_file(tmp_path, grey_clip, [WIDE], [
        {"kind": "lower_third", "text": "Ada Lovelace", "subtext": "Analyst", "anchor": "top_left"},
        {"kind": "logo", "image": str(logo), "anchor": "top_right", "size": 0.08},
        {"kind": "title", "text": "Frame exact", "start": "6f", "end": "18f"},
        {"kind": "captions", "captions": str(captions)},
    ])
    finish(load_job(job), tmp_path / "out")
    frames = _luma_frames(tmp_path / "out" / "ov_wide.mp4")
    changed = _changed(frames)
    assert changed.any(axis=0).sum() > 500
    _assert_inside(changed.any(axis=0), _safe_box("web-h264-1080p", 384, 216))
    middle = changed[:, int(0.35 * 216):int(0.65 * 216)].any(axis=(1, 2))
    assert np.flatnonzero(middle).tolist() == list(range(6, 18))
    bottom = changed[:, int(0.75 * 216):].any(axis=(1, 2))
    assert np.flatnonzero(bottom).tolist() == list(range(12, 18))  # 0.5 s and 0.75 s at 24 fps


def test_long_title_in_9x16_wraps_shrinks_and_avoids_tiktok_zones(tmp_path, grey_clip, logo):
    title = ("Two hundred characters of title text that no vertical frame could hold on one line at the "
             "size its style asks for, so it must wrap onto many lines and shrink until all of it fits.")
    title = (title + " " + title)[:200]
    job = _job_file(tmp_path, grey_clip, [TALL], [
        {"kind": "title", "text": title, "style": "big"},
        {"kind": "logo", "image": str(logo), "anchor": "bottom_right"},
        {"kind": "timecode", "anchor": "top_left"},
        {"kind": "lower_third", "text": "Ada Lovelace", "subtext": "Analyst"},
    ], styles={"big": {"size": 0.12}})
    finish(load_job(job), tmp_path / "out")
    frames = _luma_frames(tmp_path / "out" / "ov_tall.mp4")
    changed = _changed(frames).any(axis=0)
    box = _safe_box("social-9x16", 216, 384)
    assert box.bottom < 384 * 0.78 and box.right < 216 * 0.87  # the TikTok zones are in force
    _assert_inside(changed, box)
    block = fit_text(title, 0.12 * 384, (font_face(default_font_path()),), box.width, box.height)
    assert len(block.lines) > 3 and block.size_px < 0.12 * 384
    assert "".join(block.lines).replace(" ", "") == title.replace(" ", "")
    # The title's ink spans several text lines of the centre column.
    rows = np.flatnonzero(changed[:, int(box.left) + 5:int(box.right) - 5].any(axis=1))
    assert rows.max() - rows.min() > 4 * block.size_px


def _ink(image: np.ndarray) -> np.ndarray:
    """Crop a binary ink mask to its bounding box."""
    left, top, right, bottom = _bbox(image)
    return image[top:bottom, left:right]


def _pillow_line(text: str, font: Path, size_px: float, layout) -> np.ndarray:
    """Ink mask of ``text`` as Pillow draws it with ``font`` at ASS size ``size_px``."""
    face = font_face(font)
    em = size_px * _units_per_em(font) / face.line_units
    pillow_font = ImageFont.truetype(str(font), size=round(em), layout_engine=layout)
    canvas = Image.new("L", (int(size_px * len(text)) + 40, int(size_px * 3)), 0)
    ImageDraw.Draw(canvas).text((20, int(size_px)), text, font=pillow_font, fill=255)
    return _ink(np.asarray(canvas) > 127)


def _units_per_em(font: Path) -> int:
    from fontTools.ttLib import TTFont

    return TTFont(font, lazy=True)["head"].unitsPerEm


def _similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Normalised correlation of two ink masks brought to the same size and blurred a little, so a
    pixel's difference in rasterisation does not count, a different glyph or order does."""
    height, width = first.shape
    second = cv2.resize(second.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    first = cv2.GaussianBlur(first.astype(np.float32), (0, 0), 1.5)
    second = cv2.GaussianBlur(second, (0, 0), 1.5)
    first, second = first - first.mean(), second - second.mean()
    return float((first * second).sum() / np.sqrt((first ** 2).sum() * (second ** 2).sum()))


def _still_text(tmp_path: Path, clip: Path, text: str, font: Path | None, at: str = "12f") -> np.ndarray:
    style = {"size": 0.08} | ({"font": str(font)} if font else {})
    deliverable = {"preset": "web-h264-1080p", "name": "look",
                   "overrides": {"video": {"width": 768, "height": 432, "frame_rate": 24}}}
    job = _job_file(tmp_path, clip, [deliverable], [{"kind": "title", "text": text, "style": "s"}],
                    styles={"s": style})
    still = render_still(load_job(job), "look", at, tmp_path / "still.png")
    grey = np.asarray(Image.open(still).convert("L")).astype(int)
    mask = np.abs(grey - int(np.median(grey))) > 64
    _assert_inside(mask, _safe_box("web-h264-1080p", 768, 432))
    return mask


def _count_glyph_blobs(mask: np.ndarray) -> int:
    count, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return count - 1


def test_literal_text_renders_as_typed(tmp_path, grey_clip):
    """ASS overrides, backslashes and drawtext expansions in a title are drawn, not obeyed."""
    assert escape_ass_text(LITERAL) == "It's 50% off: C:\\path \\{\\b1\\} %\\{pts\\}"
    rendered = _ink(_still_text(tmp_path, grey_clip, LITERAL, None))
    expected = _pillow_line(LITERAL, default_font_path(), 0.08 * 432, ImageFont.Layout.BASIC)
    assert _count_glyph_blobs(rendered) == _count_glyph_blobs(expected)
    assert abs(rendered.shape[1] - expected.shape[1]) <= 0.04 * expected.shape[1]
    assert _similarity(rendered, expected) > 0.7


RIGHT_TO_LEFT = pytest.mark.parametrize(
    ("text", "package", "joining"),
    [("مرحبا بالعالم", "fontpkg_noto_sans_arabic", True), ("שלום עולם", "fontpkg_heebo", False)],
    ids=["arabic", "hebrew"],
)


def _harfbuzz_line(text: str, font: Path, size_px: float, shaped: bool = True,
                   right_to_left: bool = False) -> np.ndarray:
    """Ink mask of ``text`` shaped by HarfBuzz (or, unshaped, its characters' own glyphs in logical
    or right-to-left order) and drawn from the font's outlines at ASS size ``size_px``."""
    glyphs = shaped_glyphs(text, font) if shaped else nominal_glyphs(text, font, right_to_left)
    return _ink(draw_glyphs(glyphs, font, size_px / font_face(font).line_units))


@RIGHT_TO_LEFT
def test_right_to_left_text_matches_harfbuzz_shaping(tmp_path, grey_clip, text, package, joining):
    """libass's line matches HarfBuzz's shaping of it drawn from the font's outlines (no system
    library involved), and not the reversed order, the logical left-to-right order, or (Arabic)
    letters in their isolated forms."""
    font = _fonts_of(package, "*.ttf")
    rendered = _ink(_still_text(tmp_path, grey_clip, text, font))
    size = 0.08 * 432
    shaped = _harfbuzz_line(text, font, size)
    right = _similarity(rendered, shaped)
    assert right > 0.8
    assert abs(rendered.shape[1] - shaped.shape[1]) <= 0.04 * shaped.shape[1]
    assert right > _similarity(rendered, _harfbuzz_line(text[::-1], font, size)) + 0.15
    assert right > _similarity(rendered, _harfbuzz_line(text, font, size, shaped=False)) + 0.15
    if joining:
        isolated = _harfbuzz_line(text, font, size, shaped=False, right_to_left=True)
        assert right > _similarity(rendered, isolated) + 0.15


def test_cjk_line_matches_harfbuzz_with_the_cjk_font_named_in_the_job(tmp_path, grey_clip):
    noto_cjk = pytest.importorskip("noto_cjk_sans_jp_regular")
    font = Path(noto_cjk.FONT_PATH)
    text = "東京の夜景"
    rendered = _ink(_still_text(tmp_path, grey_clip, text, font))
    expected = _harfbuzz_line(text, font, 0.08 * 432)
    assert _similarity(rendered, expected) > 0.8
    assert abs(rendered.shape[1] - expected.shape[1]) <= 0.04 * expected.shape[1]
    assert _count_glyph_blobs(rendered) >= len(text)


needs_raqm = pytest.mark.skipif(not features.check("raqm"), reason="Pillow without libraqm cannot shape")


@needs_raqm
@RIGHT_TO_LEFT
def test_right_to_left_text_matches_pillow_raqm(tmp_path, grey_clip, text, package, joining):
    """libass's rendering matches Pillow+raqm's shaped RTL line, and not the unshaped or LTR order."""
    font = _fonts_of(package, "*.ttf")
    rendered = _ink(_still_text(tmp_path, grey_clip, text, font))
    size = 0.08 * 432
    shaped = _pillow_line(text, font, size, ImageFont.Layout.RAQM)
    reversed_order = _pillow_line(text[::-1], font, size, ImageFont.Layout.RAQM)
    unshaped = _pillow_line(text, font, size, ImageFont.Layout.BASIC)
    right = _similarity(rendered, shaped)
    assert right > 0.75
    assert right > _similarity(rendered, reversed_order) + 0.15
    assert right > _similarity(rendered, unshaped) + 0.1


@needs_raqm
def test_cjk_line_matches_pillow_raqm(tmp_path, grey_clip):
    noto_cjk = pytest.importorskip("noto_cjk_sans_jp_regular")
    font = Path(noto_cjk.FONT_PATH)
    text = "東京の夜景"
    rendered = _ink(_still_text(tmp_path, grey_clip, text, font))
    expected = _pillow_line(text, font, 0.08 * 432, ImageFont.Layout.RAQM)
    assert _similarity(rendered, expected) > 0.75
    assert _count_glyph_blobs(rendered) >= len(text)


def test_slide_ins_stay_inside_the_safe_area_on_every_frame(tmp_path, grey_clip):
    """A title sliding up onto the safe area's bottom edge and a lower third (with its bar) sliding
    in from the left at the top, in 9:16 (TikTok zones) and 1:1 (feed badges): on every frame of
    the moves the ink is inside the safe area, and the layers do move."""
    job = _job_file(tmp_path, grey_clip, [TALL, SQUARE], [
        {"kind": "title", "text": "Sliding up", "anchor": "bottom_center", "slide_in": "up"},
        {"kind": "lower_third", "text": "Ada Lovelace", "subtext": "Analyst", "anchor": "top_left",
         "slide_in": "left", "fade_in_frames": 6},
    ])
    finish(load_job(job), tmp_path / "out")
    for name, preset, width, height in (("tall", "social-9x16", 216, 384), ("square", "social-1x1", 216, 216)):
        changed = _changed(_luma_frames(tmp_path / "out" / f"ov_{name}.mp4"))
        box = _safe_box(preset, width, height)
        assert box.bottom < height * (0.93 if name == "square" else 0.78)  # the UI zone is in force
        for frame in changed:
            if frame.any():
                _assert_inside(frame, box)
        # The title's top edge rises for the half second of its slide (12 frames), then stays.
        title = changed[:, height // 2:]
        tops = [np.flatnonzero(frame.any(axis=1)).min() for frame in title if frame.any()]
        assert tops[0] > tops[-1] + 2 and len(set(tops[-12:])) == 1, tops
        # The lower third's right edge moves right over its 6-frame fade-in, then stays.
        lower_third = changed[:, :height // 2]
        rights = [np.flatnonzero(frame.any(axis=0)).max() if frame.any() else -1 for frame in lower_third[:12]]
        assert 0 < rights[2] < rights[4] < rights[6] and rights[6:] == [rights[6]] * 6, rights


@pytest.mark.parametrize("graph_in_a_file", [False, True])
def test_frame_command_matches_the_rendered_deliverable(tmp_path, grey_clip, monkeypatch, graph_in_a_file):
    job = _job_file(tmp_path, grey_clip, [WIDE], [{"kind": "title", "text": "Same frame", "start": "6f"}])
    finish(load_job(job), tmp_path / "out")
    frames = _luma_frames(tmp_path / "out" / "ov_wide.mp4")
    if graph_in_a_file:  # as a long sequence's graph is: -/filter_complex FILE
        monkeypatch.setattr("pipeline.plan.render_graph.FILTER_GRAPH_ARGUMENT_MAX", 100)
    still = render_still(load_job(job), "wide", "00:00:00:10", tmp_path / "frame.png")
    grey = np.asarray(Image.open(still).convert("L")).astype(int)
    assert (np.abs(grey - frames[10]) > 8).mean() < 0.002
    assert (np.abs(grey - frames[0]) > CHANGED).sum() > 200  # the title is there, and not at frame 0
    assert sorted(path.name for path in tmp_path.iterdir() if "filtergraph" in path.name) == []


@pytest.mark.parametrize(
    ("overlays", "styles", "expected"),
    [
        ([{"kind": "title", "text": "x", "style": "brand"}], {"brand": {"font": "missing/Brand.ttf"}},
         r"styles\.brand\.font: font file .*missing/Brand\.ttf not found"),
        ([{"kind": "title", "text": "late", "start": 5}], {},
         r"overlays\.0\.start: 5 falls at 5\.000 s, at or after the end of the sequence \(1\.000 s\)"),
        ([{"kind": "title", "text": "x", "style": "nope"}], {}, r"overlays\.0\.style: unknown style 'nope'"),
        ([{"kind": "title", "text": "x", "shot": 3}], {}, r"overlays\.0\.shot: no shot 3"),
        ([{"kind": "captions", "captions": "bad.srt"}], {}, r"bad\.srt: cue 2 \(line 5\): ends at 0\.500 s"),
        ([{"kind": "title", "text": "東京"}], {}, r"overlays\.0: font Roboto-Regular\.ttf has no glyph for '京' .*'東'"),
        ([{"kind": "logo"}], {}, r"a logo overlay needs 'image'"),
        ([{"kind": "graphics", "callable": "no_such_module_here:make"}], {},
         r"overlays\.0\.callable: no module 'no_such_module_here'"),
    ],
    ids=["missing-font", "outside-sequence", "unknown-style", "unknown-shot", "broken-cue", "uncovered-glyph",
         "logo-without-image", "missing-callable"],
)
def test_bad_overlays_are_clear_job_errors(tmp_path, grey_clip, overlays, styles, expected):
    (tmp_path / "bad.srt").write_text(
        "1\n00:00:00,100 --> 00:00:00,300\nfine\n\n2\n00:00:00,900 --> 00:00:00,500\nbackwards\n",
        encoding="utf-8",
    )
    job = _job_file(tmp_path, grey_clip, [WIDE], overlays, styles=styles)
    with pytest.raises(JobError, match=expected):
        preflight(load_job(job), tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_motion_graphic_from_a_callable_is_composited_with_its_alpha(tmp_path, grey_clip, monkeypatch):
    pytest.importorskip("moviepy")
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    job = _job_file(tmp_path, grey_clip, [WIDE], [
        {"kind": "graphics", "callable": "overlay_graphics:half_white_square", "anchor": "bottom_left",
         "start": "6f", "end": "18f"},
    ])
    finish(load_job(job), tmp_path / "out")
    frames = _luma_frames(tmp_path / "out" / "ov_wide.mp4")
    changed = _changed(frames)
    assert np.flatnonzero(changed.any(axis=(1, 2))).tolist() == list(range(6, 18))
    box = _safe_box("web-h264-1080p", 384, 216)
    left, top, right, bottom = _bbox(changed[12])
    side = 216 // 5
    assert box.left <= left <= box.left + 2 and box.bottom - 2 <= bottom <= box.bottom and right - left == side
    background = np.median(frames[0])
    inside = frames[12][top + 2:bottom - 2, left + 2:right - 2]
    # PyAV's "gray" is full-range luma: the video's white (Y 235) reads 255 here, so the share of
    # the way from grey to white is the opacity the 50 % mask gave the square.
    opacity = (inside.mean() - background) / (255 - background)
    assert abs(opacity - 0.5) < 0.02, opacity


def _three_dissolved_shots(clip: Path) -> list[dict]:
    """Three 24-frame shots, each dissolving into the next over 6 frames: they start on sequence
    frames 0, 18 and 36, and the sequence is 60 frames long."""
    dissolve = {"type": "dissolve", "frames": 6}
    return [{"source": str(clip), "transition": dissolve}, {"source": str(clip), "transition": dissolve},
            {"source": str(clip), "id": "last"}]


def test_shot_relative_overlays_count_from_the_shots_first_frame(tmp_path, grey_clip):
    """A title 3 frames into the third shot (by id) shows from its timeline start (frame 36, after
    two 6-frame dissolves) plus 3; a lower third on the second shot without an end lasts to that
    shot's last frame (41)."""
    job = _job_file(tmp_path, grey_clip, [WIDE], [
        {"kind": "title", "text": "Third shot", "shot": "last", "start": "3f", "duration": 0.25},
        {"kind": "lower_third", "text": "Second shot", "shot": 1, "start": "2f"},
    ], shots=_three_dissolved_shots(grey_clip))
    finish(load_job(job), tmp_path / "out")
    changed = _changed(_luma_frames(tmp_path / "out" / "ov_wide.mp4"))
    assert len(changed) == 60
    middle = changed[:, int(0.35 * 216):int(0.65 * 216)].any(axis=(1, 2))
    assert np.flatnonzero(middle).tolist() == list(range(39, 45))
    bottom = changed[:, int(0.7 * 216):].any(axis=(1, 2))
    assert np.flatnonzero(bottom).tolist() == list(range(20, 42))


def test_windowed_render_draws_each_frame_of_a_motion_graphic_once(tmp_path, grey_clip, monkeypatch):
    """A long sequence rendered in windows (two shots a window): a motion graphic across the window
    boundary is drawn once per frame in all, shows on exactly its frames at its opacity in every
    window, and no window's files are left behind."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import overlay_graphics

    overlay_graphics.DRAWN_TIMES.clear()
    job_path = _job_file(tmp_path, grey_clip, [WIDE], [
        {"kind": "graphics", "callable": "overlay_graphics:counted_square", "anchor": "bottom_left",
         "start": "12f", "end": "50f", "opacity": 0.5},
    ], shots=_three_dissolved_shots(grey_clip), sequence={"shots_per_render": 2})
    job = load_job(job_path)
    plan = plan_job(job, JobFacts(probe_sources(job)), load_presets(), tmp_path / "out")
    pieces = sorted((item.first_frame, item.end_frame) for render in plan.renders
                    for item in render.prepared_files if isinstance(item, GraphicsRender))
    assert len(pieces) == 2 and pieces[0][0] == 0 and pieces[0][1] == pieces[1][0] and pieces[1][1] == 38
    finish(job, tmp_path / "out")
    assert sorted(overlay_graphics.DRAWN_TIMES) == [float(Fraction(frame, 24)) for frame in range(38)]
    frames = _luma_frames(tmp_path / "out" / "ov_wide.mp4")
    changed = _changed(frames)
    assert np.flatnonzero(changed.any(axis=(1, 2))).tolist() == list(range(12, 50))
    background = np.median(frames[0])
    for number in (12 + pieces[0][1] - 1, 12 + pieces[1][0], 49):  # each side of the boundary, and the end
        left, top, right, bottom = _bbox(changed[number])
        inside = frames[number][top + 2:bottom - 2, left + 2:right - 2]
        assert abs((inside.mean() - background) / (255 - background) - 0.25) < 0.02  # 50 % mask x 0.5
    assert not [path.name for path in (tmp_path / "out").iterdir() if path.name.startswith(".")]


def test_end_card_covers_the_frame_from_its_start_with_text_in_the_safe_area(tmp_path, grey_clip):
    """The end card's background (its style's bar colour, black by default) covers the whole frame
    from its first frame; the headline and the smaller call to action sit centred in the safe area."""
    job = _job_file(tmp_path, grey_clip, [WIDE], [
        {"kind": "end_card", "text": "Solarfly", "subtext": "solarfly.example", "start": "12f"},
    ])
    finish(load_job(job), tmp_path / "out")
    frames = _luma_frames(tmp_path / "out" / "ov_wide.mp4")
    assert np.all(np.abs(frames[:12] - np.median(frames[0])) <= CHANGED)
    card = frames[12:]
    text = card > 128
    ink = text[0]
    # The same still card on every frame (to a pixel of the encoder's noise at the letters' edges).
    assert all(np.abs(np.subtract(_bbox(frame), _bbox(ink))).max() <= 1 for frame in text)
    # Black wherever there is no text (a few pixels round the letters carry the encoder's ringing).
    away = cv2.dilate(ink.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
    assert card[:, away].max() < 8
    box = _safe_box("web-h264-1080p", 384, 216)
    _assert_inside(ink, box)
    left, _, right, _ = _bbox(ink)
    assert abs((left + right) / 2 - (box.left + box.right) / 2) <= 2
    rows = np.flatnonzero(ink.any(axis=1))
    bands = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    assert len(bands) == 2
    headline, action = (band.max() - band.min() + 1 for band in bands)
    assert action < 0.8 * headline
