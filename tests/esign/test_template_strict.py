"""Templates bind the fields they name, and refuse keys the loader would not read (issue 10, 1-2).

The fields digest is recomputed here from docs/qr-seal.md section 6, not with esign's own code:
SHA-256 of the deterministic CBOR map {NFC(name): NFC(value)} of the template's ``seal_fields``,
truncated to 16 bytes.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import unicodedata
from pathlib import Path

import pytest

from esign import testpki
from esign.services import PkiServices
from esign.template import TemplateKeyError, load_template
from tests.esign.test_issue import key_args
from tests.helpers import REPO, require_tool, run_esign
from verify.qrscan import texts_from_pdf
from verify.seal import decode_seal

TEMPLATES = ("residence", "criminal-record", "social-insurance")


def _head(major: int, n: int) -> bytes:
    """RFC 8949 initial byte and argument, shortest form (deterministic encoding)."""
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError(n)


def _text(s: str) -> bytes:
    raw = s.encode("utf-8")
    return _head(3, len(raw)) + raw


def spec_digest(fields: dict[str, str]) -> bytes:
    """docs/qr-seal.md section 6: keys sorted by their encoded bytes (RFC 8949 §4.2.1)."""
    items = [
        (_text(unicodedata.normalize("NFC", k)), _text(unicodedata.normalize("NFC", v)))
        for k, v in fields.items()
    ]
    assert len({k for k, _ in items}) == len(items), "two names equal after NFC"
    body = b"".join(k + v for k, v in sorted(items))
    return hashlib.sha256(_head(5, len(items)) + body).digest()[:16]


EMPTY_DIGEST = spec_digest({})


def test_empty_set_digest_is_the_one_the_issue_names() -> None:
    assert EMPTY_DIGEST.hex().startswith("c19a797f")


def _seal_fields_from_text(name: str) -> list[str]:
    """The template's top-level ``seal_fields``, read from the file as a TOML reader would."""
    raw = tomllib.loads((REPO / "samples" / "templates" / f"{name}.toml").read_text("utf-8"))
    value = raw["seal_fields"]
    assert isinstance(value, list) and value, f"{name}: seal_fields must be top-level"
    return [str(v) for v in value]


def _issue(pki: testpki.TestPki, out: Path, name: str, data: dict[str, object]) -> bytes:
    data_file = out / f"{name}-{hashlib.sha256(json.dumps(data).encode()).hexdigest()[:8]}.json"
    data_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    pdf = data_file.with_suffix(".pdf")
    r = run_esign(
        "issue",
        "--template",
        name,
        "--data",
        str(data_file),
        "-o",
        str(pdf),
        *key_args(pki, name),
        "--registry",
        f"sqlite:{data_file.with_suffix('.sqlite3')}",
        cwd=out,
    )
    assert r.code == 0, r.out + r.err
    texts = texts_from_pdf(pdf)
    assert len(texts) == 1, texts
    return decode_seal(texts[0]).claims.fields_digest


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("strict")


@pytest.mark.parametrize("name", TEMPLATES)
def test_seal_binds_the_templates_seal_fields(
    name: str, pki: testpki.TestPki, services: PkiServices, out: Path
) -> None:
    require_tool("pdftoppm")
    data = json.loads((REPO / "samples" / "data" / f"{name}.json").read_text("utf-8"))
    seal_fields = _seal_fields_from_text(name)
    digest = _issue(pki, out, name, data)
    assert digest != EMPTY_DIGEST
    assert digest == spec_digest({k: str(data["fields"][k]) for k in seal_fields})
    if name == "residence":
        changed = json.loads(json.dumps(data))
        changed["fields"][seal_fields[0]] += " 5"
        assert _issue(pki, out, name, changed) not in (digest, EMPTY_DIGEST)


def _residence_text() -> str:
    return (REPO / "samples" / "templates" / "residence.toml").read_text("utf-8")


def _misplaced(tmp_path: Path) -> tuple[Path, int]:
    lines = [ln for ln in _residence_text().splitlines() if not ln.startswith("seal_fields")]
    lines.append('seal_fields = ["address", "registered_since"]')
    path = tmp_path / "misplaced.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, len(lines)


def _unknown(tmp_path: Path) -> tuple[Path, int]:
    lines = _residence_text().splitlines()
    at = lines.index("[title]") + 1
    lines.insert(at, 'subtitle = "x"')
    path = tmp_path / "unknown.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, at + 1


CASES = {"misplaced": (_misplaced, "seal_fields"), "unknown": (_unknown, "subtitle")}


@pytest.mark.parametrize("case", CASES)
def test_bad_key_is_refused_by_the_library(case: str, tmp_path: Path) -> None:
    make, key = CASES[case]
    path, line = make(tmp_path)
    with pytest.raises(TemplateKeyError) as err:
        load_template(str(path))
    assert (err.value.key, err.value.line) == (key, line)
    assert f"'{key}'" in str(err.value) and f"line {line}" in str(err.value)


@pytest.mark.parametrize("case", CASES)
def test_bad_key_is_refused_by_esign_issue(case: str, pki: testpki.TestPki, tmp_path: Path) -> None:
    make, key = CASES[case]
    path, line = make(tmp_path)
    pdf = tmp_path / "out.pdf"
    r = run_esign(
        "issue",
        "--template",
        str(path),
        "--data",
        str(REPO / "samples" / "data" / "residence.json"),
        "-o",
        str(pdf),
        *key_args(pki),
        "--registry",
        f"sqlite:{tmp_path / 'reg.sqlite3'}",
        cwd=tmp_path,
    )
    assert r.code != 0
    assert not pdf.exists()
    err = r.err.strip().splitlines()
    assert len(err) == 1, r.err
    assert f"'{key}'" in err[0] and f"line {line}" in err[0], err[0]


def test_missing_seal_fields_is_refused(tmp_path: Path) -> None:
    lines = [ln for ln in _residence_text().splitlines() if not ln.startswith("seal_fields")]
    path = tmp_path / "none.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TemplateKeyError, match="seal_fields"):
        load_template(str(path))
