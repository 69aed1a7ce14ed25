"""Compiled templates (fonts embedded once, text and QR filled per document) must show and yield
what fpdf2's own rendering does: the same pdftotext text and word boxes, embedded subset fonts in
pdffonts, and a QR that ZBar reads. Judged from the files, with poppler and ZBar.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from esign.render import SealBlock, render_certificate, render_certificate_fpdf
from esign.resources import sample_data
from esign.template import DocumentData, Template, load_template, parse_data
from tests.helpers import require_tool

TEMPLATES = ("residence", "criminal-record", "social-insurance")
CREATED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
SEAL = SealBlock(
    url="HTTP://127.0.0.1:9/V/" + "6BFOXN8ZQ2K:-$./" * 14,
    address="verify.example.mn",
    code="ABCDE-FGH23",
)
WORD = re.compile(
    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>'
)


def _data(name: str) -> tuple[Template, DocumentData]:
    template = load_template(name)
    raw = json.loads(sample_data(name).read_text(encoding="utf-8"))
    return template, parse_data(raw, template)


def _poppler(tool: str, pdf: Path, *args: str) -> str:
    require_tool(tool)
    proc = subprocess.run([tool, *args, str(pdf), "-"], capture_output=True, check=True)
    return proc.stdout.decode("utf-8")


def _both(
    tmp_path: Path, template: Template, data: DocumentData, seal: SealBlock = SEAL
) -> tuple[Path, Path]:
    plain = tmp_path / "fpdf2.pdf"
    compiled = tmp_path / "compiled.pdf"
    plain.write_bytes(render_certificate_fpdf(template, data, seal, created=CREATED))
    compiled.write_bytes(render_certificate(template, data, seal, created=CREATED))
    return plain, compiled


def _assert_same_reading(plain: Path, compiled: Path) -> None:
    for args in (("-enc", "UTF-8"), ("-layout", "-enc", "UTF-8")):
        assert _poppler("pdftotext", compiled, *args) == _poppler("pdftotext", plain, *args)
    words_plain = WORD.findall(_poppler("pdftotext", plain, "-bbox", "-enc", "UTF-8"))
    words_compiled = WORD.findall(_poppler("pdftotext", compiled, "-bbox", "-enc", "UTF-8"))
    assert len(words_compiled) == len(words_plain) > 50
    for a, b in zip(words_plain, words_compiled, strict=True):
        assert a[4] == b[4], (a, b)
        boxes = zip(map(float, a[:4]), map(float, b[:4]), strict=True)
        assert all(abs(x - y) < 0.01 for x, y in boxes), (a, b)


@pytest.mark.parametrize("name", TEMPLATES)
def test_compiled_text_equals_fpdf2_text(name: str, tmp_path: Path) -> None:
    template, data = _data(name)
    plain, compiled = _both(tmp_path, template, data)
    assert plain.read_bytes() != compiled.read_bytes(), "the compiled path was not taken"
    _assert_same_reading(plain, compiled)
    text = _poppler("pdftotext", compiled, "-enc", "UTF-8")
    assert data.number in text and data.register_number in text and SEAL.code in text


def test_wrapping_newlines_and_long_words_break_where_fpdf2_breaks(tmp_path: Path) -> None:
    template, data = _data("residence")
    long_word = "Ө" + "ү" * 90  # wider than the cell: broken inside the word
    body = (
        "{name} ({register_number}) нь Улаанбаатар хотын Сүхбаатар дүүргийн 1-р хороо, "
        "Энхтайваны өргөн чөлөө 12-т оршин суудаг болохыг тодорхойлов.\n\n"
        f"Тайлбар: {long_word} — №12, «хашаа» 5 ₮.\n"
    )
    body_en = (
        "This certifies that {name}, register number {register_number}, lives at the address "
        "above.  Two spaces, a trailing space \nand an empty line follow:\n\n" + "x" * 140 + "\n"
    )
    template = dataclasses.replace(template, body_mn=body, body_en=body_en)
    fields = {key: f"{value} " * 9 for key, value in data.fields.items()}  # wrap in the table
    data = dataclasses.replace(data, name="Бат-Эрдэнэ Ганбаатарын Өлзийсайхан", fields=fields)
    plain, compiled = _both(tmp_path, template, data)
    assert plain.read_bytes() != compiled.read_bytes()
    _assert_same_reading(plain, compiled)
    assert long_word[:20] in _poppler("pdftotext", compiled, "-enc", "UTF-8")


def test_text_outside_the_fixed_subset_is_rendered_by_fpdf2(tmp_path: Path) -> None:
    template, data = _data("residence")
    data = dataclasses.replace(data, name="Zoë Müller-Дорж")  # ë ü: not in the subset
    plain, compiled = _both(tmp_path, template, data)
    assert plain.read_bytes() == compiled.read_bytes(), "fell back to fpdf2, byte for byte"
    assert "Zoë Müller-Дорж" in _poppler("pdftotext", compiled, "-enc", "UTF-8")


@pytest.mark.parametrize("name", TEMPLATES)
def test_compiled_fonts_are_embedded_subsets_and_the_qr_reads(name: str, tmp_path: Path) -> None:
    require_tool("pdffonts")
    require_tool("pdftoppm")
    require_tool("zbarimg")
    template, data = _data(name)
    _, compiled = _both(tmp_path, template, data)
    proc = subprocess.run(["pdffonts", str(compiled)], capture_output=True, text=True, check=True)
    rows = proc.stdout.splitlines()[2:]
    assert len(rows) == 2, proc.stdout
    for row in rows:
        emb, sub, uni = row.split()[-5:-2]
        assert (emb, sub, uni) == ("yes", "yes", "yes"), row
        assert re.match(r"^[A-Z]{6}\+DejaVuSans", row), row
    stem = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-singlefile", str(compiled), str(stem)],
        check=True,
        capture_output=True,
    )
    zbar = subprocess.run(
        ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(stem) + ".png"],
        capture_output=True,
        text=True,
    )
    assert zbar.stdout.splitlines() == [SEAL.url], zbar.stderr
