"""verify/_fastdiff.py must give exactly what pyHanko's own HistoricalResolver internals give:
the same path map (same sets, built in the same order), the same copies, the same difference
analysis verdicts and the same errors, on the attack corpus, the fuzz regressions, hostile object
graphs and mutated files."""

from __future__ import annotations

import hashlib
import inspect
import random
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter

from esign import testpki
from esign.services import PkiServices
from tests.helpers import REPO
from tests.verify.corpus import build_corpus
from verify import TrustConfig, Verifier, VerifyOptions, _fastdiff
from verify.diffpolicy import ESIGN_DIFF_POLICY
from verify.hybrid import dangling_reads_as_null, unused_numbers_are_fresh

SAMPLE = (REPO / "samples" / "certificate.pdf").read_bytes()
FUZZ = sorted((Path(__file__).parent / "fuzz-regressions").glob("*.pdf"))

# pyHanko 0.38's code that verify/_fastdiff.py mirrors (the copy and the walk), reproduces (the
# view's read: _peek) or relies on (what a parse reads: the skeleton key); an upgrade that changes
# any fails here, and _fastdiff must be brought in line (or dropped) before the new digest is kept.
PINNED = {
    (HistoricalResolver, "_subsume_object"): (
        "94755d9c35afd3c9eb6c0895595974ae0b4afc4177379b954d5b087d329311f8"
    ),
    (HistoricalResolver, "_load_reverse_xref_cache"): (
        "7a0a27ccb00c0cc0958636117b9165df5be1fd2bed7805219ebc90650b499132"
    ),
    (HistoricalResolver, "get_object"): (
        "4d2b19e88804777eaafdae081007cfea443a0dab2819fc62b133309e60bf14da"
    ),
    (PdfFileReader, "get_object"): (
        "97f0ed20bb92661b9e6b98f27959199661ef50a7904d5b4cf5969c8659230366"
    ),
    (PdfFileReader, "_read_object"): (
        "34ac7cc617c5168a0eba5c9e67a08d312f744c2bf54d4a67e8b1d2266e61538b"
    ),
    (generic, "read_object"): "90577693a939543fe8a33d77c8a38f7861cf64883d62e68ac7b792f1c5aa5d8f",
    (generic, "_maybe_read_stream_payload"): (
        "3a24e7569a67cf80a17769f8e5ac596a3974c9a00bd5daa84b7cfd81b2a7bb9c"
    ),
}


def test_pyhanko_internals_unchanged() -> None:
    for (owner, name), digest in PINNED.items():
        source = inspect.getsource(getattr(owner, name))
        assert hashlib.sha256(source.encode()).hexdigest() == digest, name


def _owner(pdf: object, view: HistoricalResolver) -> str:
    return "view" if pdf is view else "reader" if pdf is view.reader else type(pdf).__name__


def _where(ref: Any, view: HistoricalResolver) -> object:
    if isinstance(ref, generic.Reference):
        return (_owner(ref.pdf, view), ref.idnum, ref.generation)
    return type(ref).__name__


def _dump(obj: Any, view: HistoricalResolver, depth: int = 0) -> object:
    """Everything about a copy that pyHanko's could differ in: types, values, containers."""
    if depth > 400:
        return "..."
    here = (type(obj).__name__, _where(getattr(obj, "container_ref", None), view))
    if isinstance(obj, generic.DecryptedObjectProxy):
        return (*here, _dump(obj.raw_object, view, depth + 1))
    if isinstance(obj, generic.IndirectObject):
        return (*here, obj.idnum, obj.generation, _owner(obj.reference.pdf, view))
    if isinstance(obj, generic.DictionaryObject):
        items = [(type(k).__name__, str(k), _dump(v, view, depth + 1)) for k, v in obj.items()]
        data = obj._encoded_data if isinstance(obj, generic.StreamObject) else None
        return (*here, items, data)
    if isinstance(obj, generic.ArrayObject):
        return (*here, [_dump(v, view, depth + 1) for v in obj])
    return (*here, None if isinstance(obj, generic.NullObject) else repr(obj))


def _open(data: bytes) -> PdfFileReader:
    reader = PdfFileReader(BytesIO(data), strict=False)
    if reader.encrypted:
        reader.decrypt(b"")
    return reader


def _error(e: Exception) -> tuple[str, str]:
    """An error as compared. Where exactly Python's recursion limit is hit depends on the caller's
    stack (pyHanko's own message differs between callers), so only its type counts."""
    return (type(e).__name__, "" if isinstance(e, RecursionError) else str(e))


# One run's skeletons for every fast analysis in this module: files built from the same sample,
# random graphs and their mutations share objects byte for byte, or nearly.
RUN = _fastdiff.Skeletons()


def _walk(data: bytes, revision: int, fast: bool) -> object:
    """The path map of ``revision`` and what the view gives for each object in it afterwards,
    or the error."""
    try:
        reader = _open(data)
        if fast:
            _fastdiff.install(reader)
        view = reader.get_historical_resolver(revision)
        with _fastdiff.using(RUN if fast else None):
            view._load_reverse_xref_cache()
    except Exception as e:  # the error is part of the behaviour compared
        return ("error", *_error(e))
    cache = view._indirect_object_access_cache or {}
    paths = [(_where(r, view), [p.path for p in ps]) for r, ps in cache.items()]
    return ("ok", paths, [(r.idnum, _read(view, r)) for r in cache])


def _read(view: HistoricalResolver, ref: generic.Reference) -> object:
    """What the view gives whoever asks it for ``ref`` after the walk."""
    try:
        return _dump(view.get_object(ref), view)
    except Exception as e:
        return ("error", *_error(e))


def _review(data: bytes, base: int, fast: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    """ESIGN_DIFF_POLICY's verdict on the revisions after ``base``, set up as the verifier does."""
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(_fastdiff, "install", lambda reader: None)
        try:
            reader = _open(data)
            dangling_reads_as_null(reader)
            unused_numbers_are_fresh(reader)
            with _fastdiff.using(RUN if fast else None):
                result = ESIGN_DIFF_POLICY.review_file(reader, base)
        except Exception as e:
            return ("raised", *_error(e))
    if isinstance(result, Exception):
        return ("suspicious", str(result))
    return ("ok", result.modification_level, sorted(result.changed_form_fields))


def _revisions(data: bytes) -> int:
    try:
        return int(PdfFileReader(BytesIO(data), strict=False).xrefs.total_revisions)
    except Exception:
        return 0


def assert_same(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    for revision in range(_revisions(data)):
        assert _walk(data, revision, True) == _walk(data, revision, False), revision
        assert _review(data, revision, True, monkeypatch) == _review(
            data, revision, False, monkeypatch
        ), revision


@pytest.fixture(scope="module")
def corpus(
    pki: testpki.TestPki, services: PkiServices, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    return build_corpus(pki, services, SAMPLE, tmp_path_factory.mktemp("corpus"))


def test_same_on_the_corpus(corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    hits = RUN.hits
    for name, path in corpus.items():
        data = path.read_bytes()
        assert _revisions(data) >= 1, name
        assert_same(data, monkeypatch)
    assert RUN.hits > hits  # the files share the sample's objects: skeletons served


def test_skeletons_are_bounded() -> None:
    def refs(n: int) -> generic.ArrayObject:
        return generic.ArrayObject(generic.IndirectObject(i + 1, 0, None) for i in range(n))

    run = _fastdiff.Skeletons(max_entries=3)
    for i in range(10):
        run.add(bytes([i]), refs(2))
    assert len(run) == 3 and run.get(bytes([9])) is not None and run.get(bytes([0])) is None
    run = _fastdiff.Skeletons(max_nodes=50, max_nodes_each=20)
    run.add(b"big", refs(25))  # more nodes than one skeleton may have: not kept
    assert run.get(b"big") is None and len(run) == 0
    for i in range(4):
        run.add(bytes([i]), refs(15))  # 16 nodes each: three fit in 50
    assert len(run) == 3 and run.get(bytes([3])) is not None and run.get(bytes([0])) is None


def _two_with(body_a: bytes, body_b: bytes, shared: bytes) -> tuple[bytes, bytes]:
    """Two files whose object 3 is ``shared`` byte for byte, object 4 differing."""

    def make(body: bytes) -> bytes:
        return _raw_pdf(
            [b"<< /Type /Catalog /Pages 2 0 R /S 3 0 R >>", b"<< /Type /Pages /Kids [] >>", shared,
             body]
        )  # fmt: skip

    return make(body_a), make(body_b)


@pytest.mark.parametrize(
    "shared, first, second",
    [
        # the stream's length is read from object 4: same bytes, different object
        (b"<< /Length 4 0 R >>\nstream\n1 0 R 2 0 R\nendstream", b"10", b"5"),
        # an object that runs into the next (no endobj): its bytes do not end where it does
        (b"<< /A [ 1 0 R", b"2 0 R ] >>", b"4 0 R ] >>"),
        (b"<< /A 1 0 R >>", b"<< /B 2 0 R >>", b"<< /B 3 0 R >>"),
    ],
)
def test_same_when_objects_share_bytes(
    shared: bytes, first: bytes, second: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A skeleton stands only for what its bytes alone decide."""
    a, b = _two_with(first, second, shared)
    for data in (a, b, a):
        assert_same(data, monkeypatch)


@pytest.mark.parametrize("path", FUZZ, ids=lambda p: p.name)
def test_same_on_fuzz_regressions(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same(path.read_bytes(), monkeypatch)


# --- hostile object graphs, written with pyHanko's writer -------------------------------------


def _graph(rng: random.Random, encrypt: bool = False) -> bytes:
    """A document whose objects refer to each other at random: cycles, references into and out
    of the page tree, /Parent and /P keys, a structure tree, nested arrays of numbers, references
    to numbers nothing defines; then an update that rewrites some of them."""
    w = PdfFileWriter(stream_xrefs=rng.random() < 0.5)
    refs: list[generic.IndirectObject] = []
    keys = ["/A", "/B", "/K", "/P", "/Parent", "/Kids", "/Type", "/W", "/Annots", "/V"]

    def value(depth: int) -> generic.PdfObject:
        roll = rng.random()
        if roll < 0.3 and refs:
            return rng.choice(refs)
        if roll < 0.35:
            return generic.IndirectObject(rng.randint(1, 400), 0, w)
        if roll < 0.55 and depth < 5:
            return generic.ArrayObject(value(depth + 1) for _ in range(rng.randint(0, 5)))
        if roll < 0.7 and depth < 5:
            return generic.DictionaryObject(
                {pdf_name(rng.choice(keys)): value(depth + 1) for _ in range(rng.randint(0, 4))}
            )
        if roll < 0.8:
            nums = [generic.NumberObject(rng.randint(0, 999)) for _ in range(rng.randint(0, 30))]
            return generic.ArrayObject([generic.NumberObject(1), generic.ArrayObject(nums)])
        return rng.choice(
            [
                generic.NumberObject(rng.randint(-5, 5)),
                generic.FloatObject(1.5),
                pdf_name("/StructElem"),
                pdf_name("/Pages"),
                generic.TextStringObject("x"),
                generic.NullObject(),
                generic.BooleanObject(True),
            ]
        )

    for _ in range(rng.randint(3, 25)):
        refs.append(w.add_object(generic.DictionaryObject()))
    for ref in refs:
        obj = ref.get_object()
        for _ in range(rng.randint(0, 6)):
            obj[pdf_name(rng.choice(keys))] = value(0)
    root = w.root
    for _ in range(rng.randint(0, 3)):
        root[pdf_name(rng.choice(["/StructTreeRoot", "/AcroForm", "/Names", "/Extra"]))] = (
            rng.choice(refs)
        )
    if rng.random() < 0.5:
        # a page tree reaching into the random graph, sometimes in a cycle
        pages = w.root["/Pages"]
        kid = rng.choice(refs)
        kid.get_object()[pdf_name("/Type")] = pdf_name(rng.choice(["/Pages", "/Page"]))
        pages[pdf_name("/Kids")] = generic.ArrayObject([kid])
        kid.get_object()[pdf_name("/Kids")] = generic.ArrayObject([rng.choice(refs)])
    if encrypt:
        w.encrypt(b"owner", b"")
    out = BytesIO()
    w.write(out)
    data = out.getvalue()
    if rng.random() < 0.7:
        inc = IncrementalPdfFileWriter(BytesIO(data), strict=False)
        if encrypt:
            inc.encrypt(b"")
        for _ in range(rng.randint(1, 4)):
            idnum = rng.choice(refs).idnum
            inc.mark_update(generic.Reference(idnum, 0, inc))
        extra = inc.add_object(generic.DictionaryObject({pdf_name("/A"): value(0)}))
        inc.root[pdf_name("/Extra2")] = extra
        inc.update_root()
        out = BytesIO()
        inc.write(out)
        data = out.getvalue()
    return data


@pytest.mark.parametrize("seed", range(80))
def test_same_on_random_graphs(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same(_graph(random.Random(seed)), monkeypatch)


def _raw_pdf(objects: list[bytes]) -> bytes:
    """A one-revision file of the given object bodies (numbered from 1; 1 is the catalog), with
    a correct xref table: for structures pyHanko's writer cannot write."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.mark.parametrize("seed", range(15))
def test_same_on_encrypted_graphs(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Encrypted objects reach the walk as pyHanko's decrypting proxies: always copied."""
    data = _graph(random.Random(seed), encrypt=True)
    assert PdfFileReader(BytesIO(data), strict=False).encrypted
    assert_same(data, monkeypatch)


def _nested(depth: int) -> bytes:
    deep = b"[" * depth + b"1" + b" 2]" * depth
    return _raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /Deep 3 0 R >>",
            b"<< /Type /Pages /Kids [] /Count 0 >>",
            b"<< /X " + deep + b" /Y 2 0 R >>",
        ]
    )


@pytest.mark.parametrize("depth", [190, 205, 600, 3000])
def test_same_on_deep_nesting(depth: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past _MAX_DEPTH the walk is pyHanko's own, up to its RecursionError."""
    assert_same(_nested(depth), monkeypatch)


def _chain(length: int) -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R /Chain 3 0 R >>", b"<< /Type /Pages /Kids [] >>"]
    objects += [b"<< /Next %d 0 R /W [1 [2 3]] >>" % (n + 1) for n in range(3, length + 3)]
    objects.append(b"<< /End 1 0 R >>")
    return _raw_pdf(objects)


@pytest.mark.parametrize("length", [150, 250, 1200])
def test_same_on_long_reference_chains(length: int, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same(_chain(length), monkeypatch)


def _object_stream_short_count() -> bytes:
    """Objects listed in an object stream beyond its /N read as a null without a container,
    which pyHanko's copy refuses: the error must be pyHanko's."""
    w = PdfFileWriter(stream_xrefs=True)
    stream = w.prepare_object_stream()
    refs = [
        w.add_object(generic.DictionaryObject({pdf_name("/I"): generic.NumberObject(i)}), stream)
        for i in range(3)
    ]
    w.root[pdf_name("/Objs")] = generic.ArrayObject(refs)
    out = BytesIO()
    w.write(out)
    data = out.getvalue()
    assert b"/N 3" in data
    return data.replace(b"/N 3", b"/N 1", 1)


def test_same_when_an_object_stream_is_short(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _object_stream_short_count()
    outcome = _walk(data, 0, False)
    assert isinstance(outcome, tuple) and outcome[0] == "error"  # the case this test is about
    assert_same(data, monkeypatch)


def _mutations(rng: random.Random, data: bytes) -> Iterator[bytes]:
    tokens = [b"[", b"]", b"<<", b">>", b" 3 0 R ", b" 1 0 R ", b"/Parent", b"/Kids", b"(", b"0"]
    for _ in range(3):
        at = rng.randrange(len(data))
        yield data[:at] + rng.choice(tokens) + data[at + 1 :]
        yield data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]


@pytest.mark.parametrize("seed", range(30))
def test_same_on_mutated_files(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    base = SAMPLE if seed % 2 else _graph(rng)
    for data in _mutations(rng, base):
        assert_same(data, monkeypatch)


def test_fast_path_is_installed_by_the_policy(corpus: dict[str, Path]) -> None:
    reader = PdfFileReader(BytesIO(corpus["valid-B-LT"].read_bytes()))
    ESIGN_DIFF_POLICY.review_file(reader, reader.embedded_signatures[0].signed_revision)
    view = reader.get_historical_resolver(reader.embedded_signatures[0].signed_revision)
    assert view._indirect_object_access_cache is not None
    assert getattr(view, "_esign_fastdiff", False)


def test_a_verifier_shares_skeletons_between_documents(
    corpus: dict[str, Path], pki: testpki.TestPki
) -> None:
    """Two documents signed from the same sample: the second one's diff walk reads the sample's
    objects from the run's skeletons, and both verdicts are what a fresh verifier gives."""
    trust = TrustConfig.from_paths([pki.trust_dir], intermediates=[pki.intermediates_dir])
    names = ["valid-B-LT", "valid-B-LTA", "isa-page-content", "shadow-replace-font"]
    fresh = [Verifier(trust, VerifyOptions(online=False)) for _ in names]
    alone = [v.verify_file(corpus[n]).to_dict() for v, n in zip(fresh, names, strict=True)]
    run = Verifier(trust, VerifyOptions(online=False))
    together = [run.verify_file(corpus[n]).to_dict() for n in names]
    assert run.diff_skeletons.hits > 0 and len(run.diff_skeletons) > 0
    assert [_verdicts(r) for r in together] == [_verdicts(r) for r in alone]


def _verdicts(report: dict[str, Any]) -> object:
    return [
        (s["indication"], s["subindication"], s["modification_level"], s["details"])
        for s in report.get("signatures", [])
    ]
