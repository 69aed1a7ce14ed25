"""Find the seal-bound fields on a certificate's page and recompute the fields digest from them.

A bank holding the paper (or the PDF) must be able to check that the address, period or record it
reads is the one the QR seal certifies. The rules (docs/qr-seal.md, section 6.1) use only the
page's text in reading order and the template's labels, so any text extractor will do: PDFium
here, poppler's pdftotext in the tests, OCR of a scan in principle.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from esign.seal import SealClaims, fields_digest
from esign.template import TEMPLATE_DIR, Template, load_template

LINE_BREAKS = ("\r\n", "\r", "\u2028", "\u2029")


@dataclass(frozen=True)
class Row:
    """One row of the printed field table: the value's key and its two label lines."""

    key: str
    label_mn: str
    label_en: str


SUBJECT_ROWS = (
    Row("name", "Овог, нэр", "Name"),
    Row("register_number", "Регистрийн дугаар", "Register number"),
)
"""The two rows every certificate prints before the template's fields (esign/render.py)."""


class FieldsNotFound(ValueError):
    """The page does not show the table the template describes; ``str()`` says which row."""


def text_lines(text: str) -> list[str]:
    """The page text as lines: every white-space run inside a line becomes one space, lines are
    trimmed, empty lines dropped (extractors differ in blank lines and spacing, not in words)."""
    for brk in LINE_BREAKS:
        text = text.replace(brk, "\n")
    return [line for line in (" ".join(raw.split()) for raw in text.split("\n")) if line]


def table_rows(template: Template) -> tuple[Row, ...]:
    return SUBJECT_ROWS + tuple(Row(f.key, f.label_mn, f.label_en) for f in template.fields)


def _label_at(lines: Sequence[str], start: int, row: Row) -> int:
    """Index of the first line at or after ``start`` that is ``row.label_mn`` directly followed by
    ``row.label_en``."""
    mn, en = " ".join(row.label_mn.split()), " ".join(row.label_en.split())
    for i in range(start, len(lines) - 1):
        if lines[i] == mn and lines[i + 1] == en:
            return i
    raise FieldsNotFound(f"the row labelled {row.label_mn!r} / {row.label_en!r} is not on the page")


def printed_values(lines: Sequence[str], template: Template, claims: SealClaims) -> dict[str, str]:
    """Every table value as printed (key -> text), found by the rules of docs/qr-seal.md §6.1.

    A row starts at its Mongolian label line followed by its English label line; its value is
    the lines after them up to the next row's labels, joined by single spaces. The last row's
    value ends where the Mongolian body text begins: the shortest run of lines after which the
    page continues with the template's body, its placeholders filled from the rows (and the
    seal's number), white space collapsed.
    """
    rows = table_rows(template)
    starts: list[int] = []
    for row in rows:
        starts.append(_label_at(lines, starts[-1] + 2 if starts else 0, row))
    values: dict[str, str] = {}
    for k in range(len(rows) - 1):
        values[rows[k].key] = " ".join(lines[starts[k] + 2 : starts[k + 1]])
    last = rows[-1]
    rest = list(lines[starts[-1] + 2 :])
    for count in range(1, len(rest) + 1):
        candidate = {**values, last.key: " ".join(rest[:count]), "number": claims.number}
        try:
            body = " ".join(template.body_mn.format_map(candidate).split())
        except (KeyError, IndexError, ValueError):
            break
        if body and " ".join(rest[count:]).startswith(body):
            values[last.key] = candidate[last.key]
            return values
    raise FieldsNotFound(
        f"the end of the row labelled {last.label_mn!r} (the body text after it) is not on the page"
    )


def printed_digest(values: Mapping[str, str], template: Template) -> bytes:
    """The fields digest of the printed values of the template's ``seal_fields``."""
    return fields_digest({key: values[key] for key in template.seal_fields})


@functools.cache
def _builtin_templates() -> tuple[Template, ...]:
    return tuple(load_template(str(path)) for path in sorted(TEMPLATE_DIR.glob("*.toml")))


def template_for(claims: SealClaims) -> Template | None:
    """The built-in template of the seal's document type and issuer, if there is one."""
    for template in _builtin_templates():
        if template.doc_type == claims.doc_type and template.issuer_code == claims.issuer:
            return template
    return None


def pdf_lines(path: Path) -> list[str]:
    """The PDF's text lines (PDFium, reading order), as :func:`text_lines` makes them."""
    from .qrscan import pdf_page_texts

    return text_lines("\n".join(pdf_page_texts(path)))


__all__ = [
    "SUBJECT_ROWS",
    "FieldsNotFound",
    "Row",
    "pdf_lines",
    "printed_digest",
    "printed_values",
    "table_rows",
    "template_for",
    "text_lines",
]
