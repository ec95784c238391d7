"""C2PA content credentials: read a source's, sign a verified deliverable's, validate what was signed.

Signing keys come from the operator's configuration, never from the job or the repository:
``POSTPROD_C2PA_CERT`` (PEM certificate chain, signer first), ``POSTPROD_C2PA_KEY`` (its PEM private
key), optionally ``POSTPROD_C2PA_TRUST`` (PEM trust anchors: with them a deliverable must validate as
*Trusted*, not only *Valid*) and ``POSTPROD_C2PA_TSA_URL`` (an RFC 3161 time-stamp authority).
Without a certificate and key, deliverables are finished unsigned and postprod says so once.

MP4 and MOV carry the manifest in a ``uuid`` box, bound to the file by a BMFF hash; a preset may
ask for a sidecar ``NAME.c2pa`` instead, bound by the same hash. Wrappers the C2PA library cannot
hash (MXF, Matroska) get no credentials, and the job manifest says why.
"""

from __future__ import annotations

import functools
import io
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

import pipeline
from pipeline.errors import JobError, VerificationError
from pipeline.files import partial_path
from pipeline.model.provenance import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    GENERATED_SOURCE_TYPES,
    TRAINED_ALGORITHMIC_MEDIA,
    ProvenancePlan,
)

log = logging.getLogger(__name__)

CERT_VARIABLE = "POSTPROD_C2PA_CERT"
KEY_VARIABLE = "POSTPROD_C2PA_KEY"
TRUST_VARIABLE = "POSTPROD_C2PA_TRUST"
TSA_VARIABLE = "POSTPROD_C2PA_TSA_URL"
MIME_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".wav": "audio/wav"}
"""Wrappers whose files the C2PA library can hash and carry a manifest in."""
ACCEPTED_STATES = ("Valid", "Trusted")
_CURVE_ALGORITHMS = {"secp256r1": c2pa.C2paSigningAlg.ES256, "secp384r1": c2pa.C2paSigningAlg.ES384,
                     "secp521r1": c2pa.C2paSigningAlg.ES512}
_warned_unsigned = False
_SOURCE_MEMO_SIZE = 256
"""Source versions whose ingredient and credentials a process keeps (a few KB each)."""


@dataclass(frozen=True)
class SigningConfig:
    """The operator's signing credentials (never logged, never written to a manifest)."""

    certificate_chain: bytes
    """PEM certificates: the signer's first, then its intermediates."""
    private_key: bytes
    """The signer's PEM private key."""
    algorithm: c2pa.C2paSigningAlg
    """Signature algorithm, from the key's type."""
    trust_anchors: bytes | None
    """PEM roots a deliverable's signer must chain to; None: any well-formed chain is accepted."""
    timestamp_url: str | None
    """RFC 3161 time-stamp authority, or None."""


@dataclass(frozen=True)
class Credentials:
    """What a file's C2PA manifest says, as a reader of a job manifest wants it."""

    claim_generator: str
    """The tool that signed it, e.g. ``OpenAI Sora``, with its version where given."""
    title: str | None
    """The asset's title in the manifest."""
    actions: tuple[str, ...]
    """C2PA action labels, in order (``c2pa.created``, ``c2pa.transcoded``...)."""
    digital_source_types: tuple[str, ...]
    """IPTC digital source types the actions declare."""
    signer: str
    """Who signed: the certificate's organisation and common name."""
    ingredients: tuple[str, ...]
    """Titles of the files it was made from."""
    validation_state: str
    """``Trusted``, ``Valid`` or ``Invalid``."""
    validation_failures: tuple[str, ...]
    """C2PA failure codes; ``signingCredential.untrusted`` alone still leaves a ``Valid`` state."""
    sidecar: Path | None = None
    """The ``.c2pa`` file it was read from, when not embedded."""

    @property
    def ai_generated(self) -> bool:
        """The manifest declares generated material."""
        return any(kind in GENERATED_SOURCE_TYPES for kind in self.digital_source_types)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for manifests and ``postprod probe``."""
        return {
            "claim_generator": self.claim_generator,
            "title": self.title,
            "actions": list(self.actions),
            "digital_source_types": list(self.digital_source_types),
            "ai_generated": self.ai_generated,
            "signer": self.signer,
            "ingredients": list(self.ingredients),
            "validation_state": self.validation_state,
            "validation_failures": list(self.validation_failures),
            "sidecar": str(self.sidecar) if self.sidecar else None,
        }


@dataclass(frozen=True)
class SignedCredentials:
    """The outcome of signing one deliverable, for the job manifest."""

    status: str
    """``embedded``, ``sidecar``, ``unsigned`` (no signing configuration) or ``unsupported``."""
    detail: str
    """Why it is unsigned or unsupported; what was validated otherwise."""
    sidecar: Path | None = None
    """The final path of the ``.c2pa`` sidecar, when one was written."""
    credentials: Credentials | None = None
    """The deliverable's manifest as read back after signing."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the job manifest."""
        return {
            "status": self.status,
            "detail": self.detail,
            "sidecar": str(self.sidecar) if self.sidecar else None,
            "manifest": self.credentials.to_dict() if self.credentials else None,
        }


def signing_config(environ: Mapping[str, str] = os.environ) -> SigningConfig | None:
    """The signing credentials the environment names, or None when it names none.

    Raises:
        JobError: only one of certificate and key is set, a file is unreadable, or the key is of a
            type C2PA cannot sign with.
    """
    cert_path, key_path = environ.get(CERT_VARIABLE), environ.get(KEY_VARIABLE)
    if not cert_path and not key_path:
        return None
    if not (cert_path and key_path):
        missing = KEY_VARIABLE if cert_path else CERT_VARIABLE
        raise JobError(f"content credentials: {missing} is not set; set both {CERT_VARIABLE} and "
                       f"{KEY_VARIABLE}, or neither to finish unsigned")
    chain, key = _read_pem(CERT_VARIABLE, cert_path), _read_pem(KEY_VARIABLE, key_path)
    trust_path = environ.get(TRUST_VARIABLE)
    trust = _read_pem(TRUST_VARIABLE, trust_path) if trust_path else None
    return SigningConfig(chain, key, _algorithm_for(key), trust, environ.get(TSA_VARIABLE) or None)


def _read_pem(variable: str, path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise JobError(f"content credentials: {variable}={path}: {error.strerror or error}") from None
    if b"-----BEGIN" not in data:
        raise JobError(f"content credentials: {variable}={path} is not a PEM file")
    return data


def _algorithm_for(key_pem: bytes) -> c2pa.C2paSigningAlg:
    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise JobError(f"content credentials: {KEY_VARIABLE} is not an unencrypted PEM private key ({error})") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVE_ALGORITHMS:
        return _CURVE_ALGORITHMS[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    if isinstance(key, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    raise JobError(f"content credentials: {KEY_VARIABLE} holds a {type(key).__name__}; C2PA signs with "
                   "EC P-256/384/521, Ed25519 or RSA keys")


def _context(trust_anchors: bytes | None) -> c2pa.Context:
    if trust_anchors is None:
        return c2pa.Context()
    return c2pa.Context.from_dict({"trust": {"trust_anchors": trust_anchors.decode()},
                                   "verify": {"verify_trust": True}})


def source_credentials(source: Path) -> Credentials | None:
    """:func:`read_credentials` of a job's source, read once per process for each version of the
    file (and of its sidecar): every deliverable of a job and its manifest share one read.

    A signed source is hashed in full to validate its manifest, so each reading costs a pass over
    the file; its size, modification time and inode (and its sidecar's) say whether an earlier
    reading still holds.
    """
    return _source_credentials(source, _version(source), _version(sidecar_path(source)))


@functools.lru_cache(maxsize=_SOURCE_MEMO_SIZE)
def _source_credentials(source: Path, version: tuple[int, ...], sidecar_version: tuple[int, ...]) -> Credentials | None:
    return read_credentials(source)


def _version(path: Path) -> tuple[int, ...]:
    """What says a file changed: its size, modification time and inode; () when it is missing."""
    try:
        status = path.stat()
    except OSError:
        return ()
    return status.st_size, status.st_mtime_ns, status.st_ino


def read_credentials(path: Path, trust_anchors: bytes | None = None) -> Credentials | None:
    """The C2PA manifest ``path`` carries, or the one in a ``PATH.c2pa`` sidecar beside it.

    Returns:
        None when there is neither. A manifest that cannot be parsed reads as ``Invalid``.
    """
    sidecar = sidecar_path(path)
    mime = MIME_TYPES.get(path.suffix.lower())
    try:
        if sidecar.is_file() and mime:
            with path.open("rb") as stream, _context(trust_anchors) as context:
                with c2pa.Reader(mime, stream, sidecar.read_bytes(), context=context) as reader:
                    return _credentials(reader, sidecar)
        with _context(trust_anchors) as context:
            reader = c2pa.Reader.try_create(str(path), context=context)
            if reader is None:
                return None
            with reader:
                return _credentials(reader, None)
    except c2pa.C2paError.NotSupported:
        return None
    except c2pa.C2paError as error:
        return Credentials("", None, (), (), "", (), "Invalid", (_first_line(error),), sidecar if sidecar.is_file() else None)


def _credentials(reader: c2pa.Reader, sidecar: Path | None) -> Credentials:
    manifest = reader.get_active_manifest() or {}
    actions, source_types = [], []
    for assertion in manifest.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            for action in assertion.get("data", {}).get("actions", []):
                actions.append(action.get("action", ""))
                if action.get("digitalSourceType"):
                    source_types.append(action["digitalSourceType"])
    generators = manifest.get("claim_generator_info") or []
    generator = " ".join(filter(None, (generators[0].get("name"), generators[0].get("version")))) if generators \
        else manifest.get("claim_generator", "")
    signature = manifest.get("signature_info") or {}
    signer = ", ".join(filter(None, (signature.get("issuer"), signature.get("common_name"))))
    results = (reader.get_validation_results() or {}).get("activeManifest") or {}
    return Credentials(
        claim_generator=generator,
        title=manifest.get("title"),
        actions=tuple(actions),
        digital_source_types=tuple(dict.fromkeys(source_types)),
        signer=signer,
        ingredients=tuple(item.get("title", "") for item in manifest.get("ingredients", [])),
        validation_state=reader.get_validation_state() or "Invalid",
        validation_failures=tuple(item["code"] for item in results.get("failure", [])),
        sidecar=sidecar,
    )


def signing_path(final: Path) -> Path:
    """The hidden partial name a deliverable is signed into before it replaces the verified file."""
    return partial_path(final, "signing")


def sidecar_partial_path(final: Path) -> Path:
    """The hidden partial name a sidecar is written under until the deliverable is put in place."""
    return partial_path(sidecar_path(final))


def sidecar_path(path: Path) -> Path:
    """Where a file's sidecar manifest lives: ``NAME.EXT.c2pa`` would hide the extension's meaning,
    so it is ``NAME.c2pa`` beside it, as the C2PA specification's sidecar convention has it."""
    return path.with_suffix(".c2pa")


def warn_unsigned_once() -> None:
    """Say once per process that deliverables leave without content credentials."""
    global _warned_unsigned
    if not _warned_unsigned:
        _warned_unsigned = True
        log.warning("content credentials: deliverables are unsigned (set %s and %s to sign them)",
                    CERT_VARIABLE, KEY_VARIABLE)


def sign(partial: Path, final: Path, plan: ProvenancePlan, config: SigningConfig) -> tuple[SignedCredentials, Path | None]:
    """Sign the verified file at ``partial`` (to be renamed to ``final``) and validate the result.

    The manifest lists the job's sources as ingredients (each carrying its own credentials when it
    has them), the actions of ``plan``, and the IPTC source type for generated material where the
    job declares it or a source's credentials say so. An embedded manifest is written into a copy
    that then replaces ``partial``; a sidecar goes to a hidden partial name beside ``final``.

    Returns:
        What was signed, and the sidecar's partial path to rename into place (None when embedded).

    Raises:
        VerificationError: signing failed, or the signed file does not validate.
    """
    mime = MIME_TYPES.get(final.suffix.lower())
    if mime is None:
        return SignedCredentials("unsupported", f"the C2PA library cannot carry a manifest in {final.suffix} "
                                 "files; no credentials written"), None
    try:
        builder = c2pa.Builder.from_json(_manifest_definition(final, plan))
        with builder:
            for number, source in enumerate(plan.sources):
                relationship = "parentOf" if len(plan.sources) == 1 else "componentOf"
                archive = _ingredient_archive(source, _version(source), relationship, f"source{number}")
                builder.add_ingredient_from_archive(io.BytesIO(archive))
            signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
                config.algorithm, config.certificate_chain, config.private_key, config.timestamp_url))
            with signer:
                if plan.credentials == "sidecar":
                    builder.set_no_embed()
                    signed_copy = signing_path(final)
                    with partial.open("rb") as source, signed_copy.open("w+b") as dest:
                        manifest_bytes = builder.sign(signer, mime, source, dest)
                    signed_copy.unlink()
                    sidecar = sidecar_partial_path(final)
                    sidecar.write_bytes(manifest_bytes)
                else:
                    signed_copy = signing_path(final)
                    with partial.open("rb") as source, signed_copy.open("w+b") as dest:
                        builder.sign(signer, mime, source, dest)
                    os.replace(signed_copy, partial)
                    sidecar = None
    except (c2pa.C2paError, OSError) as error:
        signing_path(final).unlink(missing_ok=True)
        raise VerificationError(final, [f"content credentials: signing failed: {_first_line(error)}"]) from None
    credentials = validate(partial, config.trust_anchors, mime, sidecar)
    if credentials is None or credentials.validation_state not in ACCEPTED_STATES \
            or (config.trust_anchors is not None and credentials.validation_state != "Trusted"):
        if sidecar is not None:
            sidecar.unlink(missing_ok=True)
        found = "no manifest" if credentials is None else \
            f"{credentials.validation_state} ({', '.join(credentials.validation_failures) or 'no failure codes'})"
        raise VerificationError(final, [f"content credentials: the signed file does not validate: {found}"])
    if sidecar is not None:
        return SignedCredentials("sidecar", f"{credentials.validation_state} manifest in a sidecar",
                                 sidecar_path(final), credentials), sidecar
    return SignedCredentials("embedded", f"{credentials.validation_state} manifest embedded", None,
                             credentials), None


def validate(path: Path, trust_anchors: bytes | None, mime: str, sidecar: Path | None) -> Credentials | None:
    """Read back ``path``'s manifest (embedded, or from ``sidecar``) and validate it."""
    try:
        with _context(trust_anchors) as context, path.open("rb") as stream:
            manifest_data = sidecar.read_bytes() if sidecar else None
            with c2pa.Reader(mime, stream, manifest_data, context=context) as reader:
                return _credentials(reader, sidecar)
    except c2pa.C2paError.ManifestNotFound:
        return None
    except c2pa.C2paError as error:
        return Credentials("", None, (), (), "", (), "Invalid", (_first_line(error),), sidecar)


@functools.lru_cache(maxsize=_SOURCE_MEMO_SIZE)
def _ingredient_archive(source: Path, version: tuple[int, ...], relationship: str, label: str) -> bytes:
    """``source`` as a C2PA ingredient (its own manifest validated and carried along), archived so
    that every deliverable of a job signed from it reuses one reading of the file.

    Raises:
        c2pa.C2paError, OSError: the source cannot be read as an ingredient.
    """
    archive = io.BytesIO()
    with c2pa.Builder.from_json({"title": source.name}) as builder, source.open("rb") as stream:
        builder.add_ingredient({"title": source.name, "relationship": relationship, "label": label},
                               MIME_TYPES.get(source.suffix.lower(), "video/mp4"), stream)
        builder.write_ingredient_archive(label, archive)
    return archive.getvalue()


def _manifest_definition(final: Path, plan: ProvenancePlan) -> dict[str, Any]:
    generated = plan.declared_ai_generated or any(
        credentials is not None and credentials.ai_generated
        for credentials in map(source_credentials, plan.sources)
    )
    actions: list[dict[str, Any]] = []
    if len(plan.sources) == 1:
        opened: dict[str, Any] = {"action": "c2pa.opened", "parameters": {"ingredientIds": ["source0"]}}
        if generated:
            opened["digitalSourceType"] = TRAINED_ALGORITHMIC_MEDIA
        actions.append(opened)
    else:
        created: dict[str, Any] = {"action": "c2pa.created", "description": "sequence assembled from its shots"}
        if generated:
            created["digitalSourceType"] = COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
        actions.append(created)
        actions += [{"action": "c2pa.placed", "parameters": {"ingredientIds": [f"source{number}"]}}
                    for number in range(len(plan.sources))]
    actions += [{"action": action.action, "description": action.description} for action in plan.actions]
    return {
        "claim_generator_info": [{"name": "postprod", "version": pipeline.__version__}],
        "title": final.name,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}}],
    }


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
