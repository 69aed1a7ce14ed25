"""Start a one-shot CLI command without importing the parts of pyHanko it never runs.

Two import chains load aiohttp (~0.25 s) and pyHanko's whole signing side into a one-file
``esign verify`` that uses neither:

- ``pyhanko/sign/__init__.py`` imports every signer (``from .signers import ...``), and through
  ``pyhanko.sign.timestamps`` aiohttp, before any ``pyhanko.sign.*`` submodule (validation
  included) can load;
- ``pyhanko.sign.validation.ades`` imports ``AIOHttpFetcherBackend`` at module level, for a
  default fetcher it builds only when the caller supplies none (esign always supplies its own).

:func:`install` defers both: ``pyhanko.sign``'s ``__init__`` runs on the first access to a
name it defines (PEP 562 module ``__getattr__``; submodules import as usual meanwhile), and the
aiohttp fetcher package loads when a backend is first built. Nothing changes for code that uses
them; it only happens later, or never. Used by the CLI only: a long-lived process (the server,
its workers) pays the imports once anyway.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

_FETCHERS = "pyhanko_certvalidator.fetchers.aiohttp_fetchers"


def _unexecuted(name: str) -> tuple[ModuleType, Any] | None:
    """The package ``name`` registered with its ``__path__`` but its ``__init__`` not yet run."""
    if name in sys.modules:
        return None
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return None
    module = importlib.util.module_from_spec(spec)
    parent, _, child = name.rpartition(".")
    sys.modules[name] = module
    setattr(importlib.import_module(parent), child, module)
    return module, spec.loader


def _run_init_on_demand(module: ModuleType, loader: Any) -> None:
    """Run the package's own ``__init__`` the first time a name it defines is asked for."""
    done = False

    def __getattr__(attr: str) -> Any:
        nonlocal done
        if done or attr.startswith("__"):
            raise AttributeError(f"module {module.__name__!r} has no attribute {attr!r}")
        done = True
        del module.__dict__["__getattr__"]
        loader.exec_module(module)
        return getattr(module, attr)

    module.__dict__["__getattr__"] = __getattr__


def defer_package_init(name: str) -> None:
    """Register package ``name`` so that its ``__init__`` runs only when one of its own names is
    used; a no-op if it is already imported."""
    found = _unexecuted(name)
    if found is not None:
        _run_init_on_demand(*found)


def _defer_aiohttp_fetchers() -> None:
    found = _unexecuted(_FETCHERS)
    if found is None:
        return
    module, loader = found
    _run_init_on_demand(module, loader)

    class AIOHttpFetcherBackend:
        """Stands for pyhanko_certvalidator's class until one is built: then the real module
        (and aiohttp) loads and the real backend is returned."""

        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            real = module.__dict__.get("AIOHttpFetcherBackend")
            if real is None or real is cls:
                module.__dict__.pop("AIOHttpFetcherBackend", None)
                real = module.AIOHttpFetcherBackend  # runs the package __init__
            return real(*args, **kwargs)

    module.__dict__["AIOHttpFetcherBackend"] = AIOHttpFetcherBackend


LAZY_MODULES = (
    # pyhanko.pdf_utils.crypt.pubkey: `from ...serialization import pkcs12`, called only to
    # open a PKCS#12 file that decrypts a public-key encrypted PDF; it loads cryptography.x509
    # (~12 ms), which verification never uses.
    "cryptography.hazmat.primitives.serialization.pkcs12",
    # pyhanko.pdf_utils.metadata.info: `import tzlocal`, called only to stamp a document being
    # written (~3 ms with zoneinfo).
    "tzlocal",
)
"""Modules imported whole (``import m``, ``from package import m``) by code that calls into them
only when writing or decrypting, and whose import registers nothing: they load on first use."""


def defer_module(name: str) -> None:
    """Register module ``name`` so that it executes on the first access to a name it defines
    (as :func:`defer_package_init`; importlib's LazyLoader would not do: the next ``import``
    statement of the module reads its ``__spec__`` and so loads it); a no-op if it is already
    imported or not installed."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    _run_init_on_demand(module, spec.loader)


def install() -> None:
    """Defer pyHanko's signing side, aiohttp and :data:`LAZY_MODULES` for this process (call
    before importing verify)."""
    defer_package_init("pyhanko.sign")
    _defer_aiohttp_fetchers()
    for name in LAZY_MODULES:
        defer_module(name)
