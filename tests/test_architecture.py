"""The layout's rules, read from the code itself with ``ast`` (function-level imports included).

- ``recommender/`` imports neither streamlit nor plotly;
- imports run one way between the stage packages (core below data and models,
  then config, serving, evaluation, tools, and the CLI on top), and never in a
  cycle, not even through an import inside a function;
- no module is near the old engine's size.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "recommender"
#: Which stages each stage may import (besides itself). Anything else is a layering error.
ALLOWED = {
    "errors": set(),
    "core": {"errors"},
    "data": {"errors", "core"},
    "models": {"errors", "core"},
    "config": {"errors", "core", "models"},
    "serving": {"errors", "core", "data", "models", "config"},
    "evaluation": {"errors", "core", "data", "models", "config", "serving"},
    "tools": {"errors", "core", "data", "models", "config", "serving", "evaluation"},
    "api": {"errors", "core", "data", "models", "config", "serving"},
    "cli": {"errors", "core", "data", "models", "config", "serving", "evaluation", "tools",
            "api"},
    "__main__": {"cli"},
    "__init__": {"errors", "config", "serving"},
}
FORBIDDEN = ("streamlit", "plotly")
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, here: str | None = None) -> set[str]:
    """Every module ``path`` imports, at any depth of the file, resolved to absolute names.

    ``here`` is the module's dotted name (default: from its place in the repository).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = here or module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # "from package import module" imports the module too.
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def internal_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for name, path in known.items():
        targets = set()
        for imported in imports_of(path):
            # Resolve to the longest known module name ("a.b.C" -> "a.b").
            parts = imported.split(".")
            while parts and ".".join(parts) not in known:
                parts.pop()
            if parts and ".".join(parts) != name:
                targets.add(".".join(parts))
        graph[name] = targets
    return graph


def stage(name: str) -> str:
    parts = name.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def test_the_engine_never_imports_streamlit_or_plotly():
    offenders = sorted(
        f"{name} imports {imported}" for name, path in modules().items()
        for imported in imports_of(path) if imported.split(".")[0] in FORBIDDEN)
    assert offenders == []


def test_imports_run_one_way_between_stages():
    wrong = sorted(f"{a} -> {b}" for a, targets in internal_graph().items() for b in targets
                   if stage(b) != stage(a) and stage(b) not in ALLOWED[stage(a)])
    assert wrong == []


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of ``graph`` runs into."""
    colour: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        colour[node] = 1
        for target in sorted(graph.get(node, ())):
            if colour.get(target) == 1:
                cycles.append(trail[trail.index(target):] + [target])
            elif target not in colour:
                visit(target, trail + [target])
        colour[node] = 2

    for node in sorted(graph):
        if node not in colour:
            visit(node, [node])
    return cycles


def test_there_is_no_import_cycle():
    assert find_cycles(internal_graph()) == []


def test_no_module_is_near_the_old_engine_s_size():
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {n: s for n, s in sizes.items() if s >= MAX_LINES} == {}


@pytest.mark.parametrize("source, expected", [
    ("import streamlit as st", {"streamlit"}),
    ("def f():\n    from plotly import express\n", {"plotly", "plotly.express"}),
    ("from . import matrix", {"recommender.core", "recommender.core.matrix"}),
    ("from ..errors import X", {"recommender.errors", "recommender.errors.X"}),
])
def test_the_import_reader_sees_every_kind_of_import(tmp_path, source, expected):
    # The checks above are only as good as this reader: it must see imports inside
    # functions and resolve relative ones.
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    assert imports_of(probe, "recommender.core.probe") == expected


def test_the_cycle_check_finds_a_planted_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
