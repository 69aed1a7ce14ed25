"""Compiled certificate rendering: fonts embedded once, each document only fills text and QR.

fpdf2 spent ~70 ms of a ~80 ms certificate subsetting the fonts again for every document and
breaking lines one character at a time. Here the fonts are cut once per process to a fixed
subset (Latin, Cyrillic with Ө ө Ү ү, digits, punctuation), their PDF objects are written once,
and :class:`Canvas` repeats fpdf2's cell/multi_cell layout (same line breaks, positions and
justification) with cached character widths, emitting the same content-stream operators. A
document is then its page content, its info dictionary and a cross-reference table around the
pre-written objects. Text using a character outside the subset is rendered by fpdf2 instead
(:func:`esign.render.render_certificate` decides), so nothing is ever drawn with a missing glyph.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from io import BytesIO
from pathlib import Path
from typing import Literal

from fpdf import FPDF
from fpdf.fonts import TTFFont

_TOLERANCE = 1e-9  # fpdf2's FloatTolerance
_SPACE = " "

# NBSP (U+00A0), soft hyphen (U+00AD) and other spaces are left out on purpose: fpdf2 breaks and
# justifies on them, which Canvas does not repeat; text holding them falls back to fpdf2.
_RANGES = (
    (0x20, 0x7E),  # Basic Latin: letters, digits, punctuation
    (0xAB, 0xAB),  # «
    (0xB0, 0xB0),  # °
    (0xB7, 0xB7),  # ·
    (0xBB, 0xBB),  # »
    (0x401, 0x401),  # Ё
    (0x410, 0x44F),  # А-я
    (0x451, 0x451),  # ё
    (0x4AE, 0x4AF),  # Ү ү
    (0x4E8, 0x4E9),  # Ө ө
    (0x2013, 0x2014),  # – —
    (0x2018, 0x201E),  # quotation marks
    (0x2022, 0x2022),  # •
    (0x2026, 0x2026),  # …
    (0x2116, 0x2116),  # №
    (0x20AE, 0x20AE),  # ₮
)
REPERTOIRE = frozenset(chr(c) for lo, hi in _RANGES for c in range(lo, hi + 1))
"""Characters a compiled template can draw; anything else is rendered by fpdf2."""
_REPERTOIRE_NL = REPERTOIRE | {"\n"}


def covers(texts: Iterable[str], *, newlines: bool = True) -> bool:
    """Whether every character of ``texts`` is in the fixed subset (and "\\n" where allowed)."""
    allowed = _REPERTOIRE_NL if newlines else REPERTOIRE
    return all(allowed.issuperset(t) for t in texts)


def _pdf_string(text: str) -> str:
    if text.isascii():
        escaped = text.replace("\\", "\\\\").replace(")", "\\)").replace("(", "\\(")
        return f"({escaped.replace(chr(13), chr(92) + 'r')})"
    return f"<feff{text.encode('utf-16-be').hex()}>"


@dataclass(frozen=True, eq=False)  # hashed by identity: a key of the line-break cache
class Face:
    """One embedded font: its resource number, widths (1/1000 em) and glyph codes."""

    index: int
    base_font: str
    widths: dict[str, int]
    codes: dict[str, str]  # character -> 4 hex digits (CID = glyph id in the embedded subset)
    space_code: str

    @cached_property
    def table(self) -> dict[int, str]:
        """``codes`` for ``str.translate``: a text's glyph codes in one call."""
        return {ord(c): code for c, code in self.codes.items()}

    def hex(self, text: str) -> str:
        """The glyph codes of ``text``; KeyError for a character the subset lacks."""
        out = text.translate(self.table)
        if len(out) != 4 * len(text):
            raise KeyError(next(c for c in text if c not in self.codes))
        return out


@dataclass(frozen=True)
class _FontSource:
    path: Path
    index: int
    base_font: str
    cw: dict[int, int]
    ascent: int
    descent: int
    cap_height: int
    flags: int
    bbox: str
    italic_angle: int
    stem_v: int
    missing_width: int


def _stream(header: str, data: bytes, *, compress: bool = True, level: int = 6) -> bytes:
    body = zlib.compress(data, level) if compress else data
    filt = "/Filter /FlateDecode " if compress else ""
    return f"<<{filt}/Length {len(body)}{header}>>\nstream\n".encode() + body + b"\nendstream"


def _to_unicode(codes: dict[str, str]) -> bytes:
    pairs = sorted((code, ch) for ch, code in codes.items())
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        "<0000> <FFFF>",
        "endcodespacerange",
    ]
    for start in range(0, len(pairs), 100):
        chunk = pairs[start : start + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines += [f"<{code}> <{ch.encode('utf-16-be').hex()}>" for code, ch in chunk]
        lines.append("endbfchar")
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return "\n".join(lines).encode("ascii")


def _font_objects(src: _FontSource, first: int) -> tuple[Face, list[bytes]]:
    """The Type0 font, its CIDFont, ToUnicode, descriptor and FontFile2, numbered from ``first``."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.layout_features = []
    options.hinting = False
    options.notdef_outline = True
    options.name_IDs = ["*"]
    font = TTFont(str(src.path))
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(ord(c) for c in REPERTOIRE))
    subsetter.subset(font)
    buf = BytesIO()
    font.save(buf)
    program = buf.getvalue()
    cmap = font.getBestCmap()
    order = {name: gid for gid, name in enumerate(font.getGlyphOrder())}
    codes = {chr(u): f"{order[name]:04x}" for u, name in cmap.items() if chr(u) in REPERTOIRE}
    widths = {ch: src.cw[ord(ch)] for ch in codes}
    by_gid = sorted((int(code, 16), widths[ch]) for ch, code in codes.items())
    w_array = " ".join(f"{gid} [{w}]" for gid, w in by_gid)
    name = f"MPDFAA+{src.base_font}"
    n = first
    objects = [
        (
            f"<</Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H "
            f"/DescendantFonts [{n + 1} 0 R] /ToUnicode {n + 2} 0 R>>"
        ).encode(),
        (
            f"<</Type /Font /Subtype /CIDFontType2 /BaseFont /{name} "
            "/CIDSystemInfo <</Registry (Adobe) /Ordering (UCS) /Supplement 0>> "
            f"/CIDToGIDMap /Identity /DW {src.missing_width} /W [{w_array}] "
            f"/FontDescriptor {n + 3} 0 R>>"
        ).encode(),
        _stream("", _to_unicode(codes)),
        (
            f"<</Type /FontDescriptor /FontName /{name} /Ascent {src.ascent} "
            f"/Descent {src.descent} /CapHeight {src.cap_height} /Flags {src.flags} "
            f"/FontBBox {src.bbox} /ItalicAngle {src.italic_angle} /StemV {src.stem_v} "
            f"/MissingWidth {src.missing_width} /FontFile2 {n + 4} 0 R>>"
        ).encode(),
        _stream(f" /Length1 {len(program)}", program),
    ]
    face = Face(src.index, name, widths, codes, codes[_SPACE])
    return face, objects


@dataclass(frozen=True)
class PageGeometry:
    """fpdf2's A4 page in millimetres, copied from an FPDF instance so that layout matches."""

    k: float
    w: float
    h: float
    w_pt: float
    h_pt: float
    l_margin: float
    t_margin: float
    r_margin: float
    c_margin: float
    line_width: float


class Document:
    """The pre-written part of every compiled PDF: catalog, page tree, page and fonts.

    Object 4 is the page content and the last object the info dictionary; both are written per
    document, everything else is bytes made once.
    """

    CONTENT = 4

    def __init__(self, geometry: PageGeometry, sources: list[tuple[str, _FontSource]]) -> None:
        self.geometry = geometry
        self.faces: dict[str, Face] = {}
        fonts: list[bytes] = []
        refs: list[str] = []
        n = self.CONTENT + 1
        for key, src in sources:
            face, objs = _font_objects(src, n)
            self.faces[key] = face
            refs.append(f"/F{face.index} {n} 0 R")
            fonts += objs
            n += len(objs)
        resources = n
        self.info = n + 1
        g = geometry
        head = [
            (
                f"<</Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 {g.w_pt:.2f} {g.h_pt:.2f}]>>"
            ).encode(),
            (
                b"<</Type /Catalog /Pages 1 0 R /OpenAction [3 0 R /FitH null] "
                b"/PageLayout /OneColumn /Lang (mn)>>"
            ),
            (
                "<</Type /Page /Parent 1 0 R /Contents 4 0 R "
                "/Group <</Type /Group /S /Transparency /CS /DeviceRGB>> "
                f"/Resources {resources} 0 R>>"
            ).encode(),
        ]
        tail = [
            *fonts,
            (
                f"<</Font <<{' '.join(refs)}>> /ProcSet [/PDF /Text /ImageB /ImageC /ImageI]>>"
            ).encode(),
        ]
        self._head, self._head_offsets = self._serialise(b"%PDF-1.4\n%\xe9\xeb\xf1\xbf\n", head, 1)
        self._tail, self._tail_offsets = self._serialise(b"", tail, self.CONTENT + 1)

    @staticmethod
    def _serialise(prefix: bytes, objects: list[bytes], first: int) -> tuple[bytes, list[int]]:
        out = bytearray(prefix)
        offsets = []
        for i, body in enumerate(objects, start=first):
            offsets.append(len(out))
            out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
        return bytes(out), offsets

    def pdf(self, content: bytes, *, title: str, author: str, created: datetime) -> bytes:
        """The complete file around one page's content stream."""
        stamp = created.astimezone(UTC).strftime("D:%Y%m%d%H%M%SZ")
        info = (
            f"<</Title {_pdf_string(title)} /Author {_pdf_string(author)} /Creator (esign) "
            f"/CreationDate ({stamp})>>"
        ).encode()
        out = bytearray(self._head)
        offsets = list(self._head_offsets)
        offsets.append(len(out))
        # level 1: a quarter of level 6's time for ~1 KiB more (the QR's rectangles)
        out += f"{self.CONTENT} 0 obj\n".encode() + _stream("", content, level=1) + b"\nendobj\n"
        base = len(out)
        out += self._tail
        offsets += [base + o for o in self._tail_offsets]
        offsets.append(len(out))
        out += f"{self.info} 0 obj\n".encode() + info + b"\nendobj\n"
        xref = len(out)
        size = self.info + 1
        doc_id = hashlib.md5(content + info, usedforsecurity=False).hexdigest().upper()
        out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
        out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
        out += (
            f"trailer\n<</Size {size} /Root 2 0 R /Info {self.info} 0 R "
            f"/ID [<{doc_id}><{doc_id}>]>>\nstartxref\n{xref}\n%%EOF\n"
        ).encode()
        return bytes(out)


@dataclass(frozen=True)
class _Line:
    text: str
    units: int  # sum of the character widths, 1/1000 em
    spaces: int
    justify: bool
    trailing_nl: bool


@lru_cache(maxsize=4096)
def _break_lines(
    face: Face, size_pt: float, k: float, max_width: float, text: str, justify: bool
) -> tuple[_Line, ...]:
    """fpdf2's MultiLineBreak (word wrap, one style): the same lines from the same text."""
    widths = face.widths
    lines: list[_Line] = []
    i, n = 0, len(text)
    forced: int | None = None
    while i < n:
        last_forced, forced = forced, None
        start, units, spaces = i, 0, 0
        hint: tuple[int, int, int] | None = None  # space index, units and spaces before it
        line: _Line | None = None
        while i < n:
            c = text[i]
            if c == "\n":
                line = _Line(text[start:i], units, spaces, False, True)
                i += 1
                break
            cw = widths[c]
            width = units * size_pt * 0.001 / k
            if (width + cw * size_pt * 0.001 / k) - max_width > _TOLERANCE:
                if c == _SPACE:
                    line = _Line(text[start:i], units, spaces, justify, False)
                    i += 1
                elif hint is not None:
                    at, h_units, h_spaces = hint
                    line = _Line(text[start:at], h_units, h_spaces, justify, False)
                    i = at + 1
                else:
                    if last_forced == i:
                        raise ValueError("not enough horizontal space for a single character")
                    forced = i
                    line = _Line(text[start:i], units, spaces, False, False)
                break
            if c == _SPACE:
                hint = (i, units, spaces)
                spaces += 1
            units += cw
            i += 1
        if line is None:
            if not units:
                break
            line = _Line(text[start:i], units, spaces, False, False)
        lines.append(line)
    return tuple(lines)


def _rgb(r: int, g: int, b: int) -> str | None:
    """fpdf2's colour operands; None for black, its default (DeviceGray 0)."""
    if r == g == b == 0:
        return None
    return f"{r / 255:.4f} {g / 255:.4f} {b / 255:.4f}"


XPos = Literal["LEFT", "RIGHT", "LMARGIN"]
YPos = Literal["TOP", "NEXT"]


class Canvas:
    """The part of fpdf2's FPDF that certificates use, writing the same operators."""

    def __init__(self, document: Document) -> None:
        g = document.geometry
        self._faces = document.faces
        self.k, self.w, self.h = g.k, g.w, g.h
        self.l_margin, self.t_margin, self.r_margin = g.l_margin, g.t_margin, g.r_margin
        self.c_margin = g.c_margin
        self.epw = g.w - g.l_margin - g.r_margin
        self.x, self.y = g.l_margin, g.t_margin
        self._ops: list[str] = ["2 J", f"{g.line_width * g.k:.2f} w"]
        self._line_width = g.line_width
        self._draw: str | None = None
        self._text: str | None = None
        self._face: Face | None = None
        self._family = ""
        self._style = ""
        self._size_pt = 0.0
        self._font_on_page = False
        self._lasth = 0.0

    # state -------------------------------------------------------------------------------------

    def set_font(self, family: str, style: str = "", size: float = 0) -> None:
        family = family.lower()
        style = "".join(sorted(style.upper()))
        if not size:
            size = self._size_pt
        if self._family == family and self._style == style and abs(self._size_pt - size) <= 1e-9:
            return
        self._face = self._faces[style]
        self._family, self._style, self._size_pt = family, style, size
        self._font_on_page = False

    def set_draw_color(self, r: int, g: int = -1, b: int = -1) -> None:
        color = _rgb(r, g, b)
        if color != self._draw:
            self._draw = color
            self._ops.append(f"{color} RG" if color else "0 G")

    def set_text_color(self, r: int, g: int = -1, b: int = -1) -> None:
        self._text = _rgb(r, g, b)

    def set_line_width(self, width: float) -> None:
        if width != self._line_width:
            self._line_width = width
            self._ops.append(f"{width * self.k:.2f} w")

    def get_y(self) -> float:
        return self.y

    def set_x(self, x: float) -> None:
        self.x = x if x >= 0 else self.w + x

    def set_y(self, y: float) -> None:
        self.x = self.l_margin
        self.y = y if y >= 0 else self.h + y

    def set_xy(self, x: float, y: float) -> None:
        self.set_y(y)
        self.set_x(x)

    def ln(self, h: float | None = None) -> None:
        self.x = self.l_margin
        self.y += h if h is not None else self._lasth

    def _out(self, s: str) -> None:
        self._ops.append(s)

    def content(self) -> bytes:
        return ("\n".join(self._ops) + "\n").encode("latin-1")

    # drawing -----------------------------------------------------------------------------------

    def line(self, x1: float, y1: float, x2: float, y2: float) -> None:
        k, h = self.k, self.h
        self._ops.append(f"{x1 * k:.2f} {(h - y1) * k:.2f} m {x2 * k:.2f} {(h - y2) * k:.2f} l S")

    def rect(self, x: float, y: float, w: float, h: float) -> None:
        k = self.k
        self._ops.append(f"{x * k:.2f} {(self.h - y) * k:.2f} {w * k:.2f} {-h * k:.2f} re S")

    # text --------------------------------------------------------------------------------------

    def _render(
        self, line: _Line | None, w: float, h: float, align: str, new_x: XPos, new_y: YPos
    ) -> None:
        """fpdf2's _render_styled_text_line for one fragment of one style."""
        face = self._face
        assert face is not None
        if line is not None and line.text:
            k, size_pt = self.k, self._size_pt
            font_size = size_pt / k
            width = line.units * size_pt * 0.001 / k
            if align == "C":
                dx = (w - width) / 2
            elif align == "R":
                dx = w - self.c_margin - width
            else:
                dx = self.c_margin
            ws = 0.0
            if align == "J" and line.justify and line.spaces:
                ws = (w - 2 * self.c_margin - width) / line.spaces
            if not self._font_on_page:
                self._ops.append(f"BT /F{face.index} {size_pt:.2f} Tf ET")
                self._font_on_page = True
            baseline = self.h - self.y - 0.5 * h - 0.3 * font_size
            sl = [f"BT {(self.x + dx) * k:.2f} {baseline * k:.2f} Td"]
            if self._text is not None:
                sl.append(f"{self._text} rg")
            if ws:
                adj = f"{-(ws * k) * 1000 / size_pt:.3f}"
                words = line.text.split(_SPACE)
                parts = [f"<{face.hex(words[0])}>"]
                sp = face.space_code
                parts += [f"{adj}<{sp}{face.hex(wd)}>" for wd in words[1:]]
                sl.append(f"[{' '.join(parts)}] TJ")
            else:
                sl.append(f"<{face.hex(line.text)}> Tj")
            sl.append("ET")
            s = " ".join(sl)
            self._ops.append(f"q {s} Q" if self._text is not None else s)
        self._lasth = h
        if new_x == "RIGHT":
            self.x += w
        elif new_x == "LMARGIN":
            self.x = self.l_margin
        if new_y == "NEXT":
            self.y += h

    def cell(
        self,
        w: float,
        h: float,
        text: str = "",
        align: str = "L",
        new_x: XPos = "RIGHT",
        new_y: YPos = "TOP",
    ) -> None:
        face = self._face
        assert face is not None
        units = sum(map(face.widths.__getitem__, text))
        line = _Line(text, units, 0, False, False) if text else None
        self._render(line, w, h, align, new_x, new_y)

    def multi_cell(
        self,
        w: float,
        h: float,
        text: str,
        align: str = "J",
        new_x: XPos = "RIGHT",
        new_y: YPos = "NEXT",
    ) -> None:
        face = self._face
        assert face is not None
        prev_y = self.y
        lines = _break_lines(
            face, self._size_pt, self.k, w - 2 * self.c_margin, text, align == "J"
        ) or (None,)
        last = len(lines) - 1
        for i, line in enumerate(lines):
            self._render(
                line,
                w,
                h,
                align,
                new_x if i == last else "LEFT",
                new_y if i == last else "NEXT",
            )
        if lines[-1] is not None and lines[-1].trailing_nl and new_y == "NEXT":
            self.ln()
        if new_y == "TOP":
            self.y = prev_y


def compile_document(pdf: FPDF) -> Document:
    """The pre-written objects for pages laid out like ``pdf`` (an FPDF with its fonts added and
    margins set, no page yet): geometry and font metrics are read from it, so layout matches."""
    sources: list[tuple[str, _FontSource]] = []
    for font in pdf.fonts.values():
        assert isinstance(font, TTFFont)
        d = font.desc
        style = "B" if font.fontkey.endswith("B") else ""
        sources.append(
            (
                style,
                _FontSource(
                    path=Path(font.ttffile),
                    index=font.i,
                    base_font=font.name,
                    cw={ord(c): int(font.cw[ord(c)]) for c in REPERTOIRE},
                    ascent=int(d.ascent),
                    descent=int(d.descent),
                    cap_height=int(d.cap_height),
                    flags=int(d.flags.value),
                    bbox=str(d.font_b_box),
                    italic_angle=int(d.italic_angle),
                    stem_v=int(d.stem_v),
                    missing_width=int(d.missing_width),
                ),
            )
        )
    geometry = PageGeometry(
        k=pdf.k,
        w=pdf.w,
        h=pdf.h,
        w_pt=pdf.w_pt,
        h_pt=pdf.h_pt,
        l_margin=pdf.l_margin,
        t_margin=pdf.t_margin,
        r_margin=pdf.r_margin,
        c_margin=pdf.c_margin,
        line_width=pdf.line_width,
    )
    return Document(geometry, sources)
