"""The layout holds: imports point one way down the pipeline's stages, with no cycles; match/
imports only itself; one import path per name; short functions; a docstring atop each module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "digest"
LONGEST = 60  # lines a function may take, unless a comment in it says why it is longer

# The stages, lowest first: a module may import its own stage and those below, never above.
STAGES = [
    {"digest", "digest.clock", "digest.cron", "digest.config", "digest.models", "digest.db",
     "digest.tokens"},
    {"digest.match"},
    {"digest.papers", "digest.subscribers", "digest.feedback", "digest.privacy"},
    {"digest.sources", "digest.mail", "digest.search"},
    {"digest.delivery"},
    {"digest.serve", "digest.web", "digest.demo"},
    {"digest.cli", "digest.__main__"},
]  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imported(name: str, tree: ast.Module) -> Iterator[str]:
    """The digest modules a module imports anywhere in it (functions included)."""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "digest")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if base.split(".")[0] != "digest":
                continue
            for alias in node.names:  # `from digest.cli import common` imports a module
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


GRAPH = {
    name: {target for target in imported(name, ast.parse(path.read_text())) if target != name}
    for name, path in MODULES.items()
}


def stage_of(name: str) -> int:
    for number, stage in enumerate(STAGES):
        if any(name == s or name.startswith(f"{s}.") for s in stage if s != "digest"):
            return number
    assert name == "digest", f"{name} belongs to no stage: add it to STAGES"
    return 0


def test_every_import_names_a_module_that_exists() -> None:
    for name, targets in GRAPH.items():
        for target in targets:
            assert target in MODULES, f"{name} imports {target}, which is not a module"


def test_no_import_cycles() -> None:
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = "open"
        path.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == "open":
                cycle = [*path[path.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_imports_point_down_the_stages() -> None:
    upward = [
        f"{name} (stage {stage_of(name)}) imports {target} (stage {stage_of(target)})"
        for name, targets in GRAPH.items()
        for target in targets
        if stage_of(target) > stage_of(name)
    ]
    assert upward == []


def test_match_imports_only_itself() -> None:
    outside = {
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name.startswith("digest.match")
        for target in targets
        if not target.startswith("digest.match")
    }
    assert outside == set()


def test_one_import_path_per_name() -> None:
    """No __all__ lists and no re-exports: a package's __init__ defines what it holds."""
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        assigned = {
            t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
            if isinstance(t, ast.Name)
        }  # fmt: skip
        assert "__all__" not in assigned, f"{name} has an __all__"
        if path.name == "__init__.py" and name not in ("digest", "digest.cli"):
            imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
            assert all(
                isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in imports
            ), f"{name} re-exports names of its modules: import them from where they live"


def test_functions_are_short_or_say_why() -> None:
    long = []
    for name, path in MODULES.items():
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                size = node.end_lineno - node.lineno + 1
                body = lines[node.lineno - 1 : node.end_lineno]
                if size > LONGEST and not any("# long:" in line for line in body):
                    long.append(f"{name}.{node.name}: {size} lines")
    assert long == []


def test_every_module_opens_with_a_one_line_summary() -> None:
    for name, path in MODULES.items():
        doc = ast.get_docstring(ast.parse(path.read_text()), clean=False)
        assert doc, f"{name} has no module docstring"
        summary = doc.split("\n\n")[0]
        assert "\n" not in summary.strip(), f"{name}: the summary spans lines: {summary!r}"
        assert summary.strip().endswith("."), f"{name}: the summary is not a sentence"
