"""Where esign keeps its state: the user's data folder, never the current folder or the install.

The test PKI (keys, certificates, PKCS#12 bundles), the default SQLite registry and their lock
files are state. An installed wheel's ``site-packages`` may be read-only and is shared; the current
folder changes from one command to the next. The XDG base directory rule is what Linux users and
packagers expect: ``$XDG_DATA_HOME/esign``, else ``~/.local/share/esign``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

DATA_ENV = "XDG_DATA_HOME"
REGISTRY_FILE = "esign-registry.sqlite3"


def data_dir(*, create: bool = False) -> Path:
    """``$XDG_DATA_HOME/esign`` (an absolute path only, as the specification says), else
    ``~/.local/share/esign``; created owner-only (it holds test keys) when ``create``."""
    base = os.environ.get(DATA_ENV, "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    folder = root / "esign"
    if create and not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def default_registry_url() -> str:
    """The SQLite registry used when none is configured, in the data folder."""
    return "sqlite://" + quote(str(data_dir(create=True) / REGISTRY_FILE))
