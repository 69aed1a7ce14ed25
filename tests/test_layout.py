"""The layout rule of the design notes: ``verify`` may import ``esign``; ``esign`` never
imports ``verify`` (issuing must not depend on the verifier)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_esign_never_imports_verify() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if n.split(".")[0] == "verify")
        for p in (ROOT / "esign").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
