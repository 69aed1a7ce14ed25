"""The rules of docs/qr-seal.md §6.1 on pages written by hand: how lines, wrapping, the last row
and missing labels are read. (tests/verify/test_seal_binding.py judges real issued PDFs.)"""

from __future__ import annotations

from datetime import date

import pytest

from esign.seal import SealClaims, fields_digest
from esign.template import load_template
from verify.sealfields import FieldsNotFound, printed_digest, printed_values, text_lines

TEMPLATE = load_template("criminal-record")  # its last table row ("record") is sealed
FIELDS = {"birth_date": "1988-01-01", "purpose": "Ажилд орох / Employment", "record": "Бүртгэлгүй"}
CLAIMS = SealClaims(
    issuer="SHSG",
    doc_type="criminal-record",
    number="ЯШТ-2026-004512",
    issued=date(2026, 11, 25),
    expires=None,
    subject_name="Доржийн Өлзийсайхан",
    subject_id="ЧД88010155",
    fields_digest=fields_digest({k: FIELDS[k] for k in TEMPLATE.seal_fields}),
)


def page(values: dict[str, str], *, after_last: list[str] | None = None) -> str:
    """A page as an extractor gives it: header, rows (label lines, value lines), body."""
    rows = [
        ("Овог, нэр", "Name", CLAIMS.subject_name),
        ("Регистрийн дугаар", "Register number", CLAIMS.subject_id),
        *((f.label_mn, f.label_en, values[f.key]) for f in TEMPLATE.fields),
    ]
    out = ["МОНГОЛ УЛС", "Дугаар / No.", "", CLAIMS.number, ""]
    for mn, en, value in rows:
        out += [mn, en, "", *value.split("\n"), ""]
    out += after_last or []
    body = TEMPLATE.body_mn.format(
        name=CLAIMS.subject_name, register_number=CLAIMS.subject_id, **FIELDS
    )
    words = body.split()
    out += [" ".join(words[:9]), " ".join(words[9:])]  # the body wraps too
    return "\r\n".join(out)


def digest_of(text: str) -> bytes:
    lines = text_lines(text)
    return printed_digest(printed_values(lines, TEMPLATE, CLAIMS), TEMPLATE)


def test_the_sealed_page_gives_the_seals_digest() -> None:
    assert digest_of(page(FIELDS)) == CLAIMS.fields_digest


def test_a_wrapped_value_reads_as_one_line_with_spaces() -> None:
    wrapped = {**FIELDS, "purpose": "Ажилд орох\n/ Employment"}
    assert digest_of(page(wrapped)) == CLAIMS.fields_digest
    spaced = {**FIELDS, "purpose": "Ажилд   орох /\tEmployment"}
    assert digest_of(page(spaced)) == CLAIMS.fields_digest


def test_a_line_added_under_the_last_sealed_value_changes_the_digest() -> None:
    text = page(FIELDS, after_last=["Хулгайн хэрэгт 2019 онд ял шийтгүүлсэн"])
    assert digest_of(text) != CLAIMS.fields_digest


def test_a_line_added_between_rows_changes_the_digest() -> None:
    values = {**FIELDS, "birth_date": "1988-01-01\n(засварласан)"}
    assert digest_of(page(values)) != CLAIMS.fields_digest


@pytest.mark.parametrize("key", ["birth_date", "purpose", "record"])
def test_each_sealed_value_counts(key: str) -> None:
    assert digest_of(page({**FIELDS, key: FIELDS[key] + "1"})) != CLAIMS.fields_digest


def test_a_missing_label_is_reported_not_guessed() -> None:
    text = page(FIELDS).replace("Зориулалт\r\nPurpose", "Зориулалт\r\nGoal")
    with pytest.raises(FieldsNotFound, match="Зориулалт"):
        printed_values(text_lines(text), TEMPLATE, CLAIMS)


def test_a_page_without_the_body_after_the_table_is_reported() -> None:
    text = page(FIELDS).rsplit("\r\n", 2)[0]  # the body lines cut off
    with pytest.raises(FieldsNotFound, match="body"):
        printed_values(text_lines(text), TEMPLATE, CLAIMS)
