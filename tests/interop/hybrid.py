"""LibreOffice "hybrid" PDFs (the ODF source embedded, named by the trailer's /AdditionalStreams)
and the two shapes of them seen in the wild once signed by other tools.

* the reference stays dangling (names an object no xref section defines: legal, it reads as
  null, ISO 32000-2 7.3.10);
* a later update (an LTV update adding /DSS) defines an object under that very number.

LibreOffice writes the first file (`--convert-to pdf` with the IsAddStream export option); the
dangling reference is then set by an incremental update through pyHanko's writer, numbered so
that it stays free through the signature and is the first number the next update allocates.
"""

from __future__ import annotations

import os
import subprocess
from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

ODF_STREAM = generic.NameObject("/application/vnd.oasis.opendocument.text")
EXPORT = 'pdf:writer_pdf_Export:{"IsAddStream":{"type":"boolean","value":"true"}}'


def libreoffice_hybrid(text: str, work: Path) -> Path:
    """Write ``text`` as an ODF document and export it with LibreOffice as a hybrid PDF."""
    work.mkdir(parents=True, exist_ok=True)
    src = work / "hybrid.txt"
    src.write_text(text, encoding="utf-8")
    env = {**os.environ, "HOME": str(work / "lo-home")}  # a private LibreOffice profile
    for target in ("odt", EXPORT):
        source = src if target == "odt" else work / "hybrid.odt"
        subprocess.run(
            ["libreoffice", "--headless", "--convert-to", target, "--outdir", str(work), source],
            check=True,
            capture_output=True,
            env=env,
            timeout=180,
        )
    pdf = work / "hybrid.pdf"
    trailer = PdfFileReader(BytesIO(pdf.read_bytes())).trailer
    assert "/AdditionalStreams" in trailer, "LibreOffice wrote no /AdditionalStreams"
    return pdf


def size(data: bytes) -> int:
    return int(PdfFileReader(BytesIO(data), strict=False).trailer["/Size"])


def with_dangling_stream(data: bytes, number: int) -> bytes:
    """An incremental update whose trailer's /AdditionalStreams names object ``number``, which
    no xref section defines."""
    w = IncrementalPdfFileWriter(BytesIO(data), strict=False)
    assert number >= size(data)
    ref = generic.IndirectObject(number, 0, w)
    w.set_custom_trailer_entry(
        generic.NameObject("/AdditionalStreams"), generic.ArrayObject([ODF_STREAM, ref])
    )
    w._force_write_when_empty = True  # only the trailer changes
    out = BytesIO()
    w.write(out)
    return out.getvalue()
