"""The ffmpeg runner: argument lists, progress, typed errors with stderr, capability checks."""

from __future__ import annotations

import pytest

from pipeline.media import runner as media
from pipeline.errors import FFmpegError, MissingCapabilityError
from pipeline.media.probe import probe


def test_progress_reports_rise_to_completion(tmp_path):
    reports = []
    output = tmp_path / "two-seconds.mp4"
    media.run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-c:v", "libx264", "-preset", "ultrafast",
         str(output)],
        expected_duration_s=2.0,
        on_progress=reports.append,
    )
    fractions = [report.fraction for report in reports]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert probe(output).video.frame_count == 50


def test_failure_carries_command_and_stderr_tail(tmp_path):
    with pytest.raises(FFmpegError) as caught:
        media.run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=d=1", "-c:v", "no_such_encoder", str(tmp_path / "x.mp4")])
    error = caught.value
    assert error.returncode != 0 and not error.transient
    assert error.argv[0] == media.ffmpeg_executable() and "no_such_encoder" in error.argv
    assert any("no_such_encoder" in line for line in error.stderr_tail)
    assert "no_such_encoder" in str(error)


def test_file_names_are_single_arguments(tmp_path):
    """A name full of shell and filter syntax is one argv element: nothing is split or interpreted."""
    output = tmp_path / "it's [a] \"clip\"; rm -rf ~ $(x) :d=1,.mp4"
    media.run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=64x64:d=0.2", "-c:v", "libx264", "-f", "mp4", str(output)])
    assert probe(output).video.coded_width == 64


def test_missing_capabilities_are_named():
    with pytest.raises(MissingCapabilityError, match="encoders no_such_encoder and filters no_such_filter"):
        media.require_capabilities(encoders=["libx264", "no_such_encoder"], filters=["scale", "no_such_filter"])
    media.require_capabilities(encoders=["prores_ks", "prores_aw", "libx265", "libsvtav1"],
                               filters=["zscale", "xfade", "loudnorm", "ass", "drawtext"])


def test_ffmpeg_override_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv(media.FFMPEG_ENV_VAR, str(tmp_path / "missing-ffmpeg"))
    media.ffmpeg_executable.cache_clear()
    try:
        with pytest.raises(MissingCapabilityError, match="missing-ffmpeg"):
            media.ffmpeg_executable()
    finally:
        monkeypatch.delenv(media.FFMPEG_ENV_VAR)
        media.ffmpeg_executable.cache_clear()


def test_default_font_draws_text_without_fontconfig(tmp_path):
    """The bundled font renders through drawtext by file path, with no system font lookup."""
    from pipeline.plan.fonts import default_font_path
    from tests.measure import frame_lumas

    font = default_font_path()
    frames = {}
    for name, text in (("blank", ""), ("text", "POSTPROD")):
        frames[name] = tmp_path / f"{name}.mp4"
        # Our own constant text and a path without filter syntax in it: safe to inline here.
        draw = f"drawtext=fontfile={font}:text='{text}':fontsize=40:fontcolor=white:x=10:y=10" if text else "null"
        media.run_ffmpeg(["-f", "lavfi", "-i", "color=black:s=320x80:d=0.1", "-vf", draw,
                          "-c:v", "libx264", "-preset", "ultrafast", str(frames[name])])
    blank_luma, _ = frame_lumas(frames["blank"])
    text_luma, _ = frame_lumas(frames["text"])
    # White glyphs on black lift the mean luma of every frame; a missing font would draw nothing.
    assert text_luma.min() > blank_luma.max() + 1.5
