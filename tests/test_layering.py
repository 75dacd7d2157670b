"""The engine's layering, read from its imports (ast, nothing is imported or run).

Packages sit on floors; a module may import its own floor and the floors below, never a higher one:
errors (with the package's own small modules) < spectral, diffusion, io < metrics, tiling, simulate,
models < train < pipeline < experiments, api < cli. No two modules import each other, directly or
round a loop (imports inside functions count: they hide a cycle, they do not break it). The QGIS
plugin imports nothing but QGIS (qgis, processing), PyQt and the standard library (it talks to the engine through a
subprocess and the vendored contract).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "hyperldm_engine"
PLUGIN = ROOT / "qgis_plugin" / "hyperldm"
FLOORS = [
    {"errors", "contract", "progress", "device", "timings", "__init__", "data", "cache"},
    {"spectral", "diffusion", "io"},
    {"metrics", "tiling", "simulate", "models", "runtime"},
    {"train"},
    {"pipeline"},
    {"experiments", "api"},
]
CLI_FLOOR = len(FLOORS)
#: the package's ``__init__`` hands the API's names on lazily (PEP 562 ``__getattr__``): a face, not a
#: dependency of the floors below
FACES = {"hyperldm_engine": {"hyperldm_engine.api"}}


def floor_of(module: str) -> int:
    """The floor of ``hyperldm_engine.<part>...`` or ``hyperldm_cli...``."""
    parts = module.split(".")
    if parts[0] == "hyperldm_cli":
        return CLI_FLOOR
    part = parts[1] if len(parts) > 1 else "__init__"
    for floor, names in enumerate(FLOORS):
        if part in names:
            return floor
    raise AssertionError(f"{module}: not on any floor; add its package to FLOORS")


def module_name(path: Path) -> str:
    if path.is_relative_to(ENGINE):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
    else:
        parts = ["hyperldm_cli", *path.relative_to(ROOT / "cli").with_suffix("").parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (any depth in the file), resolved against the known modules."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}  # from package import module
    return out


def engine_graph(extra: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    files = [*ENGINE.rglob("*.py"), *(ROOT / "cli").rglob("*.py")]
    names = {module_name(p): p for p in files}
    graph = {name: {m for m in imports(path) if m in names and m != name} - FACES.get(name, set())
             for name, path in names.items()}
    for name, targets in (extra or {}).items():
        graph.setdefault(name, set()).update(targets)
    return graph


def back_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if floor_of(b) > floor_of(a))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_parents(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Without ``pkg/__init__`` edges that only say "a submodule was imported" (not a dependency)."""
    return {a: {b for b in targets if not a.startswith(b + ".")} for a, targets in graph.items()}


def test_no_import_runs_up_the_floors() -> None:
    assert back_imports(engine_graph()) == []


def test_no_modules_import_each_other() -> None:
    assert cycles(package_parents(engine_graph())) == []


def test_a_back_import_and_a_cycle_are_caught() -> None:
    """The test is not vacuous: a deliberate back-import (tiling -> pipeline) and cycle fail it."""
    graph = engine_graph({"hyperldm_engine.tiling.runner": {"hyperldm_engine.pipeline.run"}})
    assert back_imports(graph) == ["hyperldm_engine.tiling.runner -> hyperldm_engine.pipeline.run"]
    assert any("hyperldm_engine.tiling.runner" in c for c in cycles(package_parents(graph)))


STDLIB = set(sys.stdlib_module_names)
QGIS = {"qgis", "processing", "PyQt5", "PyQt6"}  # processing: QGIS's own Processing framework


@pytest.mark.parametrize("path", sorted(PLUGIN.rglob("*.py")), ids=lambda p: str(p.relative_to(PLUGIN)))
def test_plugin_imports_only_qgis_and_the_standard_library(path: Path) -> None:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    assert roots <= STDLIB | QGIS, roots - STDLIB - QGIS
