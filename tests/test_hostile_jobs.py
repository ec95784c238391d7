"""Job files as an adversary writes them: each is refused at once by ``postprod run`` with exit 2
(the job) or 3 (the media), a message naming the file or field, no traceback, nothing written into
the output folder or anywhere else, and nothing hashed, decoded or imported first."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from rich.console import Console

import flows.finish_job
import postprod.cli as cli
from pipeline.errors import JobError, MediaError
from pipeline.inputs import check_input_file
from pipeline.model.job import load_job
from pipeline.model.job_file import MAX_JOB_FILE_BYTES
from pipeline.plan.overlay_layout import font_face, wrap
from pipeline.plan.fonts import default_font_path

CHEAP_PRESET = "master-prores-4444"
SENTINEL_MODULE = "hostile_graphics_sentinel"


@pytest.fixture(autouse=True)
def no_flow(monkeypatch):
    """Hostile input must be refused before the Prefect flow (and its temporary server) starts."""

    def refuse(*args, **kwargs):
        pytest.fail("hostile input reached the Prefect flow instead of being refused first")

    monkeypatch.setattr(flows.finish_job, "finish_job", refuse)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(cli, "stderr", Console(stderr=True, width=10_000))


@pytest.fixture
def project(tmp_path, make_clip) -> Path:
    """A job folder holding a valid ``clip.mp4`` and a sentinel graphics module whose import
    writes ``imported.txt`` beside it."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copyfile(make_clip("tiny-161x121-25"), folder / "clip.mp4")
    (folder / f"{SENTINEL_MODULE}.py").write_text(
        "from pathlib import Path\n"
        "Path(__file__).with_name('imported.txt').write_text('import-time code ran')\n"
        "def make(**kwargs):\n    raise RuntimeError('never called')\n"
    )
    return folder


def _job(**fields) -> dict:
    return {"version": 1, "name": "hostile", "shots": [{"source": "clip.mp4"}],
            "deliverables": [{"preset": CHEAP_PRESET}], **fields}


def _write(folder: Path, data: dict, name: str = "job.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.mp4")
    return _write(folder, _job(shots=[{"source": "pipe.mp4"}]))


def _devzero_link(folder: Path) -> Path:
    (folder / "zero.mp4").symlink_to("/dev/zero")
    return _write(folder, _job(shots=[{"source": "zero.mp4"}]))


def _link_loop(folder: Path) -> Path:
    (folder / "a.mp4").symlink_to(folder / "b.mp4")
    (folder / "b.mp4").symlink_to(folder / "a.mp4")
    return _write(folder, _job(shots=[{"source": "a.mp4"}]))


def _folder_as_source(folder: Path) -> Path:
    (folder / "takes.mp4").mkdir()
    return _write(folder, _job(shots=[{"source": "takes.mp4"}]))


def _job_file_as_source(folder: Path) -> Path:
    return _write(folder, _job(shots=[{"source": "job.yaml"}]))


def _passwd_captions(folder: Path) -> Path:
    return _write(folder, _job(overlays=[{"kind": "captions", "captions": "/etc/passwd"}]))


def _dotdot_source(folder: Path) -> Path:
    (folder.parent / "elsewhere.mp4").write_bytes((folder / "clip.mp4").read_bytes())
    return _write(folder, _job(shots=[{"source": "../elsewhere.mp4"}]))


def _link_out_of_folder(folder: Path) -> Path:
    (folder / "hosts.srt").symlink_to("/etc/hosts")
    return _write(folder, _job(overlays=[{"kind": "captions", "captions": "hosts.srt"}]))


def _x264_stats(folder: Path) -> Path:
    options = {"x264-params": f"pass=1:stats={folder.parent / 'stats.log'}"}
    return _write(folder, _job(deliverables=[{"preset": "review-540p", "overrides": {"video": {"options": options}}}]))


def _pass_and_passlogfile(folder: Path) -> Path:
    options = {"pass": 1, "passlogfile": str(folder.parent / "x")}
    return _write(folder, _job(deliverables=[{"preset": "review-540p", "overrides": {"video": {"options": options}}}]))


def _filter_script(folder: Path) -> Path:
    options = {"filter_script": "/etc/passwd"}
    return _write(folder, _job(deliverables=[{"preset": "review-540p", "overrides": {"video": {"options": options}}}]))


def _path_in_a_value(folder: Path) -> Path:
    options = {"preset": "../../tmp/x"}
    return _write(folder, _job(deliverables=[{"preset": "review-540p", "overrides": {"video": {"options": options}}}]))


def _graphics_module(folder: Path) -> Path:
    return _write(folder, _job(overlays=[{"kind": "graphics", "callable": f"{SENTINEL_MODULE}:make"}]))


def _overrides(video: dict) -> Callable[[Path], Path]:
    return lambda folder: _write(folder, _job(deliverables=[{"preset": "review-540p", "overrides": {"video": video}}]))


def _sequence_rate(rate) -> Callable[[Path], Path]:
    return lambda folder: _write(folder, _job(sequence={"frame_rate": rate}))


def _naming(template: str, deliverables: int = 1) -> Callable[[Path], Path]:
    presets = ["review-540p", CHEAP_PRESET][:deliverables]
    return lambda folder: _write(folder, _job(output={"naming": template},
                                              deliverables=[{"preset": name} for name in presets]))


def _long_title(folder: Path) -> Path:
    return _write(folder, _job(overlays=[{"kind": "title", "text": "W" * 3000}]))


def _many_overlays(folder: Path) -> Path:
    return _write(folder, _job(overlays=[{"kind": "timecode"}] * 101))


def _one_megabyte_title(folder: Path) -> Path:
    return _write(folder, _job(overlays=[{"kind": "title", "text": "W" * 1_000_000}]))


def _yaml_bomb(folder: Path) -> Path:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [*a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}, "
              f"*a{n - 1}, *a{n - 1}, *a{n - 1}]" for n in range(1, 9)]
    path = folder / "job.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


CASES: dict[str, tuple[Callable[[Path], Path], int, list[str]]] = {
    # Inputs: regular, readable files inside the job's folder, never the job file itself.
    "fifo-source": (_fifo, 3, ["pipe.mp4: not a regular file: it is a FIFO (named pipe) (named by shots.0.source)"]),
    "dev-zero-via-link": (_devzero_link, 2, ["shots.0.source: /dev/zero is outside the folders this job may read"]),
    "symlink-loop": (_link_loop, 3, ["a.mp4: a symbolic link loop (named by shots.0.source)"]),
    "folder-as-source": (_folder_as_source, 3, ["takes.mp4: not a regular file: it is a folder"]),
    "job-file-as-source": (_job_file_as_source, 2, ["shots.0.source: names the job file itself"]),
    "etc-passwd-captions": (_passwd_captions, 2, ["overlays.0.captions: /etc/passwd is outside the folders"]),
    "dotdot-source": (_dotdot_source, 2, ["elsewhere.mp4 is outside the folders this job may read"]),
    "link-out-of-folder": (_link_out_of_folder, 2, ["overlays.0.captions: /etc/hosts is outside"]),
    # Encoder options: an allow-list per encoder, values of the right shape.
    "x264-params-stats": (_x264_stats, 2, ["deliverables.0.overrides.video: options.x264-params: "
                                          "'pass=1:stats=", "'pass' is not an allowed key"]),
    "pass-passlogfile": (_pass_and_passlogfile, 2, ["options.pass: not an option postprod passes to libx264",
                                                    "options.passlogfile: not an option"]),
    "filter-script": (_filter_script, 2, ["options.filter_script: not an option postprod passes to libx264"]),
    "path-in-option-value": (_path_in_a_value, 2, ["options.preset: '../../tmp/x' is not allowed: expected one of"]),
    # Motion graphics: only from modules the operator allows, checked before import.
    "graphics-module-not-allowed": (_graphics_module, 2, [
        f"overlays.0.callable: module '{SENTINEL_MODULE}' is not allowed to run here (allowed: none)"]),
    # Limits in the schema.
    "frame-rate-0.001": (_sequence_rate(0.001), 2, ["sequence.frame_rate: frame rate 1/1000 is outside 1 to 240"]),
    "frame-rate-100000": (_sequence_rate(100000), 2, ["sequence.frame_rate: frame rate 100000 is outside 1 to 240"]),
    "override-rate-100000": (_overrides({"frame_rate": 100000}), 2, [
        "deliverables.0.overrides.video.frame_rate: frame rate 100000 is outside"]),
    "raster-100000": (_overrides({"width": 100000, "height": 100000}), 2, [
        "deliverables.0.overrides.video.width: Input should be less than or equal to 8192"]),
    "odd-420-size": (_overrides({"width": 1281, "height": 721}), 2, [
        "deliverables.0.overrides.video: width: 1281 is odd; yuv420p needs an even width",
        "deliverables.0.overrides.video: height: 721 is odd; yuv420p needs an even height"]),
    "title-3000-chars": (_long_title, 2, ["overlays.0.text: String should have at most 2000 characters"]),
    "101-overlays": (_many_overlays, 2, ["overlays: List should have at most 100 items"]),
    "title-1MB": (_one_megabyte_title, 2, [f"job.yaml: the job file is", f"the limit is {MAX_JOB_FILE_BYTES} bytes"]),
    "yaml-alias-bomb": (_yaml_bomb, 2, ["job.yaml: the job expands to more than 100000 values"]),
    # Naming templates: plain fields, visible, distinct file names.
    "naming-format-spec": (_naming("{job:x}"), 2, ["output.naming: naming template '{job:x}': write fields plainly"]),
    "naming-padding-300": (_naming("{job:>300}"), 2, ["output.naming: naming template '{job:>300}': write fields"]),
    "naming-nul-byte": (_naming("{job}\x00x"), 2, ["output.naming: naming template", "between fields use only"]),
    "naming-dotdot": (_naming(".."), 2, ["output.naming: naming template '..' names no field"]),
    "naming-hidden": (_naming(".{job}"), 2, ["output.naming: '.{job}' makes the file name '.hostile'"]),
    "naming-empty": (_naming(""), 2, ["output.naming: naming template '' names no field"]),
    "naming-collision": (_naming("{job}", deliverables=2), 2, [
        "output.naming: '{job}' gives review-540p and master-prores-4444 the same file name 'hostile'"]),
}


def _files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if not path.is_dir() or path.is_symlink()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_job_is_refused_cleanly(case, project, tmp_path, capsys, monkeypatch):
    make, exit_code, fragments = CASES[case]
    monkeypatch.syspath_prepend(str(project))  # the sentinel module is importable, were it imported
    monkeypatch.delenv("POSTPROD_GRAPHICS_MODULES", raising=False)
    monkeypatch.delenv("POSTPROD_READ_ROOTS", raising=False)
    job_file = make(project)
    out_dir = tmp_path / "out"
    before = _files_under(tmp_path)

    started = time.monotonic()
    code = cli.main(["run", str(job_file), "--out", str(out_dir)])
    seconds = time.monotonic() - started

    err = capsys.readouterr().err
    assert code == exit_code, err
    assert err.startswith("postprod: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    assert seconds < 5, f"refusing took {seconds:.1f} s"
    assert not out_dir.exists()
    assert _files_under(tmp_path) == before, "nothing is written anywhere, the sentinel not imported"
    assert SENTINEL_MODULE not in sys.modules


def test_allowed_read_roots_and_graphics_modules_let_the_same_job_through_the_check(project, tmp_path, monkeypatch):
    """The operator's settings widen what a job may read and import; the job itself cannot."""
    from pipeline.plan.admission import JobAccess, check_job_access
    from pipeline.model.presets import load_presets

    job_file = _dotdot_source(project)
    monkeypatch.setenv("POSTPROD_READ_ROOTS", str(tmp_path))
    check_job_access(load_job(job_file), JobAccess.for_job_file(job_file), load_presets())

    job_file = _graphics_module(project)
    with pytest.raises(JobError, match="is not allowed to run here"):
        check_job_access(load_job(job_file), JobAccess.for_job_file(job_file), load_presets())
    monkeypatch.setenv("POSTPROD_GRAPHICS_MODULES", "other, hostile_graphics_sentinel")
    check_job_access(load_job(job_file), JobAccess.for_job_file(job_file), load_presets())
    assert not (project / "imported.txt").exists(), "checking a module's name never imports it"


def test_dev_zero_allowed_by_the_operator_is_still_refused_as_a_device(project, tmp_path, capsys):
    job_file = _devzero_link(project)
    assert cli.main(["run", str(job_file), "--out", str(tmp_path / "out"), "--allow-read", "/dev"]) == 3
    assert "/dev/zero: not a regular file: it is a device (named by shots.0.source)" in capsys.readouterr().err


def test_an_unreadable_source_is_a_media_error_naming_it(project, monkeypatch):
    """As root every file is readable, so the refusal is simulated at the open."""
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if str(path).endswith("clip.mp4"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(MediaError, match=r"clip\.mp4: cannot be read \(permission denied\) \(named by shots\.0\.source\)"):
        check_input_file(project / "clip.mp4", "shots.0.source")


def test_non_utf8_names_are_refused_naming_the_file(project, tmp_path, capsys):
    clip = project / os.fsdecode(b"cl\xffip.mp4")
    shutil.copyfile(project / "clip.mp4", clip)
    assert cli.main(["finish", str(clip), "--preset", CHEAP_PRESET, "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "cl\\xffip.mp4: the file name is not valid UTF-8; rename the file" in err and "Traceback" not in err

    job_file = project / os.fsdecode(b"job\xff.yaml")
    _write(project, _job(), name=job_file.name)
    assert cli.main(["run", str(job_file), "--out", str(tmp_path / "out")]) == 2
    assert "job\\xff.yaml: the job file's name is not valid UTF-8; rename it" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_50_megabyte_job_file_is_refused_unread(project, tmp_path, capsys):
    job_file = project / "job.yaml"
    with job_file.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    started = time.monotonic()
    assert cli.main(["run", str(job_file), "--out", str(tmp_path / "out")]) == 2
    assert time.monotonic() - started < 1
    assert f"job.yaml: the job file is {50 * 1024 * 1024} bytes; the limit is" in capsys.readouterr().err


def test_json_job_files_are_read_as_json(project):
    job_file = project / "job.json"
    job_file.write_text('{"version": 1, "name": "from-json",\t"shots": [{"source": "clip.mp4"}],'
                        ' "deliverables": [{"preset": "review-540p"}]}')
    job = load_job(job_file)
    assert (job.name, job.shots[0].source) == ("from-json", (project / "clip.mp4").resolve())
    job_file.write_text('{"version": 1,')
    with pytest.raises(JobError, match=r"job\.json: cannot be read as JSON"):
        load_job(job_file)


def test_wrapping_is_linear_in_text_length():
    """Breaking one unbroken 'word' used to cost the cube of its length (4,000 characters: 323 s)."""
    faces = (font_face(default_font_path()),)
    timings = {}
    for length in (2_000, 20_000):
        started = time.perf_counter()
        lines = wrap("W" * length, 65, faces, 1700)
        timings[length] = time.perf_counter() - started
        assert "".join(lines) == "W" * length and max(map(len, lines)) < 60
    assert timings[2_000] < 0.2
    assert timings[20_000] < 25 * timings[2_000] + 0.05, timings


def test_a_job_too_large_for_a_flow_parameter_is_refused_as_bad_input(tmp_path):
    """Prefect refuses flow parameters over 512 KB; a job that large is the job file's fault (exit 2),
    not a fault to retry every night."""
    from pipeline.model.job import MAX_VALIDATED_JOB_BYTES, parse_job

    cues = [{"start": n, "end": n + 1, "text": f"line {n} of a long programme"} for n in range(2000)]
    data = _job(overlays=[{"kind": "captions", "cues": cues}] * 10)
    with pytest.raises(JobError, match=rf"^job: the job is too large \(\d+ bytes as validated; the limit is "
                                       rf"{MAX_VALIDATED_JOB_BYTES}\)") as raised:
        parse_job(data, tmp_path)
    assert raised.value.exit_code == 2
