"""Job files and presets: validation errors that name the field, built-ins, user overrides."""

from __future__ import annotations

import copy
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from pipeline.errors import JobError
from pipeline.model.job import load_job, parse_job
from pipeline.plan.outputs import resolve_preset
from pipeline.model.presets import (
    BUILTIN_PRESETS_DIR,
    USER_PRESETS_ENV_VAR,
    Preset,
    get_preset,
    load_preset_file,
    load_presets,
)

BUILTIN_NAMES = {
    "broadcast-prores-hq-1080p25", "broadcast-prores-hq-1080p2997", "master-prores-4444",
    "prores-lt-1080p", "prores-proxy-1080p", "dnxhr-hq-1080p", "web-h264-1080p", "web-hevc-1080p",
    "web-av1-1080p", "social-9x16", "social-1x1", "social-16x9", "review-540p",
    "tiktok-9x16", "reels-9x16", "shorts-9x16", "instagram-1x1", "instagram-4x5", "youtube-1080p",
    "youtube-2160p", "hdr10-hevc-1080p", "xdcam-hd422-1080i25-mxf", "xdcam-hd422-1080p25-mxf", "dnxhr-hqx-1080p25-mxf",
}

VALID_JOB: dict[str, Any] = {
    "version": 1,
    "name": "launch-teaser",
    "shots": [{"source": "a.mp4", "in": 0.5, "out": "2s"}, {"source": "b.mp4"}],
    "deliverables": [{"preset": "web-h264-1080p"}, {"preset": "prores-proxy-1080p"}],
}


@pytest.fixture(autouse=True)
def user_presets_dir(tmp_path, monkeypatch) -> Path:
    """A fresh, empty user preset folder per test.

    Keeps a developer's ~/.config presets out, and gives ``_load_from_dirs`` (cached by folder
    tuple) a new key each test.
    """
    folder = tmp_path / "user-presets"
    folder.mkdir()
    monkeypatch.setenv(USER_PRESETS_ENV_VAR, str(folder))
    return folder


def _job_with(path: tuple, value: Any) -> dict[str, Any]:
    """VALID_JOB with the item at ``path`` (keys and list indices) set to ``value``."""
    data = copy.deepcopy(VALID_JOB)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return data


def _write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_valid_job_parses_and_resolves_sources_against_its_folder(tmp_path):
    job = load_job(_write_yaml(tmp_path / "job.yaml", VALID_JOB))
    folder = tmp_path.resolve()
    assert [shot.source for shot in job.shots] == [folder / "a.mp4", folder / "b.mp4"]
    assert (job.shots[0].in_point, job.shots[0].out_point) == (0.5, "2s")
    assert [deliverable.label for deliverable in job.deliverables] == ["web-h264-1080p", "prores-proxy-1080p"]


@pytest.mark.parametrize(
    ("path", "value", "field", "problem"),
    [
        (("shots", 0, "in"), "soon", "shots.0.in", "not a time"),
        (("shots", 1, "out"), "2 s", "shots.1.out", "not a time"),
        (("shots", 0, "in"), -1, "shots.0.in", "must not be negative"),
        (("shots",), "a.mp4", "shots", "valid list"),
        (("shots",), [], "shots", "at least 1"),
        (("shots", 0, "in"), 3, "shots.0", "in point 3 is not before out point 2s"),
        (("shots", 0, "start"), 1, "shots.0.start", "Extra inputs are not permitted"),
        (("deliverables", 0, "name"), "web/final", "deliverables.0.name", "should match pattern"),
        (("deliverables", 1, "overrides"), "crop", "deliverables.1.overrides", "valid dictionary"),
        (("output",), {"naming": "{job}_{date}"}, "output.naming", "unknown field(s) ['date']"),
        (("output",), {"naming": "{job}/{preset}"}, "output.naming", "path separators"),
        (("version",), 2, "version", "Input should be 1"),
        (("name",), "my job", "name", "should match pattern"),
    ],
)
def test_job_error_names_the_field(path, value, field, problem):
    with pytest.raises(JobError) as raised:
        parse_job(_job_with(path, value), Path("/project"))
    message_lines = str(raised.value).splitlines()
    assert message_lines[0] == "job:"
    assert any(line.startswith(f"{field}: ") and problem in line for line in message_lines), message_lines


def test_duplicate_deliverable_labels_are_named():
    data = _job_with(("deliverables",), [{"preset": "web-h264-1080p"}, {"preset": "web-h264-1080p"}])
    with pytest.raises(JobError, match=r"deliverables \['web-h264-1080p'\] appear more than once"):
        parse_job(data, Path("/project"))


def test_same_preset_twice_is_fine_with_distinct_names():
    deliverables = [{"preset": "web-h264-1080p"}, {"preset": "web-h264-1080p", "name": "web-crop"}]
    job = parse_job(_job_with(("deliverables",), deliverables), Path("/project"))
    assert [job.output_stem(deliverable) for deliverable in job.deliverables] == [
        "launch-teaser_web-h264-1080p", "launch-teaser_web-crop",
    ]


def test_job_accepts_drop_frame_timecode():
    job = parse_job(_job_with(("shots", 0, "out"), "00:00:01;02"), Path("/project"))
    assert job.shots[0].out_point == "00:00:01;02"


@pytest.mark.parametrize(
    ("overrides", "field", "problem"),
    [
        ({"video": {"width": -4}}, "deliverables.0.overrides.video.width", "greater than 0"),
        ({"video": {"width": "wide"}}, "deliverables.0.overrides.video.width", "valid integer"),
        ({"video": {"fit": "stretch"}}, "deliverables.0.overrides.video.fit", "'pad' or 'crop'"),
        ({"video": {"frame_rate": "fast"}}, "deliverables.0.overrides.video.frame_rate", "not a frame rate"),
        ({"audio": {"bitrate": "256k"}}, "deliverables.0.overrides.audio.bitrate", "Extra inputs"),
    ],
)
def test_bad_override_is_named_when_the_preset_is_resolved(overrides, field, problem):
    """Overrides are free-form in the job; they are checked against the preset's schema at planning."""
    deliverables = [{"preset": "web-h264-1080p", "overrides": overrides}]
    job = parse_job(_job_with(("deliverables",), deliverables), Path("/project"))
    with pytest.raises(JobError) as raised:
        resolve_preset(job, 0, load_presets())
    assert any(line.startswith(f"{field}: ") and problem in line for line in str(raised.value).splitlines())


def test_unknown_preset_is_named_with_the_known_ones():
    job = parse_job(_job_with(("deliverables",), [{"preset": "web-h263"}]), Path("/project"))
    known = r"known presets: .*web-h264-1080p"
    with pytest.raises(JobError, match=rf"^deliverables\.0\.preset: unknown preset 'web-h263'; {known}"):
        resolve_preset(job, 0, load_presets())


def test_missing_job_file_is_a_job_error(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(JobError, match=f"^{re.escape(str(missing))}: job file not found$"):
        load_job(missing)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x00\x9f\x92\x96 binary \xff", "cannot be read as YAML"),
        (b"shots: [unclosed\n  name: x", "cannot be read as YAML"),
        (b"- just\n- a list\n", "expected a mapping"),
        (b"", "expected a mapping"),
    ],
)
def test_unreadable_job_file_is_a_job_error_naming_it(tmp_path, content, problem):
    path = tmp_path / "job.yaml"
    path.write_bytes(content)
    with pytest.raises(JobError, match=problem) as raised:
        load_job(path)
    assert str(raised.value).startswith(str(path))


def test_field_errors_from_a_file_name_the_file(tmp_path):
    path = _write_yaml(tmp_path / "job.yaml", _job_with(("shots", 0, "in"), "soon"))
    with pytest.raises(JobError, match=r"shots\.0\.in: not a time") as raised:
        load_job(path)
    assert str(raised.value).startswith(f"{path}:")


def test_all_builtin_presets_exist():
    assert set(load_presets()) == BUILTIN_NAMES


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broadcast-prores-hq-1080p25",
         dict(container="mov", codec="prores", profile="HQ", codec_tag="apch", pix_fmt="yuv422p10le",
              size=(1920, 1080), frame_rate=Fraction(25), audio="pcm_s24le")),
        ("broadcast-prores-hq-1080p2997",
         dict(container="mov", codec="prores", profile="HQ", codec_tag="apch", pix_fmt="yuv422p10le",
              size=(1920, 1080), frame_rate=Fraction(30000, 1001), audio="pcm_s24le")),
        ("master-prores-4444",
         dict(container="mov", codec="prores", profile="4444", codec_tag="ap4h", pix_fmt="yuva444p10le",
              size=(None, None), frame_rate=None, audio="pcm_s24le")),
        ("prores-lt-1080p",
         dict(container="mov", codec="prores", profile="LT", codec_tag="apcs", pix_fmt="yuv422p10le",
              size=(1920, 1080), frame_rate=None, audio="pcm_s24le")),
        ("prores-proxy-1080p",
         dict(container="mov", codec="prores", profile="Proxy", codec_tag="apco", pix_fmt="yuv422p10le",
              size=(1920, 1080), frame_rate=None, audio="pcm_s24le")),
        ("dnxhr-hq-1080p",
         dict(container="mov", codec="dnxhd", profile="DNXHR HQ", codec_tag=None, pix_fmt="yuv422p",
              size=(1920, 1080), frame_rate=None, audio="pcm_s24le")),
        ("web-h264-1080p",
         dict(container="mp4", codec="h264", profile="High", codec_tag="avc1", pix_fmt="yuv420p",
              size=(1920, 1080), frame_rate=None, audio="aac")),
        ("web-hevc-1080p",
         dict(container="mp4", codec="hevc", profile="Main", codec_tag="hvc1", pix_fmt="yuv420p",
              size=(1920, 1080), frame_rate=None, audio="aac")),
        ("web-av1-1080p",
         dict(container="mp4", codec="av1", profile="Main", codec_tag="av01", pix_fmt="yuv420p",
              size=(1920, 1080), frame_rate=None, audio="aac")),
        ("social-9x16",
         dict(container="mp4", codec="h264", profile="High", codec_tag="avc1", pix_fmt="yuv420p",
              size=(1080, 1920), frame_rate=None, audio="aac")),
        ("social-1x1",
         dict(container="mp4", codec="h264", profile="High", codec_tag="avc1", pix_fmt="yuv420p",
              size=(1080, 1080), frame_rate=None, audio="aac")),
        ("social-16x9",
         dict(container="mp4", codec="h264", profile="High", codec_tag="avc1", pix_fmt="yuv420p",
              size=(1920, 1080), frame_rate=None, audio="aac")),
    ],
)
def test_builtin_preset_settings(name, expected):
    preset = get_preset(name)
    video = preset.video
    actual = dict(
        container=preset.container, codec=video.codec, profile=video.profile, codec_tag=video.codec_tag,
        pix_fmt=video.pix_fmt, size=(video.width, video.height), frame_rate=video.frame_rate,
        audio=preset.audio.codec,
    )
    assert actual == expected
    assert preset.name == name
    assert (preset.audio.sample_rate, preset.audio.channels) == (48000, 2)


def test_2997_preset_rate_is_an_exact_fraction():
    rate = get_preset("broadcast-prores-hq-1080p2997").video.frame_rate
    assert isinstance(rate, Fraction)
    assert (rate.numerator, rate.denominator) == (30000, 1001)


def test_mp4_presets_are_faststart_with_two_second_gops():
    """Web and social files must play while downloading; mov masters are intra-only, no GOP.

    The review copy seeks frame-accurately in a review tool, so it keys every second."""
    for preset in load_presets().values():
        if preset.container == "mp4":
            assert preset.faststart, preset.name
            assert preset.video.gop_seconds == (1 if preset.name == "review-540p" else 2), preset.name
        else:
            assert not preset.faststart, preset.name
            assert preset.video.gop_seconds is None, preset.name


def test_social_vertical_and_square_crop_landscape_pads():
    fits = {name: get_preset(name).video.fit for name in ("social-9x16", "social-1x1", "social-16x9")}
    assert fits == {"social-9x16": "crop", "social-1x1": "crop", "social-16x9": "pad"}


def _builtin(name: str) -> Preset:
    """A built-in preset read straight from its file.

    Tests that write user presets use this rather than ``get_preset``: loading caches the presets
    by folder, so a load before the files are written would hide them.
    """
    return load_preset_file(BUILTIN_PRESETS_DIR / f"{name}.yaml")


def _preset_data(name: str, **changes: Any) -> dict[str, Any]:
    """The web-h264-1080p preset as YAML-ready data, renamed and with top-level keys changed."""
    data = _builtin("web-h264-1080p").model_dump(mode="json")
    return {**data, "name": name, **changes}


def test_user_preset_overrides_a_builtin_and_adds_one(user_presets_dir):
    builtin_crf = _builtin("web-h264-1080p").video.options["crf"]
    overriding = _preset_data("web-h264-1080p", description="house web master")
    overriding["video"]["options"]["crf"] = 23
    _write_yaml(user_presets_dir / "house-web.yaml", overriding)
    _write_yaml(user_presets_dir / "review.yaml", _preset_data("review-h264-540p", description="review copy"))

    presets = load_presets()

    assert set(presets) == BUILTIN_NAMES | {"review-h264-540p"}
    assert presets["web-h264-1080p"].description == "house web master"
    assert presets["web-h264-1080p"].video.options["crf"] == 23 != builtin_crf
    assert presets["review-h264-540p"].description == "review copy"
    assert presets["web-hevc-1080p"] == _builtin("web-hevc-1080p")


@pytest.mark.parametrize(
    ("video_change", "field", "problem"),
    [
        ({"width": 0}, "video.width", "greater than 0"),
        ({"fit": "stretch"}, "video.fit", "'pad' or 'crop'"),
        ({"frame_rate": "fast"}, "video.frame_rate", "not a frame rate"),
        ({"encoder": None}, "video.encoder", "valid string"),
    ],
)
def test_invalid_user_preset_names_the_file_and_field(user_presets_dir, video_change, field, problem):
    data = _preset_data("broken-web")
    data["video"].update(video_change)
    path = _write_yaml(user_presets_dir / "broken.yaml", data)
    with pytest.raises(JobError) as raised:
        load_presets()
    lines = str(raised.value).splitlines()
    assert lines[0] == f"preset file {path}:"
    assert any(line.startswith(f"{field}: ") and problem in line for line in lines[1:]), lines


def test_user_preset_that_is_not_a_mapping_names_the_file(user_presets_dir):
    path = user_presets_dir / "list.yaml"
    path.write_text("- web\n- h264\n", encoding="utf-8")
    with pytest.raises(JobError, match=f"^preset file {re.escape(str(path))}: expected a mapping"):
        load_presets()


def test_user_preset_with_zero_denominator_rate_is_a_job_error(user_presets_dir):
    data = _preset_data("zero-rate")
    data["video"]["frame_rate"] = "30000/0"
    _write_yaml(user_presets_dir / "zero.yaml", data)
    with pytest.raises(JobError, match="video.frame_rate"):
        load_presets()


def test_with_overrides_deep_merges_and_returns_a_new_preset():
    original = get_preset("broadcast-prores-hq-1080p2997")
    changed = original.with_overrides({"video": {"fit": "crop", "options": {"vendor": "ap10"}}})

    assert changed.video.fit == "crop"
    assert changed.video.options == {"profile": 3, "vendor": "ap10"}
    assert changed.video.frame_rate == Fraction(30000, 1001)
    assert (changed.video.width, changed.video.height, changed.video.codec_tag) == (1920, 1080, "apch")
    assert changed.audio == original.audio
    assert original.video.fit == "pad"
    assert original.video.options["vendor"] == "apl0"


def test_with_overrides_validates_the_result():
    with pytest.raises(ValidationError, match="video.widht"):
        get_preset("web-h264-1080p").with_overrides({"video": {"widht": 1280}})
