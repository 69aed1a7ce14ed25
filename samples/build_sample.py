"""Regenerate esign/data/certificate.pdf (samples/certificate.pdf links to it), the 1-page
document the demo, tests and benchmarks sign. It ships in the package so `esign demo` needs no
checkout.

Run: python samples/build_sample.py  (needs fpdf2 and the DejaVu fonts from fonts-dejavu-core)
"""

from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

FONTS = Path("/usr/share/fonts/truetype/dejavu")
OUT = Path(__file__).resolve().parent.parent / "esign" / "data" / "certificate.pdf"


def build() -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime(2026, 11, 25, tzinfo=UTC))  # reproducible bytes
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(0, 8, "МОНГОЛ УЛС", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 8, "УЛСЫН БҮРТГЭЛИЙН ЕРӨНХИЙ ГАЗАР", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_font("DejaVu", "B", 16)
    pdf.cell(0, 10, "ОРШИН СУУГАА ХАЯГИЙН ТОДОРХОЙЛОЛТ", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(0, 6, "Certificate of residence (sample)", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    rows = [
        ("Дугаар / No.", "ОСХ-2026-000001"),
        ("Овог, нэр / Name", "Болд овогтой Бат-Эрдэнэ"),
        ("Регистрийн дугаар / Register No.", "УБ99112233"),
        ("Хаяг / Address", "Улаанбаатар, Сүхбаатар дүүрэг, 1-р хороо, Өлзийт гудамж 12"),
        ("Олгосон огноо / Issued", "2026-11-25"),
    ]
    pdf.set_font("DejaVu", "", 11)
    for label, value in rows:
        pdf.cell(70, 8, label, border=1)
        pdf.multi_cell(0, 8, value, border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.multi_cell(
        0,
        6,
        "Энэхүү тодорхойлолтыг цахим хэлбэрээр олгосон бөгөөд цахим гарын үсгээр баталгаажуулсан. "
        "This sample document is signed electronically; it carries no legal force.",
    )
    return bytes(pdf.output())


if __name__ == "__main__":
    OUT.write_bytes(build())
    print(f"wrote {OUT}")
