"""Content credentials through finishing: a generated source's C2PA manifest in, a signed and
validated deliverable out that names it as an ingredient; sequences; sidecars; tampering; unsigned
runs; the visible AI label. Signing uses a certificate chain each session makes for itself.
"""

from __future__ import annotations

import json
import logging
import shutil
from fractions import Fraction
from pathlib import Path

import av
import c2pa
import numpy as np
import pytest
import yaml

import pipeline.media.content_credentials as content_credentials
from pipeline.media.content_credentials import (
    CERT_VARIABLE,
    KEY_VARIABLE,
    TRUST_VARIABLE,
    read_credentials,
    signing_config,
    source_credentials,
)
from pipeline.errors import JobError, VerificationError
from pipeline.jobs.finish import finish
from pipeline.model.job import load_job
from pipeline.plan.overlay_layout import SafeBox
from pipeline.model.presets import load_presets
from pipeline.media.probe import probe
from pipeline.model.provenance import COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA, TRAINED_ALGORITHMIC_MEDIA
from postprod.cli import main
from tests.certificates import SigningChain, make_chain

SMALL_WEB = {"preset": "web-h264-1080p", "name": "web",
             "overrides": {"video": {"width": 320, "height": 180, "frame_rate": 24, "options": {"preset": "veryfast"}}}}
SMALL_TIKTOK = {"preset": "tiktok-9x16", "name": "tall",
                "overrides": {"video": {"width": 216, "height": 384, "frame_rate": 24, "fit": "crop",
                                        "options": {"preset": "veryfast"}}}}
GREY = "#808080"


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> SigningChain:
    return make_chain(tmp_path_factory.mktemp("postprod-chain"))


@pytest.fixture
def signing(chain, monkeypatch) -> SigningChain:
    monkeypatch.setenv(CERT_VARIABLE, str(chain.chain))
    monkeypatch.setenv(KEY_VARIABLE, str(chain.key))
    monkeypatch.setenv(TRUST_VARIABLE, str(chain.root))
    return chain


@pytest.fixture(scope="module")
def generated_source(make_colour_clip, tmp_path_factory) -> Path:
    """A clip signed the way a generator signs its output: created, trained algorithmic media."""
    generator = make_chain(tmp_path_factory.mktemp("generator-chain"), organisation="Example Generator Inc")
    plain = make_colour_clip(GREY, seconds=Fraction(1), size="160x90", rate=24)
    signed = tmp_path_factory.mktemp("generated") / "generated.mp4"
    definition = {
        "claim_generator_info": [{"name": "Example Video Model", "version": "2.0"}],
        "title": signed.name,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA}]}}],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, generator.chain.read_bytes(), generator.key.read_bytes(), None))
    with c2pa.Builder.from_json(definition) as builder, signer, plain.open("rb") as source, signed.open("w+b") as dest:
        builder.sign(signer, "video/mp4", source, dest)
    return signed


def _job(tmp_path: Path, sources: list[Path], deliverables: list[dict], **extra) -> Path:
    data = {"version": 1, "name": "cred", "shots": [{"source": str(source)} for source in sources],
            "deliverables": deliverables, **extra}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _active_manifest(path: Path) -> dict:
    with c2pa.Reader(str(path)) as reader:
        return reader.get_active_manifest()


def _actions(manifest: dict) -> list[dict]:
    return next(a["data"]["actions"] for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))


@pytest.fixture
def signed_web(signing, generated_source, tmp_path) -> tuple[Path, dict]:
    """The generated source finished into a small web deliverable, signed; and the job manifest."""
    manifest = json.loads(finish(load_job(_job(tmp_path, [generated_source], [SMALL_WEB])), tmp_path / "out").read_text())
    return tmp_path / "out" / "cred_web.mp4", manifest


def test_deliverable_credentials_validate_and_carry_the_generated_source(signed_web, signing, generated_source):
    deliverable, job_manifest = signed_web
    found = read_credentials(deliverable, trust_anchors=signing.root.read_bytes())
    assert found.validation_state == "Trusted", found.validation_failures
    assert found.claim_generator.startswith("postprod")
    assert found.ingredients == (generated_source.name,)
    assert found.actions[0] == "c2pa.opened"
    assert {"c2pa.transcoded", "c2pa.resized"} <= set(found.actions)
    # The job declared nothing: the source's own credentials said it was generated.
    assert TRAINED_ALGORITHMIC_MEDIA in found.digital_source_types and found.ai_generated

    # The source's own manifest travels inside the ingredient, validated.
    ingredient = _active_manifest(deliverable)["ingredients"][0]
    assert ingredient["relationship"] == "parentOf" and ingredient.get("active_manifest")
    with c2pa.Reader(str(deliverable)) as reader:
        store = json.loads(reader.json())
    carried = store["manifests"][ingredient["active_manifest"]]
    assert carried["claim_generator_info"][0]["name"] == "Example Video Model"

    # Signing rewrote the file: it still probes and decodes as the deliverable it was verified as.
    info = probe(deliverable)
    assert (info.video.codec, info.video.display_width, info.video.display_height) == ("h264", 320, 180)
    with av.open(str(deliverable)) as container:
        assert sum(1 for _ in container.decode(video=0)) == info.video.frame_count == 24

    source_entry, output_entry = job_manifest["inputs"][0], job_manifest["outputs"][0]
    assert source_entry["credentials"]["claim_generator"] == "Example Video Model 2.0"
    assert source_entry["credentials"]["ai_generated"] is True
    assert "Example Generator Inc" in source_entry["credentials"]["signer"]
    assert output_entry["credentials"]["status"] == "embedded"
    assert output_entry["credentials"]["manifest"]["validation_state"] == "Trusted"


def _count_source_reads(monkeypatch, source: Path) -> dict[str, int]:
    """Count the two ways signing reads a source in full: as an ingredient (hashed to validate its
    manifest) and for its own credentials."""
    reads = {"ingredient": 0, "credentials": 0}
    add_ingredient, read = c2pa.Builder.add_ingredient, content_credentials.read_credentials

    def counted_ingredient(builder, definition, mime, stream):
        reads["ingredient"] += definition["title"] == source.name
        return add_ingredient(builder, definition, mime, stream)

    def counted_read(path, *args, **kwargs):
        reads["credentials"] += path == source
        return read(path, *args, **kwargs)

    monkeypatch.setattr(c2pa.Builder, "add_ingredient", counted_ingredient)
    monkeypatch.setattr(content_credentials, "read_credentials", counted_read)
    return reads


def test_a_job_reads_each_source_once_however_many_deliverables_it_signs(signing, generated_source,
                                                                          monkeypatch, tmp_path):
    source = tmp_path / "fresh.mp4"  # a file of its own: no earlier test's reading of it to reuse
    shutil.copyfile(generated_source, source)
    reads = _count_source_reads(monkeypatch, source)
    deliverables = [SMALL_WEB, {**SMALL_WEB, "name": "again"}, {**SMALL_WEB, "name": "third"}]
    manifest = json.loads(finish(load_job(_job(tmp_path, [source], deliverables)), tmp_path / "out").read_text())
    assert reads == {"ingredient": 1, "credentials": 1}
    assert [output["credentials"]["status"] for output in manifest["outputs"]] == ["embedded"] * 3
    assert manifest["inputs"][0]["credentials"]["ai_generated"] is True
    for name in ("web", "again", "third"):
        found = read_credentials(tmp_path / "out" / f"cred_{name}.mp4", trust_anchors=signing.root.read_bytes())
        assert found.validation_state == "Trusted" and found.ingredients == (source.name,)
        assert found.digital_source_types == (TRAINED_ALGORITHMIC_MEDIA,)


def test_a_source_changed_on_disk_is_read_again(generated_source, make_colour_clip, monkeypatch, tmp_path):
    source = tmp_path / "changing.mp4"
    shutil.copyfile(generated_source, source)
    reads = _count_source_reads(monkeypatch, source)
    assert source_credentials(source).ai_generated and source_credentials(source).ai_generated
    assert reads["credentials"] == 1
    shutil.copyfile(make_colour_clip(GREY, seconds=Fraction(1), size="160x90", rate=24), source)
    assert source_credentials(source) is None
    assert reads["credentials"] == 2


def test_a_tampered_deliverable_fails_validation(signed_web, signing, tmp_path):
    deliverable, _ = signed_web
    tampered = tmp_path / "tampered.mp4"
    data = bytearray(deliverable.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 200] ^= 0xFF
    tampered.write_bytes(data)
    found = read_credentials(tampered, trust_anchors=signing.root.read_bytes())
    assert found.validation_state == "Invalid"
    assert "assertion.bmffHash.mismatch" in found.validation_failures


def test_probe_reports_a_sources_credentials(generated_source, make_colour_clip, capsys):
    plain = make_colour_clip(GREY, seconds=Fraction(1), size="160x90", rate=24)
    assert main(["probe", "--json", str(generated_source), str(plain)]) == 0
    reported = json.loads(capsys.readouterr().out)
    assert reported[0]["credentials"]["actions"] == ["c2pa.created"]
    assert reported[0]["credentials"]["digital_source_types"] == [TRAINED_ALGORITHMIC_MEDIA]
    assert reported[0]["credentials"]["validation_state"] == "Valid"  # no trust anchors given to probe
    assert reported[1]["credentials"] is None


def test_a_sequence_of_three_sources_is_a_composite_of_placed_ingredients(signing, generated_source,
                                                                          make_colour_clip, tmp_path):
    red = make_colour_clip("#a03030", seconds=Fraction(1), size="160x90", rate=24)
    blue = make_colour_clip("#3030a0", seconds=Fraction(1), size="160x90", rate=24)
    job = _job(tmp_path, [red, generated_source, blue], [SMALL_WEB])
    finish(load_job(job), tmp_path / "out")
    deliverable = tmp_path / "out" / "cred_web.mp4"
    found = read_credentials(deliverable, trust_anchors=signing.root.read_bytes())
    assert found.validation_state == "Trusted"
    assert found.ingredients == (red.name, generated_source.name, blue.name)
    assert found.actions[:4] == ("c2pa.created", "c2pa.placed", "c2pa.placed", "c2pa.placed")
    assert found.digital_source_types[0] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    manifest = _active_manifest(deliverable)
    assert [item["relationship"] for item in manifest["ingredients"]] == ["componentOf"] * 3
    assert [bool(item.get("active_manifest")) for item in manifest["ingredients"]] == [False, True, False]


def test_a_declared_ai_job_is_marked_and_labelled_inside_the_platform_safe_area(signing, make_colour_clip, tmp_path):
    plain = make_colour_clip(GREY, seconds=Fraction(1), size="160x90", rate=24)
    job = _job(tmp_path, [plain], [SMALL_TIKTOK], provenance={"ai_generated": True, "disclose": True})
    manifest = json.loads(finish(load_job(job), tmp_path / "out").read_text())
    deliverable = tmp_path / "out" / "cred_tall.mp4"

    found = read_credentials(deliverable, trust_anchors=signing.root.read_bytes())
    assert manifest["inputs"][0]["credentials"] is None
    assert found.ai_generated and found.validation_state == "Trusted"
    assert any(action == "c2pa.edited" for action in found.actions)
    assert "burnt in: ai label" in json.dumps(_actions(_active_manifest(deliverable)))

    with av.open(str(deliverable)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="gray").astype(int)
    label = np.abs(frame - int(np.median(frame))) > 24
    rows, columns = np.nonzero(label)
    assert label.sum() > 100, "no label drawn"
    box = SafeBox.of(load_presets()["tiktok-9x16"].safe_area.text, 216, 384)
    assert columns.min() >= box.left - 1 and rows.min() >= box.top - 1
    assert columns.max() < 216 / 2 and rows.max() < 384 / 3, "the label belongs top left"


def test_disclosing_needs_the_material_declared_generated(make_colour_clip, tmp_path):
    plain = make_colour_clip(GREY, seconds=Fraction(1), size="160x90", rate=24)
    with pytest.raises(JobError, match="provenance"):
        load_job(_job(tmp_path, [plain], [SMALL_WEB], provenance={"disclose": True}))


def test_a_sidecar_preset_leaves_the_file_clean_and_the_manifest_beside_it(signing, generated_source, tmp_path):
    sidecar_web = {**SMALL_WEB, "overrides": {**SMALL_WEB["overrides"], "provenance": {"credentials": "sidecar"}}}
    manifest = json.loads(finish(load_job(_job(tmp_path, [generated_source], [sidecar_web])), tmp_path / "out").read_text())
    deliverable, sidecar = tmp_path / "out" / "cred_web.mp4", tmp_path / "out" / "cred_web.c2pa"
    assert c2pa.Reader.try_create(str(deliverable)) is None
    found = read_credentials(deliverable, trust_anchors=signing.root.read_bytes())
    assert found.validation_state == "Trusted" and found.sidecar == sidecar
    assert manifest["outputs"][0]["credentials"]["status"] == "sidecar"
    assert manifest["outputs"][0]["credentials"]["sidecar"] == str(sidecar)
    assert sorted(path.name for path in (tmp_path / "out").iterdir() if path.name.startswith(".")) == []


def test_a_signature_that_does_not_validate_is_a_render_error_and_leaves_nothing(
        chain, generated_source, monkeypatch, tmp_path):
    stranger = make_chain(tmp_path / "stranger")
    monkeypatch.setenv(CERT_VARIABLE, str(chain.chain))
    monkeypatch.setenv(KEY_VARIABLE, str(stranger.key))  # a key that is not the certificate's
    monkeypatch.setenv(TRUST_VARIABLE, str(chain.root))
    with pytest.raises(VerificationError, match="content credentials") as raised:
        finish(load_job(_job(tmp_path, [generated_source], [SMALL_WEB])), tmp_path / "out")
    assert raised.value.exit_code == 4
    assert [path.name for path in (tmp_path / "out").iterdir()] == []


def test_without_keys_deliverables_finish_unsigned_and_postprod_says_so(generated_source, monkeypatch, tmp_path, caplog):
    for variable in (CERT_VARIABLE, KEY_VARIABLE, TRUST_VARIABLE):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr("pipeline.media.content_credentials._warned_unsigned", False)
    with caplog.at_level(logging.WARNING, logger="pipeline.media.content_credentials"):
        manifest = json.loads(finish(load_job(_job(tmp_path, [generated_source], [SMALL_WEB, {**SMALL_WEB, "name": "again"}])),
                                     tmp_path / "out").read_text())
    assert [output["credentials"]["status"] for output in manifest["outputs"]] == ["unsigned", "unsigned"]
    assert c2pa.Reader.try_create(str(tmp_path / "out" / "cred_web.mp4")) is None
    assert sum("deliverables are unsigned" in record.message for record in caplog.records) == 1


def test_signing_configuration_errors_name_the_variable(chain, tmp_path):
    with pytest.raises(JobError, match=KEY_VARIABLE):
        signing_config({CERT_VARIABLE: str(chain.chain)})
    with pytest.raises(JobError, match=f"{CERT_VARIABLE}=.*missing.pem"):
        signing_config({CERT_VARIABLE: str(tmp_path / "missing.pem"), KEY_VARIABLE: str(chain.key)})
    not_pem = tmp_path / "key.txt"
    not_pem.write_text("secret")
    with pytest.raises(JobError, match="not a PEM file"):
        signing_config({CERT_VARIABLE: str(chain.chain), KEY_VARIABLE: str(not_pem)})
    assert signing_config({}) is None
    copied = tmp_path / "copy.pem"
    shutil.copyfile(chain.chain, copied)
    assert signing_config({CERT_VARIABLE: str(copied), KEY_VARIABLE: str(chain.key)}).trust_anchors is None
