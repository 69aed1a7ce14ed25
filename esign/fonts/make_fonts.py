"""Regenerate the bundled fonts: DejaVu Sans cut down to what Mongolian state documents use.

Full DejaVu Sans has ~6,000 glyphs; parsing and subsetting it per document dominated rendering
time. Layout tables and hinting are dropped too: fpdf2 neither shapes nor hints, and both made
every per-document subset slower to build. Latin, Cyrillic (with Ө ө Ү ү), punctuation, №
and ₮ are kept. Run with fontTools:
python esign/fonts/make_fonts.py /usr/share/fonts/truetype/dejavu
"""

import sys
from pathlib import Path

from fontTools import subset

UNICODES = "U+0020-007E,U+00A0-00FF,U+0400-04FF,U+2010-2027,U+2030-203A,U+2116,U+20AE,U+2212,U+25A0"


def main(source: Path) -> None:
    here = Path(__file__).resolve().parent
    for name in ("DejaVuSans", "DejaVuSans-Bold"):
        out = here / f"{name}-MN.ttf"
        subset.main(
            [
                str(source / f"{name}.ttf"),
                f"--unicodes={UNICODES}",
                "--layout-features=",  # no shaping or kerning tables: fpdf2 does not use them
                "--no-hinting",  # hinting instructions were most of the glyph data
                "--desubroutinize",
                "--name-IDs=*",
                "--notdef-outline",
                f"--output-file={out}",
            ]
        )
        print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/fonts/truetype/dejavu"))
