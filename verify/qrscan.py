"""Find QR seals in what a user has: the payload text or URL, a photo or scan (PNG/JPEG), or a PDF
(pages rendered with poppler's pdftoppm). Decoding uses zxing-cpp, which copes with blur,
rotation and uneven light far better than a hand-written detector would."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from esign.errors import InputError

MAX_IMAGE_PIXELS = 60_000_000
PDF_DPI = 150


def _zxing_texts(image: Image.Image) -> list[str]:
    import zxingcpp

    found: list[str] = []
    gray = ImageOps.grayscale(image)
    # A clean render reads at once; photos and photocopies may need contrast or a larger size.
    for candidate in (
        gray,
        ImageOps.autocontrast(gray),
        gray.resize((gray.width * 2, gray.height * 2)),
    ):
        for result in zxingcpp.read_barcodes(
            candidate, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        ):
            if result.valid and result.text and result.text not in found:
                found.append(result.text)
        if found:
            break
    return found


def texts_from_image(path: Path) -> list[str]:
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(path) as image:
            image.load()
            return _zxing_texts(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as e:
        raise InputError(f"{path} is not a readable PNG or JPEG image ({e})") from e


def texts_from_pdf(path: Path, dpi: int = PDF_DPI) -> list[str]:
    if shutil.which("pdftoppm") is None:
        raise InputError("reading QR codes from PDFs needs poppler's pdftoppm (poppler-utils)")
    with tempfile.TemporaryDirectory(prefix="esign-qr-") as tmp:
        proc = subprocess.run(
            ["pdftoppm", "-r", str(dpi), "-l", "10", "-gray", "-png", str(path), f"{tmp}/p"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        pages = sorted(Path(tmp).glob("p*.png"))
        if proc.returncode != 0 and not pages:
            raise InputError(f"{path}: cannot render the PDF to find its QR code")
        found: list[str] = []
        for page in pages:
            for text in texts_from_image(page):
                if text not in found:
                    found.append(text)
        return found


def pdf_text(path: Path) -> str:
    """The document's text as pdftotext extracts it, whitespace collapsed."""
    if shutil.which("pdftotext") is None:
        raise InputError("matching a seal to its PDF needs poppler's pdftotext (poppler-utils)")
    proc = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return " ".join(proc.stdout.decode("utf-8", "replace").split())


def kind_of(path: Path) -> str:
    """``pdf``, ``image`` or ``text`` from the file's first bytes (never from its name)."""
    try:
        with path.open("rb") as f:
            head = f.read(1024)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from e
    if b"%PDF-" in head:
        return "pdf"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff")):
        return "image"
    return "text"
