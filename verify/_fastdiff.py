"""Faster equivalents of two pyHanko 0.38 ``HistoricalResolver`` internals that the difference
analysis of every signed file spends its time in (issue 13).

Before each diff, pyHanko maps every path from the trailer to every object of the signed revision
(``_load_reverse_xref_cache``): it reads the whole revision, copies each object into the
revision's view (``_subsume_object``) and walks the graph. Both recurse into every number of a
font's /W array: the copy builds a ``Reference`` per number, the walk a call and a path node per
number and per glyph's sub-array. On the issued residence certificates (182-glyph subsets) copy
and walk took 2.2 ms of a file's 6.2 ms map (CPU, parsing included); here 0.8 ms (4.3 ms), and
less again where nothing is copied that nobody reads.

- ``subsume_object`` returns the same structure pyHanko's does (same types, same shared leaves,
  equal ``container_ref``s; the children of one container share one new frozen ``Reference``
  where pyHanko builds one each); any object whose container is not a plain ``Reference``, or an
  encrypted proxy, goes to pyHanko's own function, so its errors stay pyHanko's;
- ``load_reverse_xref_cache`` is pyHanko's walk, step for step and in the same order (the same
  reads, the same path sets built in the same order, the same keys), except that it makes no
  call for a value that is neither a reference, a dictionary nor an array, nor for an array of
  such values only, where pyHanko's call does nothing; and that it reads an object the revision
  shares with the reader's current state without copying it into the view, when the copy would
  succeed and have the same structure (:func:`_peek`): the view copies it, with pyHanko's own
  copy, only if someone asks for it, and most objects (a font's) never are. Should the walk fail
  or nest deeper than :data:`_MAX_DEPTH`, pyHanko's walk runs instead, from the start, so the
  error is pyHanko's. (Where exactly Python's recursion limit stops a hostile file depends on the
  caller's stack, one frame deeper here, as it already differs between esign's callers.)

Within a run (a Verifier's :class:`Skeletons`, made current by :func:`using`), the walk reads an
object the reader has not parsed yet from the skeleton of an earlier document's object with the
same bytes, when that parse stopped where the next object starts (documents of one template share
their fonts byte for byte); whoever needs the object itself gets pyHanko's parse.

Installed per reader (:func:`install`) on the views the reader hands out; nothing global is
patched. tests/verify/test_fastdiff.py compares both with pyHanko's on the attack corpus, the
fuzz regressions, random hostile graphs and mutated files, and fails if pyHanko changes the code
this mirrors; tests/verify/test_allowed_changes.py runs every analysis both ways.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from io import BytesIO
from types import MethodType
from typing import Any

from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader, RawPdfPath

__all__ = ["Skeletons", "install", "load_reverse_xref_cache", "subsume_object", "using"]

_original_subsume: Any = HistoricalResolver._subsume_object
_original_load: Any = HistoricalResolver._load_reverse_xref_cache

# Past this many nested calls the walk is pyHanko's: far below the recursion limit, so a walk that
# completes here could not have hit it in pyHanko's (one frame per leaf deeper) either.
_MAX_DEPTH = 200

# Types pyHanko's copy returns unchanged (once their container is checked). Exact types only:
# anything else takes the general path.
_LEAVES = frozenset(
    {
        generic.NumberObject,
        generic.FloatObject,
        generic.NameObject,
        generic.BooleanObject,
        generic.NullObject,
        generic.TextStringObject,
        generic.ByteStringObject,
    }
)
_CONTAINERS = (generic.IndirectObject, generic.DictionaryObject, generic.ArrayObject)
_CONTAINERS_NOT_ARRAY = (generic.IndirectObject, generic.DictionaryObject)
_Reference = generic.Reference
_IndirectObject = generic.IndirectObject
_DictionaryObject = generic.DictionaryObject
_StreamObject = generic.StreamObject
_ArrayObject = generic.ArrayObject
_NameObject = generic.NameObject
# Objects nested deeper than this are copied into the view as pyHanko does (_peek).
_PLAIN_DEPTH = 64


class _TooDeep(Exception):
    pass


def original_subsume() -> Any:
    """pyHanko's own ``_subsume_object`` (for tests)."""
    return _original_subsume


def original_load() -> Any:
    """pyHanko's own ``_load_reverse_xref_cache`` (for tests)."""
    return _original_load


def subsume_object(view: HistoricalResolver, obj: Any) -> Any:
    """``view._subsume_object(obj)``, without a call or a ``Reference`` per leaf."""
    cref = getattr(obj, "container_ref", None)
    if type(cref) is not _Reference or isinstance(obj, generic.DecryptedObjectProxy):
        return _original_subsume(view, obj)
    if type(obj) in _LEAVES:
        return obj
    return _copy(view, obj, cref, None)


def _copy(view: HistoricalResolver, obj: Any, cref: Any, memo: tuple[Any, Any] | None) -> Any:
    """pyHanko's copy of ``obj`` (container ``cref``, a ``Reference``; not a leaf, not a proxy).
    ``memo`` is the parent's (container, new container reference): children of the same
    container share one new (frozen, equal) reference instead of one each."""
    if isinstance(obj, _IndirectObject):
        return _IndirectObject(obj.idnum, obj.generation, view)
    if memo is None or memo[0] is not cref:
        memo = (cref, _Reference(cref.idnum, cref.generation, view))
    result: Any
    if isinstance(obj, _DictionaryObject):  # a stream too (StreamObject is a dictionary)
        entries = {
            k: v
            if type(v) in _LEAVES and type(v.container_ref) is _Reference
            else _child(view, v, memo)
            for k, v in obj.items()
        }
        if isinstance(obj, _StreamObject):
            result = _StreamObject(entries, encoded_data=obj.encoded_data)
        else:
            result = _DictionaryObject(entries)
    elif isinstance(obj, _ArrayObject):
        result = _ArrayObject(
            [
                v
                if type(v) in _LEAVES and type(v.container_ref) is _Reference
                else _child(view, v, memo)
                for v in obj
            ]
        )
    else:
        return obj
    result.container_ref = memo[1]
    return result


def _child(view: HistoricalResolver, v: Any, memo: tuple[Any, Any]) -> Any:
    cref = getattr(v, "container_ref", None)
    if type(cref) is not _Reference or isinstance(v, generic.DecryptedObjectProxy):
        return _original_subsume(view, v)  # pyHanko's copy, or its error
    if type(v) in _LEAVES:
        return v
    return _copy(view, v, cref, memo)


def load_reverse_xref_cache(view: HistoricalResolver) -> None:
    """``view._load_reverse_xref_cache()``: pyHanko's walk minus its calls on leaves."""
    if view._indirect_object_access_cache is not None:
        return
    try:
        _fast_load(view)
    except Exception:
        # pyHanko's walk from the start: the reads done so far are the ones it does first
        _original_load(view)


def _fast_load(self: HistoricalResolver) -> None:
    # Mirrors pyhanko.pdf_utils.reader.HistoricalResolver._load_reverse_xref_cache (0.38).
    collected: dict[generic.Reference, set[misc.ConsList[str | int]]] = {}
    cons_list = misc.ConsList
    root_sing = cons_list.sing("/Root")

    def _compute_paths_to_refs(
        obj: Any,
        cur_path: misc.ConsList[str | int],
        seen_in_path: misc.ConsList[generic.Reference],
        depth: int,
        raw: bool,
        page_tree_objs: dict[generic.Reference, misc.ConsList[str | int]],
        is_struct_tree: bool,
        struct_tree_objs: set[generic.Reference],
    ) -> None:
        # raw: obj is part of the reader's own object, not of the view's copy of it
        if depth > _MAX_DEPTH:
            raise _TooDeep
        if isinstance(obj, _IndirectObject):
            obj_ref = obj.reference
            if obj_ref in seen_in_path:
                return
            if raw:  # the reference as in pyHanko's copy (it is kept in the map and in reads)
                obj_ref = _Reference(obj_ref.idnum, obj_ref.generation, self)
            paths = collected.get(obj_ref)
            if paths is None:
                paths = collected[obj_ref] = set()
            paths.add(cur_path)
            seen_in_path = seen_in_path.cons(obj_ref)
            obj, raw = _peek(self, obj_ref)
            canonical_path = page_tree_objs.get(obj_ref, cur_path)
            if cur_path != canonical_path:
                return
            if not is_struct_tree and obj_ref in struct_tree_objs:
                return
        if isinstance(obj, _DictionaryObject):
            for k, v in obj.items():
                if k == "/Parent" or (is_struct_tree and k == "/P"):
                    continue
                if _inert(v):
                    continue  # pyHanko's call on it does nothing
                _compute_paths_to_refs(
                    v,
                    cur_path.cons(k),
                    seen_in_path,
                    depth + 1,
                    raw,
                    page_tree_objs,
                    is_struct_tree
                    or (
                        cur_path.head == "/StructTreeRoot"
                        and k == "/K"
                        and cur_path.tail == root_sing
                    ),
                    struct_tree_objs,
                )
        elif isinstance(obj, _ArrayObject):
            for ix, v in enumerate(obj):
                if _inert(v):
                    continue
                _compute_paths_to_refs(
                    v,
                    cur_path.cons(ix),
                    seen_in_path,
                    depth + 1,
                    raw,
                    page_tree_objs,
                    is_struct_tree,
                    struct_tree_objs,
                )

    def _collect_page_tree_refs(pages_obj: Any, path: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise _TooDeep
        for ix, kid in enumerate(pages_obj["/Kids"]):
            kid_path = path.cons("/Kids").cons(ix)
            if isinstance(kid, generic.IndirectObject):
                yield kid.reference, kid_path
            kid = kid.get_object()
            if kid.get("/Type", None) == "/Pages":
                yield from _collect_page_tree_refs(kid, kid_path, depth + 1)

    def _collect_struct_tree_refs(struct_elem: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise _TooDeep
        try:
            children = struct_elem["/K"]
        except KeyError:
            return
        if not isinstance(children, generic.ArrayObject):
            children = (children,)
        for child in children:
            child_ref = None
            if isinstance(child, generic.IndirectObject):
                child_ref = child.reference
                child = child.get_object()
            if not isinstance(child, generic.DictionaryObject):
                continue
            try:
                if child["/Type"] != "/StructElem":
                    continue
            except KeyError:
                pass
            if child_ref is not None:
                yield child_ref
            yield from _collect_struct_tree_refs(child, depth + 1)

    pages_ref = self.root.raw_get("/Pages")
    root: misc.ConsList[str | int] = cons_list.sing("/Root")
    pages_path = root.cons("/Pages")
    page_tree_nodes: dict[generic.Reference, misc.ConsList[str | int]] = {}
    if isinstance(pages_ref, generic.IndirectObject):
        page_tree_nodes[pages_ref.reference] = pages_path
    for ref, path in _collect_page_tree_refs(pages_ref.get_object(), pages_path, 0):
        if ref in page_tree_nodes:
            raise misc.PdfReadError("Circular reference in page tree in mapping stage")
        page_tree_nodes[ref] = path
    struct_tree_nodes = set()
    try:
        struct_tree_root_ref = self.root.raw_get("/StructTreeRoot")
        struct_tree_root = struct_tree_root_ref.get_object()
        for ref in _collect_struct_tree_refs(struct_tree_root, 0):
            if ref in struct_tree_nodes:
                raise misc.PdfReadError("Circular reference in structure tree in mapping stage")
            struct_tree_nodes.add(ref)
    except KeyError:
        pass
    _compute_paths_to_refs(
        self.trailer_view, cons_list.empty(), cons_list.empty(), 0, False, page_tree_nodes, False,
        struct_tree_nodes,
    )  # fmt: skip
    self._indirect_object_access_cache = {
        ref: {RawPdfPath(*_forward(p)) for p in paths} for ref, paths in collected.items()
    }


def _peek(view: HistoricalResolver, ref: generic.Reference) -> tuple[Any, bool]:
    """What ``view(ref)`` returns, for the walk to read, and whether it is the reader's own
    object. An object the revision shares with the reader's current state and that pyHanko's copy
    would reproduce exactly (:func:`_plain`) is read without being copied into the view: the walk
    reads it the same, and whoever asks the view for it later gets pyHanko's copy then (most
    objects, a font's, are never asked for). Anything else is ``view(ref)`` itself."""
    try:
        obj = view.cache[ref]
    except KeyError:
        pass
    else:
        return (obj.decrypted if isinstance(obj, generic.DecryptedObjectProxy) else obj), False
    reader = view.reader
    try:
        last_change = reader.xrefs.get_last_change(ref)
    except KeyError:
        return view(ref), False  # pyHanko warns, then reads it as of this revision
    if last_change is None or last_change > view.revision:
        return view(ref), False  # not the reader's current object: copied into the view
    if reader.cache_get_indirect_object(ref.generation, ref.idnum) is None:
        skeletons = _CURRENT.get()
        if skeletons is not None:
            return _peek_unread(view, reader, ref, skeletons)
    obj = reader.get_object(ref, transparent_decrypt=False)
    if _plain(obj, 0):
        return obj, True
    return view(ref), False  # pyHanko's copy, or its error, from the same reader object


def _peek_unread(
    view: HistoricalResolver, reader: PdfFileReader, ref: generic.Reference, run: Skeletons
) -> tuple[Any, bool]:
    """_peek of an object the reader has not parsed yet, with a run's skeletons at hand."""
    served: dict[generic.Reference, Any] = reader.__dict__.setdefault("_esign_skeletons", {})
    skeleton = served.get(ref)
    if skeleton is not None:
        return skeleton, True
    source = _source(reader, ref)
    if source is not None:
        skeleton = run.get(source[0])
        if skeleton is not None:
            served[ref] = skeleton
            return skeleton, True
    obj = reader.get_object(ref, transparent_decrypt=False)
    if not _plain(obj, 0):
        return view(ref), False
    if source is not None and reader.stream.tell() <= source[1] and _self_contained(obj):
        run.add(source[0], obj)
    return obj, True


def _source(reader: PdfFileReader, ref: generic.Reference) -> tuple[bytes, int] | None:
    """A digest of every byte pyHanko's parse of ``ref`` could depend on, if it stops where the
    next object starts: from the object's offset to 32 bytes past the next object's (its
    tokenizer looks at most 20 bytes ahead of a token), with the object's number; and that next
    offset. None for what this does not cover: encrypted or strict readers, objects in object
    streams, input not held in memory."""
    if reader.encrypted or reader.strict or not isinstance(reader.stream, BytesIO):
        return None
    offset = reader.xrefs[ref]
    if type(offset) is not int:
        return None
    offsets: list[int] | None = reader.__dict__.get("_esign_offsets")
    if offsets is None:
        reader._esign_offsets = offsets = _object_offsets(reader)  # type: ignore[attr-defined]
    digest = hashlib.sha256(b"%d %d|" % (ref.idnum, ref.generation))
    with reader.stream.getbuffer() as data:  # no copy of the file
        if not 0 <= offset < len(data):
            return None
        at = bisect.bisect_right(offsets, offset)
        following = offsets[at] if at < len(offsets) else len(data)
        with data[offset : following + 32] as part:
            digest.update(part)
    return digest.digest(), following


def _object_offsets(reader: PdfFileReader) -> list[int]:
    """Where each object of any revision starts (xref table and stream entries), sorted."""
    found: set[int] = set()
    xrefs = reader.xrefs
    for rev in range(xrefs.total_revisions):
        data = xrefs.get_xref_data(rev)
        sections = [data] + ([data.hybrid.xref_data] if data.hybrid is not None else [])
        for section in sections:
            found.update(offset for _, offset in section.standard_xrefs.values())
    return sorted(found)


def _self_contained(obj: Any) -> bool:
    """Whether parsing ``obj`` read nothing but its own bytes (a stream's /Length given as a
    reference is read from another object)."""
    return not (
        isinstance(obj, _StreamObject) and isinstance(obj.raw_get("/Length"), _IndirectObject)
    )


_INERT = generic.NullObject()
"""Stands, in a skeleton, for a value the walk does nothing with."""


class _TooBig(Exception):
    pass


def _skeleton(obj: Any, budget: list[int]) -> Any:
    """What the walk reads of ``obj``, tied to no reader: dictionaries and arrays with the same
    keys and positions, references by number, everything the walk passes over as :data:`_INERT`
    (a font's /W array is one). ``budget[0]`` counts down the nodes made; past it, _TooBig."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig
    if isinstance(obj, _IndirectObject):
        return _IndirectObject(obj.idnum, obj.generation, None)
    if _inert(obj):
        return _INERT
    if isinstance(obj, _DictionaryObject):
        return _DictionaryObject(
            {_NameObject(str(k)): _skeleton(v, budget) for k, v in obj.items()}
        )
    return _ArrayObject([_skeleton(v, budget) for v in obj])


class Skeletons:
    """A run's skeletons of the objects the path-map walk read (:func:`_skeleton`), keyed by the
    digest of the bytes pyHanko would parse each from (:func:`_source`). Documents issued from one
    template share most objects byte for byte (fonts, page tree, resources): on the issued
    residence certificates the walk's parsing of them was 1.5 of 1.75 ms a file. A skeleton
    replaces only the walk's reading; whoever needs the object itself gets pyHanko's parse.
    Bounded in entries and in nodes, one skeleton and all (least recently used out: a hostile
    file's huge arrays of references must not crowd a worker's memory); owned by a Verifier, for
    one run."""

    def __init__(
        self, max_entries: int = 20_000, max_nodes: int = 250_000, max_nodes_each: int = 5_000
    ) -> None:
        self.max_entries = max_entries
        self.max_nodes = max_nodes
        self.max_nodes_each = max_nodes_each
        self._entries: OrderedDict[bytes, tuple[Any, int]] = OrderedDict()
        self._nodes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        with suppress(KeyError):  # another thread's document may have just evicted it
            self._entries.move_to_end(key)
        self.hits += 1
        return entry[0]

    def add(self, key: bytes, obj: Any) -> None:
        """Keep the skeleton of ``obj`` (a parsed object, :func:`_plain`) under ``key``."""
        budget = [self.max_nodes_each]
        try:
            skeleton = _skeleton(obj, budget)
        except _TooBig:
            return
        nodes = self.max_nodes_each - budget[0]
        old = self._entries.pop(key, None)
        if old is not None:
            self._nodes -= old[1]
        self._entries[key] = (skeleton, nodes)
        self._nodes += nodes
        while self._entries and (
            len(self._entries) > self.max_entries or self._nodes > self.max_nodes
        ):
            self._nodes -= self._entries.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._entries)


_CURRENT: ContextVar[Skeletons | None] = ContextVar("esign_fastdiff_skeletons", default=None)


@contextmanager
def using(skeletons: Skeletons | None) -> Iterator[None]:
    """Difference analyses run meanwhile (in this context) share ``skeletons``."""
    token = _CURRENT.set(skeletons)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _plain(obj: Any, depth: int) -> bool:
    """Whether pyHanko's copy of ``obj`` succeeds and has its structure: every node in a plain
    ``Reference`` container, encoded stream data present, name keys, no encrypted proxy."""
    if depth > _PLAIN_DEPTH or type(getattr(obj, "container_ref", None)) is not _Reference:
        return False
    if type(obj) in _LEAVES or isinstance(obj, _IndirectObject):
        return True
    if isinstance(obj, _DictionaryObject):
        if isinstance(obj, _StreamObject) and obj._encoded_data is None:
            return False
        for k, v in obj.items():
            if type(k) is not _NameObject:
                return False
            if type(v) in _LEAVES:
                if type(v.container_ref) is not _Reference:
                    return False
            elif not _plain(v, depth + 1):
                return False
        return True
    if isinstance(obj, _ArrayObject):
        for v in obj:
            if type(v) in _LEAVES:
                if type(v.container_ref) is not _Reference:
                    return False
            elif not _plain(v, depth + 1):
                return False
        return True
    return not isinstance(obj, generic.DecryptedObjectProxy)


def _inert(v: Any) -> bool:
    """Whether pyHanko's walk, called on ``v``, would do nothing: ``v`` is neither a reference, a
    dictionary nor an array, or an array of such values only (the numbers of a /W array)."""
    if isinstance(v, _CONTAINERS_NOT_ARRAY):
        return False
    if isinstance(v, _ArrayObject):
        for x in v:
            if isinstance(x, _CONTAINERS):
                return False
    return True


def _forward(path: misc.ConsList[str | int]) -> list[str | int]:
    out = []
    cur = path
    while cur.head is not None:
        out.append(cur.head)
        cur = cur.tail  # type: ignore[assignment]
    out.reverse()
    return out


def install(reader: PdfFileReader) -> None:
    """Give every historical view ``reader`` hands out the fast copy and walk. Per reader;
    idempotent."""
    if getattr(reader, "_esign_fastdiff", False):
        return
    reader._esign_fastdiff = True  # type: ignore[attr-defined]
    views = reader.get_historical_resolver

    def get_historical_resolver(revision: int) -> HistoricalResolver:
        view = views(revision)
        if not getattr(view, "_esign_fastdiff", False):
            view._subsume_object = MethodType(subsume_object, view)  # type: ignore[method-assign]
            view._load_reverse_xref_cache = MethodType(  # type: ignore[method-assign]
                load_reverse_xref_cache, view
            )
            view._esign_fastdiff = True  # type: ignore[attr-defined]
        return view

    reader.get_historical_resolver = get_historical_resolver  # type: ignore[method-assign]
