"""Overlays burnt into real renders on a flat grey picture, checked pixel by pixel: inside the
deliverable's text-safe area (16:9 broadcast insets, 9:16 TikTok zones), frame-exact in and out,
captions on their cue frames, long titles wrapped and shrunk, literal text, shaped right-to-left
scripts and CJK compared with Pillow's rendering (libraqm) of the same font, and clear errors.

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
from pipeline.finish import finish, preflight
from pipeline.fonts import default_font_path
from pipeline.job import load_job
from pipeline.overlays import SafeBox, escape_ass_text, fit_text, font_face
from pipeline.presets import load_presets
from pipeline.still import render_still

GREY = "#808080"
CHANGED = 24
"""Luma difference (8-bit) that counts as an overlay pixel; the H.264 grey background varies by 1-2."""
WIDE = {"preset": "web-h264-1080p", "name": "wide",
        "overrides": {"video": {"width": 384, "height": 216, "frame_rate": 24, "options": {"preset": "veryfast"}}}}
TALL = {"preset": "social-9x16", "name": "tall",
        "overrides": {"video": {"width": 216, "height": 384, "frame_rate": 24, "options": {"preset": "veryfast"}}}}
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


needs_raqm = pytest.mark.skipif(not features.check("raqm"), reason="Pillow without libraqm cannot shape")


@needs_raqm
@pytest.mark.parametrize(
    ("text", "package", "pattern"),
    [("مرحبا بالعالم", "fontpkg_noto_sans_arabic", "*.ttf"), ("שלום עולם", "fontpkg_heebo", "*.ttf")],
    ids=["arabic", "hebrew"],
)
def test_right_to_left_text_is_shaped_and_ordered(tmp_path, grey_clip, text, package, pattern):
    """libass's rendering matches Pillow+raqm's shaped RTL line, and not the unshaped or LTR order."""
    font = _fonts_of(package, pattern)
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
def test_cjk_line_renders_with_the_cjk_font_named_in_the_job(tmp_path, grey_clip):
    noto_cjk = pytest.importorskip("noto_cjk_sans_jp_regular")
    font = Path(noto_cjk.FONT_PATH)
    text = "東京の夜景"
    rendered = _ink(_still_text(tmp_path, grey_clip, text, font))
    expected = _pillow_line(text, font, 0.08 * 432, ImageFont.Layout.RAQM)
    assert _similarity(rendered, expected) > 0.75
    assert _count_glyph_blobs(rendered) >= len(text)


def test_frame_command_matches_the_rendered_deliverable(tmp_path, grey_clip):
    job = _job_file(tmp_path, grey_clip, [WIDE], [{"kind": "title", "text": "Same frame", "start": "6f"}])
    finish(load_job(job), tmp_path / "out")
    frames = _luma_frames(tmp_path / "out" / "ov_wide.mp4")
    still = render_still(load_job(job), "wide", "00:00:00:10", tmp_path / "frame.png")
    grey = np.asarray(Image.open(still).convert("L")).astype(int)
    assert (np.abs(grey - frames[10]) > 8).mean() < 0.002
    assert (np.abs(grey - frames[0]) > CHANGED).sum() > 200  # the title is there, and not at frame 0


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
    background = int(np.median(frames[0]))
    inside = frames[12][top + 2:bottom - 2, left + 2:right - 2]
    white = 235  # limited-range white luma
    # Neither opaque nor absent: the mask's alpha reached the composite (ffmpeg's overlay blends
    # this 50 % mask to about 60 %).
    assert 0.35 < (inside.mean() - background) / (white - background) < 0.7
