"""The batch's pure parts: what in an inbox is a job, fingerprints and staleness, setting bad input
aside, render slots, and which failures are for good. The flow itself runs in tests/test_server.py."""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path

import pytest
import yaml

from pipeline.service.batch import qc_status, failure_bin
from pipeline.errors import FFmpegError, JobError, MediaError, MissingCapabilityError, IncompleteRenderError
from pipeline.service.fingerprint import job_fingerprint, job_inputs, stamp_manifest, why_stale
from pipeline.service.inbox import clip_job, load_entries, quarantine, referenced_files, scan_inbox
from pipeline.model.job import job_for_clips, load_job
from pipeline.model.presets import load_presets
from pipeline.service.resources import machine_slot, uses_gpu
from postprod.cli import build_parser


def _job_file(path: Path, name: str, sources: list[str], preset: str = "review-540p") -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "name": name, "shots": [{"source": s} for s in sources],
                                    "deliverables": [{"preset": preset}]}))
    return path


@pytest.fixture
def inbox(tmp_path) -> Path:
    folder = tmp_path / "inbox"
    (folder / "clips").mkdir(parents=True)
    for name in ("loose.mp4", "claimed.mp4", ".partial-copy.mp4", "clips/inside.mp4", "notes.txt"):
        (folder / name).write_bytes(name.encode() * 100)
    _job_file(folder / "spot.yaml", "spot", ["claimed.mp4", "clips/inside.mp4"])
    return folder


def test_scan_finds_job_files_and_unclaimed_loose_clips(inbox):
    items = scan_inbox(inbox)
    assert [(item.path.name, item.kind) for item in items] == [("spot.yaml", "job_file"), ("loose.mp4", "clip")]


def test_loose_clips_follow_the_inbox_template(inbox):
    assert [d.preset for d in clip_job(inbox / "loose.mp4", inbox, ["social-1x1"]).deliverables] == ["social-1x1"]
    (inbox / "_template.yaml").write_text(yaml.safe_dump(
        {"deliverables": [{"preset": "review-540p", "overrides": {"video": {"width": 320}}}]}))
    job = clip_job(inbox / "loose.mp4", inbox, ["social-1x1"])
    assert (job.name, job.deliverables[0].overrides, job.shots[0].source) == (
        "loose", {"video": {"width": 320}}, (inbox / "loose.mp4").resolve())
    (inbox / "_template.yaml").write_text(yaml.safe_dump({"name": "x", "deliverables": []}))
    with pytest.raises(JobError, match="_template.yaml: a template is a job mapping without 'name'"):
        clip_job(inbox / "loose.mp4", inbox, [])


def test_a_clip_with_any_name_gets_a_valid_job_and_errors_name_the_clip(inbox):
    clip = inbox / "café шот 1.mp4"
    (inbox / "loose.mp4").rename(clip)
    job = clip_job(clip, inbox, ["social-1x1"])
    assert job.name == "caf______1"
    with pytest.raises(JobError, match="café шот 1.mp4:\ndeliverables: List should have at least 1 item"):
        clip_job(clip, inbox, [])


def test_a_second_job_of_the_same_name_is_refused(inbox):
    (inbox / "loose.yaml").write_text(yaml.safe_dump({"version": 1, "name": "loose", "shots": [
        {"source": "clips/inside.mp4"}], "deliverables": [{"preset": "review-540p"}]}))
    entries = load_entries(scan_inbox(inbox), inbox, ["review-540p"])
    assert [(entry.item.path.name, entry.error is None) for entry in entries] == [
        ("loose.yaml", True), ("spot.yaml", True), ("loose.mp4", False)]
    assert "job name 'loose' is already taken by loose.yaml" in entries[2].error


def test_fingerprint_changes_with_what_the_outputs_depend_on(inbox, tmp_path, monkeypatch):
    job = load_job(inbox / "spot.yaml")
    presets = load_presets()
    base = job_fingerprint(job, presets, "1.0", "n9")
    assert job_fingerprint(load_job(inbox / "spot.yaml"), load_presets(), "1.0", "n9") == base

    changed_preset = presets["review-540p"].model_copy(update={"faststart": False})
    changed = job_fingerprint(job, {**presets, "review-540p": changed_preset}, "1.0", "n9")
    assert [key for key in base.parts if base.parts[key] != changed.parts[key]] == ["presets"]
    assert job_fingerprint(job, presets, "1.1", "n9").parts["postprod"] != base.parts["postprod"]
    (inbox / "claimed.mp4").write_bytes(b"another take")
    assert job_fingerprint(job, presets, "1.0", "n9").parts["inputs"] != base.parts["inputs"]
    other = job.model_copy(update={"name": "spot2"})
    assert job_fingerprint(other, presets, "1.0", "n9").parts["job"] != base.parts["job"]
    with pytest.raises(MediaError, match="gone.mp4: file not found"):
        job_fingerprint(job_for_clips([tmp_path / "gone.mp4"], ["review-540p"], "gone"), presets, "1.0", "n9")
    with pytest.raises(JobError, match="unknown preset 'nope'"):
        job_fingerprint(job_for_clips([inbox / "loose.mp4"], ["nope"], "l"), presets, "1.0", "n9")


def test_captions_logos_fonts_models_and_the_media_preset_count_as_inputs(inbox):
    for name in ("subs.srt", "logo.png", "face.ttf", "sr.onnx"):
        (inbox / name).write_bytes(name.encode())
    document = {"version": 1, "name": "dressed", "shots": [{"source": "claimed.mp4"}],
                "deliverables": [{"preset": "review-540p"}], "enhance": {"upscale": "learned", "model": "sr.onnx"},
                "styles": {"big": {"font": "face.ttf"}},
                "overlays": [{"kind": "captions", "captions": "subs.srt"}, {"kind": "logo", "image": "logo.png"}]}
    (inbox / "dressed.yaml").write_text(yaml.safe_dump(document))
    named = {"claimed.mp4", "subs.srt", "logo.png", "face.ttf", "sr.onnx"}
    assert {path.name for path in referenced_files(inbox / "dressed.yaml")} == named
    job, presets = load_job(inbox / "dressed.yaml"), load_presets()
    assert {path.name for path in job_inputs(job, presets)} == named
    base = job_fingerprint(job, presets, "1.0", "n9")
    for name in ("subs.srt", "logo.png", "face.ttf", "sr.onnx"):
        (inbox / name).write_bytes(b"edited in place")
        edited = job_fingerprint(job, presets, "1.0", "n9")
        assert [key for key in base.parts if base.parts[key] != edited.parts[key]] == ["inputs"], name
        base = edited
    # Conformed media renders with editorial.media_preset, so that preset's contents count too.
    conformed = job.model_copy(update={"editorial": job.editorial.model_copy(update={"conformed_media": True})})
    media_preset = presets["prores-lt-1080p"].model_copy(update={"faststart": not presets["prores-lt-1080p"].faststart})
    assert job_fingerprint(conformed, {**presets, "prores-lt-1080p": media_preset}, "1.0", "n9").parts["presets"] != (
        job_fingerprint(conformed, presets, "1.0", "n9").parts["presets"])
    # A bad job file still takes its loose files along when set aside, but not one another job needs.
    (inbox / "dressed.yaml").write_text(yaml.safe_dump({**document, "deliverables": []}))
    (item,) = [item for item in scan_inbox(inbox) if item.path.name == "dressed.yaml"]
    folder = quarantine(item, inbox, "deliverables: empty", in_use={(inbox / "logo.png").resolve()})
    assert sorted(path.name for path in folder.iterdir()) == sorted(named - {"logo.png"} | {"dressed.yaml", "reason.txt"})
    assert (inbox / "logo.png").is_file()


def test_an_empty_inbox_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("POSTPROD_INBOX", "")
    monkeypatch.setenv("POSTPROD_OUTBOX", "")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve"])
    monkeypatch.setenv("POSTPROD_INBOX", "/data/inbox")
    args = build_parser().parse_args(["serve", "--out", "out"])
    assert args.inbox == Path("/data/inbox")


def test_a_job_is_stale_until_its_manifest_matches_and_outputs_are_in_place(inbox, tmp_path):
    job = load_job(inbox / "spot.yaml")
    fingerprint = job_fingerprint(job, load_presets(), "1.0", "n9")
    manifest = tmp_path / "spot.manifest.json"
    assert why_stale(manifest, fingerprint) == "no manifest from an earlier run"
    output = tmp_path / "spot_review-540p.mp4"
    output.write_bytes(b"x" * 10)
    manifest.write_text(json.dumps({"outputs": [{"path": str(output), "size_bytes": 10}], "qc": {"status": "pass"}}))
    assert why_stale(manifest, fingerprint) == "the manifest has no fingerprint"
    stamp_manifest(manifest, fingerprint, inbox / "spot.yaml")
    assert why_stale(manifest, fingerprint) is None
    assert json.loads(manifest.read_text())["qc"] == {"status": "pass"}, "other keys are kept"
    assert why_stale(manifest, job_fingerprint(job, load_presets(), "2.0", "n9")) == (
        "changed since the last run: postprod")
    output.write_bytes(b"x" * 5)
    assert why_stale(manifest, fingerprint) == f"output changed size: {output}"
    output.unlink()
    assert why_stale(manifest, fingerprint) == f"output missing: {output}"


def test_quarantine_takes_loose_clips_along_unless_another_job_needs_them(inbox):
    (inbox / "also.mp4").write_bytes(b"also")
    _job_file(inbox / "bad.yaml", "bad", ["claimed.mp4", "also.mp4"])
    (item,) = [item for item in scan_inbox(inbox) if item.path.name == "bad.yaml"]
    folder = quarantine(item, inbox, "shots.0: nothing good", in_use={(inbox / "claimed.mp4").resolve()})
    assert folder == inbox / "failed" / "bad"
    assert sorted(p.name for p in folder.iterdir()) == ["also.mp4", "bad.yaml", "reason.txt"]
    assert (inbox / "claimed.mp4").is_file(), "spot.yaml still needs it"
    assert "shots.0: nothing good" in (folder / "reason.txt").read_text()
    _job_file(inbox / "bad.yaml", "bad", [])
    assert quarantine(item, inbox, "again") == inbox / "failed" / "bad-2"


def test_which_bin_each_failure_lands_in():
    assert failure_bin(FFmpegError(["ffmpeg"], 255, [])) == "transient"  # stopped by SIGTERM
    assert failure_bin(FFmpegError(["ffmpeg"], -9, [])) == "transient"  # killed
    assert failure_bin(IncompleteRenderError("a.mp4", "exited without writing it")) == "transient"
    assert failure_bin(FFmpegError(["ffmpeg"], 183, [])) == "bad_input"  # invalid data
    assert failure_bin(MediaError("a.mp4", "unreadable")) == failure_bin(JobError("bad")) == "bad_input"
    assert failure_bin(MissingCapabilityError("no libx265")) == "operator"
    assert failure_bin(OSError(errno.ENOSPC, "No space left on device")) == "transient"
    assert failure_bin(OSError(errno.ENAMETOOLONG, "File name too long")) == "bad_input"
    assert failure_bin(ZeroDivisionError("division by zero")) == "internal"
    assert failure_bin(UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")) == "internal"
    # The worst of the deliverables' QC statuses, as build_manifest writes them.
    outputs = [{"qc": {"status": "pass"}}, {"qc": {"status": "warn"}}, {"qc": None}]
    assert [qc_status(m) for m in ({}, {"outputs": outputs[2:]}, {"outputs": outputs},
                                   {"outputs": [*outputs, {"qc": {"status": "fail"}}]})] == [
        None, None, "warn", "fail"]


def test_a_job_naming_itself_as_a_source_is_set_aside_once(inbox):
    _job_file(inbox / "selfish.yaml", "selfish", ["selfish.yaml", "loose.mp4"])
    (item,) = [item for item in scan_inbox(inbox) if item.path.name == "selfish.yaml"]
    folder = quarantine(item, inbox, "selfish.yaml: not a video")
    assert sorted(p.name for p in folder.iterdir()) == ["loose.mp4", "reason.txt", "selfish.yaml"]


def test_a_broken_template_is_the_operators_error_not_the_clips(inbox):
    (inbox / "_template.yaml").write_text("deliverables: [unclosed\n")
    (entry,) = [e for e in load_entries(scan_inbox(inbox), inbox, ["review-540p"]) if e.item.path.name == "loose.mp4"]
    assert entry.job is None and entry.operator_error
    assert entry.error.startswith(f"{inbox}/_template.yaml: cannot be read as YAML")
    (inbox / "_template.yaml").write_text(yaml.safe_dump({"deliverables": [{"preset": "web-h264-108p"}]}))
    (entry,) = [e for e in load_entries(scan_inbox(inbox), inbox, ["review-540p"], load_presets().keys())
                if e.item.path.name == "loose.mp4"]
    assert entry.operator_error
    assert entry.error.startswith(f"{inbox}/_template.yaml: unknown preset(s) web-h264-108p; known presets: ")


def test_a_file_name_that_is_not_utf8_is_bad_input_named_readably(inbox):
    odd = inbox / os.fsdecode(b"caf\xe9.mp4")
    odd.write_bytes(b"x")
    entries = {entry.item.path.name: entry for entry in load_entries(scan_inbox(inbox), inbox, ["review-540p"])}
    entry = entries[odd.name]
    assert entry.job is None and not entry.operator_error
    assert entry.error == f"{inbox}/caf\\xe9.mp4: the file name is not valid UTF-8; rename the file"
    folder = quarantine(entry.item, inbox, entry.error)
    assert "caf\\xe9.mp4: the file name is not valid UTF-8" in (folder / "reason.txt").read_text()


def test_render_slots_bound_concurrent_holders(tmp_path):
    holding, most = [], []
    lock = threading.Lock()

    def render() -> None:
        with machine_slot("render", 2, tmp_path):
            with lock:
                holding.append(1)
                most.append(len(holding))
            time.sleep(0.3)
            with lock:
                holding.pop()

    threads = [threading.Thread(target=render) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(most) == 2 and len(most) == 4


def test_gpu_renders_are_told_apart():
    assert uses_gpu(["h264_nvenc", "aac"], []) and uses_gpu(["libx264"], ["scale_cuda"])
    assert not uses_gpu(["libx264", "prores_ks", "aac"], ["scale", "xfade"])


def test_a_rerun_removes_what_it_no_longer_makes_and_nothing_outside_its_folder(tmp_path):
    """After a preset change the old deliverable and its QC report go; shared files and files an
    old manifest names outside the job's folder stay."""
    from pipeline.service.fingerprint import remove_superseded_outputs

    folder, elsewhere = tmp_path / "out" / "spot", tmp_path / "elsewhere.mp4"
    folder.mkdir(parents=True)
    names = ("spot_web.mp4", "spot_web.qc.json", "spot_social.mp4", "spot_social.qc.json", "spot.qc.html", "spot.otio")
    for name in (*names, "notes.txt"):
        (folder / name).write_text(name)
    elsewhere.write_text("not the job's")

    def manifest(label: str, extra: tuple[Path, ...] = ()) -> dict:
        outputs = [{"path": str(folder / f"spot_{label}.mp4"),
                    "qc": {"report": str(folder / f"spot_{label}.qc.json"), "html": str(folder / "spot.qc.html")}}]
        outputs += [{"path": str(path), "qc": None} for path in extra]
        return {"outputs": outputs, "editorial": [str(folder / "spot.otio")]}

    current = folder / "spot.manifest.json"
    current.write_text(json.dumps(manifest("social")))
    removed = remove_superseded_outputs(manifest("web", extra=(elsewhere,)), current)

    assert sorted(path.name for path in removed) == ["spot_web.mp4", "spot_web.qc.json"]
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        ["notes.txt", "spot.manifest.json", "spot.otio", "spot.qc.html", "spot_social.mp4", "spot_social.qc.json"])
    assert elsewhere.exists()
    assert remove_superseded_outputs(None, current) == []


def test_a_link_loop_a_job_names_neither_crashes_the_scan_nor_the_watch(inbox):
    """The watch folder looks at every file a job names each second: a loop must not stop it."""
    from pipeline.service.inbox import file_signature

    (inbox / "loop-a.mp4").symlink_to(inbox / "loop-b.mp4")
    (inbox / "loop-b.mp4").symlink_to(inbox / "loop-a.mp4")
    _job_file(inbox / "looped.yaml", "looped", ["loop-a.mp4"])
    assert [item.path.name for item in scan_inbox(inbox)] == ["looped.yaml", "spot.yaml", "loose.mp4"]
    assert inbox / "loop-a.mp4" in referenced_files(inbox / "looped.yaml")
    assert file_signature(inbox / "loop-a.mp4") is None
