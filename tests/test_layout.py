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


# --- installability (issue 11): an installed wheel has no checkout around it -------------------

PACKAGES = ("esign", "verify")


def _sources() -> list[Path]:
    return [ROOT / "cli.py", *(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))]


def _repository_reads(path: Path) -> list[str]:
    """Places that walk up from ``__file__`` (``parents[N]``, ``.parent.parent``) or name a
    checkout folder (``"samples"``, ``"docs"``, ``"keys/..."``) as a path."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
            if node.value.attr == "parents":
                found.append(f"{where} parents[...]")
        elif isinstance(node, ast.Attribute) and node.attr == "parent":
            if isinstance(node.value, ast.Attribute) and node.value.attr == "parent":
                found.append(f"{where} .parent.parent")
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value
        ):
            folder = node.value.split("/", 1)[0]
            if folder in ("samples", "docs") or node.value.startswith("keys/"):
                found.append(f"{where} {node.value!r}")
    return found


# verify/isolate.py puts the folder holding the ``verify`` package on its workers' PYTHONPATH (the
# checkout in development, site-packages when installed): the import root, not the repository.
ALLOWED = {("verify/isolate.py", ".parent.parent")}


def test_nothing_reads_the_repository_layout() -> None:
    reads = [r for p in _sources() for r in _repository_reads(p)]
    allowed = [r for r in reads if (r.split(":")[0], r.split(" ", 1)[1]) in ALLOWED]
    assert [r for r in reads if r not in allowed] == []


def test_every_package_file_ships_in_the_wheel() -> None:
    """Each tracked non-Python file inside the packages matches a package-data pattern (the wheel
    test proves the install; this one names the file that would be missing, in a second)."""
    import fnmatch
    import subprocess
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]
    tracked = subprocess.run(
        ["git", "ls-files", *PACKAGES], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    missing = []
    for name in tracked:
        package, _, inner = name.partition("/")
        if name.endswith(".py") or inner in (".gitignore",):
            continue
        if not any(fnmatch.fnmatch(inner, pat) for pat in patterns.get(package, [])):
            missing.append(name)
    assert missing == []


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_ci_runs_the_readme_commands_as_written() -> None:
    """CI starts from a clean clone and types what the README tells a new user to type."""
    commands = _readme_commands()
    assert commands == ["make demo", "make test"]
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    ran = [line.strip() for line in script if line.strip() in commands]
    assert ran == commands
    assert "git clone" in "\n".join(script)


def test_make_demo_needs_no_system_packages() -> None:
    """`make demo` is the first command on a fresh machine: a virtualenv with esign's runtime
    dependencies (no dev tools), no apt."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    rule = next(line for line in makefile if line.startswith("demo:"))
    assert rule.split(":", 1)[1].split() == ["$(BIN)/esign"]
    start = makefile.index("$(BIN)/esign: pyproject.toml")
    recipe = makefile[start + 1 : makefile.index("", start)]
    assert recipe and not any("dev" in line or "apt" in line for line in recipe), recipe
