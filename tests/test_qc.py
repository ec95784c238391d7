"""QC finds synthetic faults at the right timecodes, passes a clean deliverable, and loudness
normalisation meets every loudness preset measured on the encoded file.

Ground truth: a 12 s 25 fps clip with 1 s of superwhite (left half) at 1.0 s, 1 s of black at 3.0 s,
a 2 s freeze at 5.0 s, a 5 Hz full-screen flash from 8.0 s to 9.0 s and 1.5 s of digital silence
at 9.5 s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pipeline.errors import QcFailedError
from pipeline.jobs.finish import finish
from pipeline.model.job import parse_job
from pipeline.analysis.loudness import measure
from pipeline.media.output_decode import counting_decodes
from pipeline.media.probe import probe
from pipeline.media.runner import run_ffmpeg
from pipeline.model.presets import get_preset, load_presets
from pipeline.plan.audio_tracks import programme_channels, programme_tracks
from pipeline.qc.checks import run_qc
from pipeline.qc.report import QC_SCHEMA_VERSION
from pipeline.qc.html_report import write_html
from pipeline.render.measure import measure_output
from postprod.cli import main

RATE = 25
SMALL = {"video": {"width": 320, "height": 180}}
TOLERANCE_S = 1 / RATE + 1e-6


@pytest.fixture(scope="module")
def fault_clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("qc") / "faults.mov"
    picture = (
        f"testsrc2=s=320x180:r={RATE}:d=12,format=yuv420p,split[a][b];"
        "[a][b]freezeframes=first=126:last=174:replace=125,"
        "drawbox=c=black:t=fill:enable='between(t,3,3.999)',"
        "drawbox=c=white:t=fill:enable='between(t,8,8.999)*lt(mod(t,0.2),0.1)',"
        "geq=lum='if(between(T,1,1.999)*lt(X,W/2),250,lum(X,Y))':cb='cb(X,Y)':cr='cr(X,Y)'[v]"
    )
    # Sample-exact silence from 9.5 s to 11.0 s under a -20 dBFS tone.
    sound = "aevalsrc='0.1*sin(2*PI*440*t)*(1-between(t,9.5,11))':s=48000:d=12,pan=stereo|c0=c0|c1=c0[s]"
    run_ffmpeg([
        "-filter_complex", f"{picture};{sound}", "-map", "[v]", "-map", "[s]",
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", "-pix_fmt", "yuv420p",
        "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv",
        "-c:a", "pcm_s24le", str(path),
    ])  # fmt: skip
    return path


@pytest.fixture(scope="module")
def fault_report(fault_clip):
    preset = get_preset("broadcast-prores-hq-1080p25").with_overrides(SMALL)
    return run_qc(fault_clip, preset)


def _check(report, name):
    return next(check for check in report.to_dict()["checks"] if check["name"] == name)


def _spans(check) -> list[tuple[float, float]]:
    return [(fault["start_s"], fault["end_s"]) for fault in check["faults"]]


def test_faults_found_at_their_timecodes(fault_report):
    black, freeze, silence = (_check(fault_report, name) for name in ("black", "freeze", "silence"))
    levels, flash = _check(fault_report, "levels"), _check(fault_report, "flash")
    assert black["status"] == "warn" and _spans(black) == [pytest.approx((3.0, 4.0), abs=TOLERANCE_S)]
    assert black["faults"][0]["start_tc"] == "00:00:03:00" and black["faults"][0]["end_tc"] == "00:00:04:00"
    assert freeze["status"] == "warn" and _spans(freeze) == [pytest.approx((5.0, 7.0), abs=TOLERANCE_S)]
    assert freeze["faults"][0]["start_tc"] == "00:00:05:00"
    assert silence["status"] == "warn" and _spans(silence) == [pytest.approx((9.5, 11.0), abs=0.011)]
    assert levels["status"] == "fail" and _spans(levels) == [pytest.approx((1.0, 2.0), abs=TOLERANCE_S)]
    assert levels["value"] == pytest.approx(0.5, abs=0.02), "half the picture is superwhite"
    assert flash["status"] == "fail" and flash["value"] == 5.0
    (start, end), = _spans(flash)
    assert start == pytest.approx(8.0, abs=TOLERANCE_S) and 8.8 <= end <= 9.0 + TOLERANCE_S
    # Nothing else is mistaken for a fault: the flashes and the freeze are not stutter.
    assert _check(fault_report, "stutter")["status"] == "pass"
    assert fault_report.status == "fail" and not fault_report.passed  # broadcast: policy fail


def test_report_schema(fault_report):
    document = json.loads(json.dumps(fault_report.to_dict()))
    assert document["schema"] == "postprod.qc" and document["schema_version"] == QC_SCHEMA_VERSION
    assert set(document["loudness"]) >= {
        "integrated_lufs", "true_peak_dbtp", "lra_lu", "short_term_max_lufs", "momentary_max_lufs",
    }
    for check in document["checks"]:
        assert set(check) >= {"name", "status", "value", "faults"}
        assert check["status"] in ("pass", "warn", "fail")
    assert document["analysis"]["decode_passes"] == 1
    assert document["frame_count"] == 300 and document["frame_rate"] == "25"


def test_cli_qc_exit_codes(fault_clip, tmp_path, capsys):
    html = tmp_path / "report.html"
    assert main(["qc", str(fault_clip), "--preset", "broadcast-prores-hq-1080p25", "--json",
                 "--html", str(html)]) == 4
    document = json.loads(capsys.readouterr().out)
    assert document["status"] == "fail" and html.read_text().startswith("<!DOCTYPE html>")
    # The policy is what the report records; the exit code follows the printed status either way.
    assert main(["qc", str(fault_clip), "--preset", "broadcast-prores-hq-1080p25", "--json",
                 "--policy", "warn"]) == 4
    document = json.loads(capsys.readouterr().out)
    assert document["status"] == "fail" and document["passed"] is True and document["policy"] == "warn"


def _clean_source(folder: Path, level_lufs: float, click: bool) -> Path:
    """A moving 25 fps picture with a 1 kHz stereo tone at ``level_lufs`` (a 1 kHz stereo sine reads
    its peak in dBFS as LUFS), and with ``click`` a few one-sample clicks at 0 dBFS."""
    rate, seconds = 48000, 4
    t = np.arange(rate * seconds) / rate
    tone = 10 ** (level_lufs / 20) * np.sin(2 * np.pi * 1000 * t)
    if click:
        tone[[rate // 2, rate + 1234, 3 * rate - 77]] = [1.0, -1.0, 1.0]
    wav = folder / f"tone{level_lufs:g}{'c' if click else ''}.f32"
    np.tile(tone.astype("<f4"), (2, 1)).T.tofile(wav)
    path = folder / f"source{level_lufs:g}{'c' if click else ''}.mov"
    run_ffmpeg([
        "-f", "lavfi", "-i", f"testsrc2=s=320x180:r={RATE}:d={seconds}",
        "-f", "f32le", "-ar", str(rate), "-ac", "2", "-i", str(wav),
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", "-pix_fmt", "yuv420p",
        "-c:a", "pcm_f32le", "-shortest", str(path),
    ])  # fmt: skip
    return path


def _finish(source: Path, presets: list[str], folder: Path, overrides=None) -> dict:
    job = parse_job({
        "version": 1, "name": "norm", "shots": [{"source": str(source)}],
        "deliverables": [{"preset": name, "overrides": overrides or _small(name)} for name in presets],
    }, folder)
    return json.loads(finish(job, folder / "out").read_text())


def _small(preset_name: str) -> dict:
    preset = get_preset(preset_name)
    if preset.video.width and preset.video.height < preset.video.width:
        return SMALL
    if preset.video.width:
        return {"video": {"width": 180, "height": 180 * preset.video.height // preset.video.width // 2 * 2}}
    return {}


def _assert_normalised(manifest: dict) -> None:
    presets = load_presets()
    for output in manifest["outputs"]:
        preset = presets[output["preset"]]
        target = preset.loudness
        path = Path(output["path"])
        # The programme over the tracks that carry it (XDCAM's eight-mono layout spreads it over two).
        measured = measure_output(path, probe(path), programme_tracks(preset.audio),
                                  programme_channels=programme_channels(preset.audio)).sound.programme
        assert measured.integrated_lufs == pytest.approx(target.target_lufs, abs=0.5), output["preset"]
        assert measured.true_peak_dbtp <= target.max_true_peak_dbtp, output["preset"]
        assert output["qc"]["status"] != "fail", output["qc"]


@pytest.fixture(scope="module")
def clean_finish(tmp_path_factory) -> tuple[dict, list[str], Counter]:
    """A clean clip finished into two deliverables, with every ``av.open`` and every decode pass of
    :mod:`pipeline.media.output_decode` made while finishing counted: (manifest, names opened, passes)."""
    folder = tmp_path_factory.mktemp("clean")
    source = _clean_source(folder, -40.0, click=True)
    opened: list[str] = []
    real_open = av.open

    def counting_open(file, *args, **kwargs):
        opened.append(Path(file).name)
        return real_open(file, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, counting_decodes() as passes:
        patch.setattr(av, "open", counting_open)
        manifest = _finish(source, ["broadcast-prores-hq-1080p25", "web-h264-1080p"], folder)
    return manifest, opened, passes


def test_each_deliverable_is_decoded_once_for_verification_and_qc(clean_finish):
    """One picture and one sound decode per deliverable, made by verification on the partial file
    and reused by QC; the only other opening is verification's probe (no full decode)."""
    manifest, opened, passes = clean_finish
    names = [Path(output["path"]).name for output in manifest["outputs"]]
    assert len(names) == 2
    for name in names:
        partial = next(file for file, _ in passes if file.startswith(f".{name}.") and file.endswith(".partial"))
        assert passes[partial, "picture"] == 1 and passes[partial, "sound"] == 1, passes
        assert opened.count(partial) == 2, f"{partial}: probe and the one decode, got {opened.count(partial)} opens"
        assert opened.count(name) == 0, f"{name} was opened again after verification"
    assert sum(passes.values()) == 2 * len(names), passes
    for output in manifest["outputs"]:
        analysis = json.loads(Path(output["qc"]["report"]).read_text())["analysis"]
        assert analysis["decode_passes"] == 1 and analysis["decoded_by"] == "verification"


def test_qc_on_verifications_measures_matches_qc_decoding_the_file_itself(clean_finish):
    """The same verdicts and values whether QC reuses verification's measures or decodes the
    finished file on its own (``postprod qc``); only the sources' sync check is the job's."""
    manifest = clean_finish[0]
    for output in manifest["outputs"]:
        reused = json.loads(Path(output["qc"]["report"]).read_text())
        preset = get_preset(output["preset"]).with_overrides(_small(output["preset"]))
        own = run_qc(output["path"], preset).to_dict()
        assert own["analysis"]["decoded_by"] == "qc"
        assert [(c["name"], c["status"], c["value"], c["faults"]) for c in own["checks"]] == [
            (c["name"], c["status"], c["value"], c["faults"]) for c in reused["checks"] if c["name"] != "sync"]
        assert own["loudness"] | {"correction": None} == reused["loudness"] | {"correction": None}


def test_conformance_is_verifications_check_in_a_job_and_on_its_own(clean_finish):
    """One conformance check: the job reports verification's verdict, ``postprod qc`` on the same
    file reports the same; held to a preset it is off (25p under 24p, 320x180 under 640x360), the
    file fails with messages naming the field, what was expected and what it has."""
    manifest = clean_finish[0]
    for output in manifest["outputs"]:
        in_job = next(check for check in json.loads(Path(output["qc"]["report"]).read_text())["checks"]
                      if check["name"] == "conformance")
        preset = get_preset(output["preset"]).with_overrides(_small(output["preset"]))
        on_its_own = _check(run_qc(output["path"], preset), "conformance")
        assert in_job == on_its_own
        assert (on_its_own["status"], on_its_own["value"], on_its_own["detail"]) == ("pass", 0, "")
    web = next(output["path"] for output in manifest["outputs"] if output["preset"] == "web-h264-1080p")
    off = get_preset("web-h264-1080p").with_overrides({"video": {"frame_rate": 24, "width": 640, "height": 360}})
    check = _check(run_qc(web, off), "conformance")
    assert (check["status"], check["value"]) == ("fail", 3)
    assert check["detail"] == ("frame size: expected (640, 360), got (320, 180); frame rate: expected 24, got 25; "
                               "video duration: expected 25/6, got 4")  # its 100 frames last 4 s, not 100/24


@pytest.mark.parametrize("sound_s", [2.0, 1.92])
def test_a_file_on_its_own_has_its_sound_within_a_frame_of_its_picture(sound_s, tmp_path):
    """A file made as ``web-h264-1080p`` (320x180) says, 2 s of 25p picture: 2 s of sound conforms,
    two frames short of it (3840 samples, over the 1919 within a frame) does not."""
    path = tmp_path / "own.mp4"
    run_ffmpeg([
        "-f", "lavfi", "-i", f"testsrc2=s=320x180:r={RATE}:d=2,format=yuv420p,"
        "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv",
        "-f", "lavfi", "-i", f"sine=r=48000:d={sound_s}",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
        "-c:a", "aac", "-ac", "2", "-movflags", "+faststart", "-timecode", "00:00:00:00", str(path),
    ])  # fmt: skip
    check = _check(run_qc(path, get_preset("web-h264-1080p").with_overrides(SMALL)), "conformance")
    if sound_s == 2.0:
        assert (check["status"], check["detail"]) == ("pass", "")
    else:
        assert (check["status"], check["value"]) == ("fail", 1)
        assert check["detail"].startswith("audio track 1 samples: expected 96000 (±1919), got 9"), check["detail"]


def test_clean_clip_passes_every_check_and_a_limited_gain_says_so(clean_finish):
    """-40 LUFS with clicks at 0 dBFS: the gain alone would put the peaks far over the limit."""
    manifest = clean_finish[0]
    _assert_normalised(manifest)
    for output in manifest["outputs"]:
        assert output["loudness"]["mode"] == "linear+limiter"
        assert "true-peak limiter" in output["loudness"]["reason"]
        report = json.loads(Path(output["qc"]["report"]).read_text())
        assert [check["status"] for check in report["checks"]] == ["pass"] * len(report["checks"]), report
    assert Path(manifest["outputs"][0]["qc"]["html"]).name == "norm.qc.html"


def test_loud_input_is_turned_down_linearly(tmp_path):
    source = _clean_source(tmp_path, -8.0, click=False)
    manifest = _finish(source, ["broadcast-prores-hq-1080p2997"], tmp_path)
    _assert_normalised(manifest)
    correction = manifest["outputs"][0]["loudness"]
    assert correction["mode"] == "linear" and correction["gain_db"] == pytest.approx(-16.0, abs=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("level", [-40.0, -23.0, -8.0])
def test_every_loudness_preset_meets_its_target(level, tmp_path):
    """Every built-in SDR preset with a loudness target, from quiet, on-target and loud inputs with
    peaks at 0 dBFS, measured on the encoded deliverable. (An HDR10 preset takes HDR sources only;
    its sound chain is the same.)"""
    names = [name for name, preset in load_presets().items()
             if preset.loudness is not None and preset.video.colour != "bt2020-pq"]
    source = _clean_source(tmp_path, level, click=True)
    _assert_normalised(_finish(source, names, tmp_path))


def test_broadcast_policy_fails_the_job_but_keeps_the_reports(fault_clip, tmp_path):
    job = parse_job({
        "version": 1, "name": "faulty", "shots": [{"source": str(fault_clip), "out": 9.2}],
        "deliverables": [{"preset": "broadcast-prores-hq-1080p25", "overrides": SMALL}],
    }, tmp_path)
    with pytest.raises(QcFailedError, match="flash"):
        finish(job, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "faulty.manifest.json").read_text())
    # The broadcast preset legalises the superwhite; the flash is not the finisher's to fix.
    assert manifest["outputs"][0]["qc"]["failed"] == ["flash"]
    assert manifest["outputs"][0]["legalise"]["touched_share"] > 0
    warned = job.model_copy(update={"qc": job.qc.model_copy(update={"policy": "warn"})})
    assert finish(warned, tmp_path / "warned").exists()


def test_limiter_keeps_timing_to_the_sample(tmp_path):
    """The limiter's look-ahead is compensated: a click lands on the same sample after limiting."""
    source = _clean_source(tmp_path, -40.0, click=True)
    manifest = _finish(source, ["broadcast-prores-hq-1080p25"], tmp_path)
    from tests.measure import decode_audio

    samples, rate, _ = decode_audio(manifest["outputs"][0]["path"])
    assert samples.shape[1] == 4 * rate
    envelope = np.abs(samples[0])
    assert int(np.argmax(envelope[: rate])) == pytest.approx(rate // 2, abs=2)
    tone_only = measure(samples[:, rate // 4 : rate // 2 - 2400], rate)
    assert tone_only.true_peak_dbtp < -1.0


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="no chromium on PATH (CI installs Debian's chromium for this)")
def test_html_report_opens_in_chromium(fault_report, tmp_path):
    page = write_html("faults", [fault_report], tmp_path / "faults.qc.html")
    screenshot = tmp_path / "shot.png"
    common = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              "--enable-logging=stderr", "--v=0"]
    shot = subprocess.run(
        [*common, "--window-size=1100,1500", f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=False)
    console = [line for line in (shot.stderr + dom.stderr).splitlines() if "CONSOLE" in line]
    assert not console, console
    assert dom.stdout.count("<img") == 12 and dom.stdout.count("<tr>") == 1 + len(fault_report.checks)
    image = cv2.imread(str(screenshot))
    assert image is not None and image.shape[:2] == (1500, 1100)
    # The contact sheet: testsrc2's saturated colour bars near the top of the page.
    top = image[150:450]
    saturated = (top.max(axis=2).astype(int) - top.min(axis=2)) > 150
    assert saturated.mean() > 0.05
    # The checks table: the red FAIL badges (#b3261e) are drawn.
    badge = np.all(np.abs(image.astype(int) - [0x1E, 0x26, 0xB3]) < 12, axis=2)
    assert badge.sum() > 500


def test_html_report_escapes_every_text_from_the_report(make_colour_clip, tmp_path):
    """A file name that is markup shows as text: the template autoescapes, only the drawn SVG is raw."""
    hostile = tmp_path / '<img src=x onerror=alert(1)> & "q".mp4'
    shutil.copyfile(make_colour_clip("gray", seconds=1), hostile)
    page = write_html("job <b>", [run_qc(hostile, get_preset("web-h264-1080p"))], tmp_path / "r.html").read_text()
    assert "<img src=x" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &#34;q&#34;.mp4" in page
    assert "QC: job &lt;b&gt;" in page
    assert page.count("<svg") == 2 and page.count("<figure>") == 12


def test_a_file_measured_without_its_picture_has_its_frames_counted_and_its_sound_measured(fault_clip):
    """What verification measures of a file QC never reads (conformed editorial media): frames
    counted by demuxing, no picture decode, the same sound measures as the full decode."""
    info = probe(fault_clip)
    with counting_decodes() as passes:
        counted = measure_output(fault_clip, info, (0,), picture=False)
    full = measure_output(fault_clip, info, (0,))
    assert passes == {(fault_clip.name, "sound"): 1}
    assert counted.picture is None and counted.frame_count == full.frame_count == 300
    assert counted.sound.tracks == full.sound.tracks
    assert counted.sound.programme.integrated_lufs == full.sound.programme.integrated_lufs
