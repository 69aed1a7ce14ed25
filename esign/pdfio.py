"""Reading untrusted PDF bytes and writing output files atomically.

A failed signing must never leave a partial output file: output goes to a temporary file in the
target folder and is renamed into place only when complete.
"""

from __future__ import annotations

import os
import tempfile
from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

from .errors import InputError

MAX_PDF_BYTES = 256 * 1024 * 1024


def read_input(path: Path) -> bytes:
    """Read a whole input file, with one-line errors for the usual mistakes."""
    try:
        if path.is_dir():
            raise InputError(f"{path} is a folder, not a PDF file")
        size = path.stat().st_size
        if size > MAX_PDF_BYTES:
            raise InputError(f"{path} is larger than {MAX_PDF_BYTES // 2**20} MiB")
        return path.read_bytes()
    except FileNotFoundError as e:
        raise InputError(f"file not found: {path}") from e
    except PermissionError as e:
        raise InputError(f"permission denied: {path}") from e
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from e


def check_header(data: bytes, name: str) -> None:
    # ISO 32000 allows the header within the first 1024 bytes.
    if b"%PDF-" not in data[:1024]:
        raise InputError(f"{name} is not a PDF file (no %PDF- header)")


def open_for_update(data: bytes, name: str) -> IncrementalPdfFileWriter:
    """An incremental writer over ``data``; refuses non-PDFs, damaged and encrypted files."""
    check_header(data, name)
    try:
        writer = IncrementalPdfFileWriter(BytesIO(data), strict=False)
        reader: PdfFileReader = writer.prev
        if reader.encrypted:
            raise InputError(f"{name} is encrypted; decrypt it before signing")
        reader.root  # noqa: B018 - forces the catalogue to resolve
        writer.root  # noqa: B018
    except InputError:
        raise
    except (PdfError, ValueError, KeyError, TypeError, IndexError, RecursionError) as e:
        raise InputError(f"{name} is damaged or truncated and cannot be read as a PDF") from e
    return writer


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file."""
    target = path.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs are ordinary files
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
