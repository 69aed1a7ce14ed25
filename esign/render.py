"""Render an A4 certificate in Mongolian (and English) with its QR seal block, using fpdf2.

Fonts (DejaVu Sans, which covers Cyrillic including Ө ө Ү ү) are embedded as subsets so the
text stays extractable. The QR code is drawn as vector squares, so it prints sharply at any
resolution; the human-readable line under it gives the address and a short code to type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import zxingcpp
from fpdf import FPDF

from .compiled import Canvas, Document, compile_document, covers
from .errors import InputError
from .template import DocumentData, Template

FONT_DIR = Path(__file__).resolve().parent / "fonts"
QR_SIZE_MM = 46.0
LABEL_W = 62.0
"""Width of the field table's label column (mm); the values take the rest of the line."""


@dataclass(frozen=True)
class SealBlock:
    """What the seal block shows: the URL in the QR, the address to type and the short code."""

    url: str
    address: str
    code: str


def qr_rows(text: str) -> list[bytes]:
    """QR modules at error-correction level M, smallest version that fits: one bytes per row,
    0 for a dark module.

    zxing-cpp's encoder (already a dependency, for reading) builds the symbol in ~1 ms; the
    qrcode package's pure-Python mask search took ~20 ms, a quarter of rendering a certificate.
    """
    symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    image = memoryview(symbol.to_image(scale=1, add_quiet_zones=False))  # type: ignore[arg-type]
    size = image.shape[0] if image.shape else 0
    pixels = image.tobytes()
    return [pixels[r * size : (r + 1) * size] for r in range(size)]


_DARK_RUN = re.compile(b"\x00+")


class _RunOps(dict[tuple[int, int], str]):
    """(start, end) of a run -> its rectangle, row-relative; a hit is a plain dict lookup."""

    def __missing__(self, span: tuple[int, int]) -> str:
        op = self[span] = f"{span[0]} 0 {span[1] - span[0]} -1 re"
        return op


_RUN_OPS = _RunOps()


def _draw_qr(pdf: Surface, rows: list[bytes], x: float, y: float, size: float) -> None:
    """Every run of dark modules as one filled rectangle, in module units.

    One ``cm`` scales modules to the page and each row is filled and then steps one module
    down, so a rectangle's text depends only on its run and is written once per process: the
    QR's ~1,000-2,000 rectangles were most of the time to lay out a compiled certificate (and
    1,200 separate ``rect()`` calls a tenth of an fpdf2 one).
    """
    k = pdf.k
    module = size / len(rows) * k
    head = f"q 0 g {module:.5f} 0 0 {module:.5f} {x * k:.3f} {(pdf.h - y) * k:.3f} cm"
    ops = [head]
    for row in rows:
        runs = [_RUN_OPS[m.span()] for m in _DARK_RUN.finditer(row)]
        ops.append(f"{' '.join(runs)} f 1 0 0 1 0 -1 cm" if runs else "1 0 0 1 0 -1 cm")
    ops.append("Q")
    pdf._out("\n".join(ops))


def _fmt(d: date | None) -> str:
    return d.isoformat() if d else "—"


class _Pdf(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans-MN.ttf"))
        self.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold-MN.ttf"))
        self.set_auto_page_break(auto=False)
        self.set_margins(20, 18, 20)


class Surface(Protocol):
    """What the certificate layout draws on: fpdf2's FPDF, or a compiled template's Canvas."""

    @property
    def epw(self) -> float: ...
    @property
    def k(self) -> float: ...
    @property
    def h(self) -> float: ...

    def set_font(self, family: str, style: str = ..., size: float = ...) -> None: ...
    def set_draw_color(self, r: int, g: int = ..., b: int = ...) -> None: ...
    def set_text_color(self, r: int, g: int = ..., b: int = ...) -> None: ...
    def set_line_width(self, width: float) -> None: ...
    def get_y(self) -> float: ...
    def set_x(self, x: float) -> None: ...
    def set_y(self, y: float) -> None: ...
    def set_xy(self, x: float, y: float) -> None: ...
    def ln(self, h: float | None = ...) -> None: ...
    def line(self, x1: float, y1: float, x2: float, y2: float) -> None: ...
    def rect(self, x: float, y: float, w: float, h: float) -> None: ...
    def _out(self, s: str) -> None: ...
    def cell(
        self,
        w: float,
        h: float,
        text: str = ...,
        *,
        align: str = ...,
        new_x: Any = ...,
        new_y: Any = ...,
    ) -> object: ...
    def multi_cell(
        self,
        w: float,
        h: float,
        text: str,
        *,
        align: str = ...,
        new_x: Any = ...,
        new_y: Any = ...,
    ) -> object: ...


_SEAL_TEXT = (
    "Цахим тамга, гарын үсгээр баталгаажсан",
    "Утасныхаа камераар QR кодыг уншуулж, эсвэл доорх хаягаар орж кодыг оруулан "
    "баримтын жинхэнэ эсэхийг шалгана уу.\n"
    "Signed and sealed electronically. Scan the QR code, or open the address below and "
    "type the code, to check that this document is authentic.",
)


def _layout(pdf: Surface, template: Template, data: DocumentData, seal: SealBlock) -> None:
    """Draw the certificate on the current page; the same calls for fpdf2 and a compiled one."""
    width = pdf.epw

    pdf.set_font("DejaVu", "B", 12)
    pdf.cell(width, 6, "МОНГОЛ УЛС", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(width, 6, template.issuer_mn.upper(), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8.5)
    pdf.cell(width, 5, f"Mongolia · {template.issuer_en}", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(30, 60, 120)
    pdf.set_line_width(0.6)
    pdf.line(20, pdf.get_y() + 2, 20 + width, pdf.get_y() + 2)
    pdf.ln(9)

    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(width, 8, template.title_mn, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(width, 6, template.title_en, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)

    pdf.set_font("DejaVu", "", 9.5)
    for label, value in _meta(data):
        pdf.cell(60, 6, label)
        pdf.set_font("DejaVu", "B", 9.5)
        pdf.cell(width - 60, 6, value, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 9.5)
    pdf.ln(4)

    pdf.set_draw_color(150, 150, 150)
    pdf.set_line_width(0.2)
    label_w = LABEL_W
    for label_mn, label_en, value in _rows(template, data):
        y0 = pdf.get_y()
        pdf.set_font("DejaVu", "", 9.5)
        pdf.multi_cell(label_w, 5, f"{label_mn}\n{label_en}", new_x="RIGHT", new_y="TOP")
        pdf.set_xy(20 + label_w, y0)
        pdf.set_font("DejaVu", "B", 10)
        pdf.multi_cell(width - label_w, 5, value, new_x="LMARGIN", new_y="NEXT")
        y1 = max(pdf.get_y(), y0 + 10) + 1.5
        pdf.rect(20, y0 - 1, width, y1 - y0)
        pdf.line(20 + label_w - 1, y0 - 1, 20 + label_w - 1, y1 - 1)
        pdf.set_y(y1)
    pdf.ln(6)

    body_mn, body_en = _bodies(template, data)
    pdf.set_font("DejaVu", "", 10.5)
    pdf.multi_cell(width, 6, body_mn, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("DejaVu", "", 8.5)
    pdf.set_text_color(70, 70, 70)
    pdf.multi_cell(width, 4.5, body_en, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)

    # Seal block, anchored to the bottom of the page.
    top = 297 - 18 - QR_SIZE_MM - 6
    pdf.set_draw_color(30, 60, 120)
    pdf.set_line_width(0.4)
    pdf.rect(20, top - 4, width, QR_SIZE_MM + 8)
    _draw_qr(pdf, qr_rows(seal.url), 24, top, QR_SIZE_MM)
    text_x = 24 + QR_SIZE_MM + 6
    text_w = 20 + width - text_x - 4
    pdf.set_xy(text_x, top)
    pdf.set_font("DejaVu", "B", 10)
    pdf.multi_cell(text_w, 5.5, _SEAL_TEXT[0], new_x="LEFT", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8.5)
    pdf.multi_cell(text_w, 4.5, _SEAL_TEXT[1], new_x="LEFT", new_y="NEXT")
    pdf.ln(1.5)
    pdf.set_font("DejaVu", "B", 9.5)
    pdf.set_x(text_x)
    pdf.multi_cell(text_w, 5, seal.address, new_x="LEFT", new_y="NEXT")
    pdf.set_x(text_x)
    pdf.cell(text_w, 5, f"Код / Code: {seal.code}")


def _meta(data: DocumentData) -> list[tuple[str, str]]:
    return [
        ("Дугаар / No.", data.number),
        ("Олгосон огноо / Issued", _fmt(data.issued)),
        ("Хүчинтэй хугацаа / Valid until", _fmt(data.expires)),
    ]


def _rows(template: Template, data: DocumentData) -> list[tuple[str, str, str]]:
    return [
        ("Овог, нэр", "Name", data.name),
        ("Регистрийн дугаар", "Register number", data.register_number),
        *((f.label_mn, f.label_en, data.fields[f.key]) for f in template.fields),
    ]


@cache
def _measure() -> FPDF:
    return _Pdf()


_WIDTHS: dict[tuple[str, float, str], float] = {}
"""Widths measured by :func:`check_table_fits`, per font style, size and text: labels repeat on
every document of a template and most value words across a batch (fpdf2 measures in ~20 us)."""


def _width(style: str, size: float, text: str) -> float:
    key = (style, size, text)
    width = _WIDTHS.get(key)
    if width is None:
        pdf = _measure()
        pdf.set_font("DejaVu", style, size)
        width = pdf.get_string_width(text)
        if len(_WIDTHS) < 200_000:
            _WIDTHS[key] = width
    return width


def check_table_fits(template: Template, data: DocumentData) -> None:
    """Refuse a table a verifier could not read back from the page (docs/qr-seal.md §6.1): a
    label wider than its column wraps, so its row is not found; a value word wider than its
    column is broken mid-word, and the break reads back as a space."""
    pdf = _measure()
    label_room = LABEL_W - 2 * pdf.c_margin
    value_room = pdf.epw - LABEL_W - 2 * pdf.c_margin
    for label_mn, label_en, value in _rows(template, data):
        for label in (label_mn, label_en):
            if _width("", 9.5, label) > label_room:
                raise InputError(
                    f"template {template.name}: the label {label!r} is wider than its column "
                    f"({LABEL_W:g} mm); shorten it so that it prints on one line"
                )
        for word in value.split():
            if _width("B", 10, word) > value_room:
                raise InputError(
                    f"{label_en}: the word {word[:40]!r} is wider than the value column and would "
                    "be broken mid-word; a verifier could not read it back as sealed"
                )


def _bodies(template: Template, data: DocumentData) -> tuple[str, str]:
    values = data.placeholders()
    return template.body_mn.format_map(values), template.body_en.format_map(values)


def _texts(template: Template, data: DocumentData, seal: SealBlock) -> tuple[list[str], list[str]]:
    """Everything the layout writes: single-line cells, and multi-line cells (may hold "\n")."""
    cells = [
        "МОНГОЛ УЛС",
        template.issuer_mn.upper(),
        f"Mongolia · {template.issuer_en}",
        template.title_en,
        *(t for pair in _meta(data) for t in pair),
        f"Код / Code: {seal.code}",
    ]
    multi = [
        template.title_mn,
        *(t for row in _rows(template, data) for t in row),
        *_bodies(template, data),
        *_SEAL_TEXT,
        seal.address,
    ]
    return cells, multi


def render_certificate_fpdf(
    template: Template,
    data: DocumentData,
    seal: SealBlock,
    *,
    created: datetime | None = None,
) -> bytes:
    """The unsigned certificate PDF laid out and written by fpdf2 (fonts subset per document)."""
    check_table_fits(template, data)
    pdf = _Pdf()
    pdf.set_title(f"{template.title_mn} {data.number}")
    pdf.set_author(template.issuer_mn)
    pdf.set_creator("esign")
    pdf.set_lang("mn")
    pdf.set_creation_date(created or datetime.now(UTC))
    pdf.add_page()
    _layout(pdf, template, data, seal)
    return bytes(pdf.output())


@cache
def _compiled() -> Document:
    """Fonts cut and written once per process; built on first use."""
    return compile_document(_Pdf())


def render_certificate(
    template: Template,
    data: DocumentData,
    seal: SealBlock,
    *,
    created: datetime | None = None,
) -> bytes:
    """The unsigned certificate PDF.

    Drawn on a compiled template (fonts embedded once, a fixed subset) when every character is
    in that subset; otherwise by fpdf2, which subsets the fonts for this document's text.
    """
    cells, multi = _texts(template, data, seal)
    if not (covers(cells, newlines=False) and covers(multi)):
        return render_certificate_fpdf(template, data, seal, created=created)
    check_table_fits(template, data)
    document = _compiled()
    canvas = Canvas(document)
    _layout(canvas, template, data, seal)
    return document.pdf(
        canvas.content(),
        title=f"{template.title_mn} {data.number}",
        author=template.issuer_mn,
        created=created or datetime.now(UTC),
    )
