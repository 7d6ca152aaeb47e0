"""The layers and the code's hygiene, checked on every run of the test command (so CI says so): the
import contracts of DESIGN.md ("Layers"), no import cycle, mypy, ruff and ruff format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PYTHON_TREES = ["src", "backend", "worker", "tests", "benchmarks", "scripts"]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_import_contracts_hold():
    """No module imports a layer above it; the API and the shared words never load torch or
    transformers (even through a chain of lazy imports); the shared words never load faiss."""
    done = run(str(BIN / "lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def test_cycle_finder_finds_a_cycle():
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_python_import_cycle():
    """Counting imports inside functions and type-only imports too: a lazy import is still a dependency,
    and a type-only cycle (index/check.py <-> index/pattern_index.py, once) still ties two modules."""
    graph = grimp.build_graph("attnlens", exclude_type_checking_imports=False)
    edges = {
        module: {m for m in graph.find_modules_directly_imported_by(module) if m.startswith("attnlens")}
        for module in graph.modules
    }
    assert strongly_connected(edges) == []


def test_mypy_is_clean():
    done = run(str(BIN / "mypy"))  # files and options: [tool.mypy] in pyproject.toml
    assert done.returncode == 0, done.stdout[-6000:]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["ruff-check", "ruff-format"])
def test_ruff(command: list[str]):
    done = run(str(BIN / "ruff"), *command, *PYTHON_TREES)
    assert done.returncode == 0, done.stdout[-6000:]


SQL_CALLS = {"execute", "scalar", "scalars", "get", "add", "add_all", "delete", "merge", "query"}


def sql_outside_store() -> list[str]:
    """Places outside `attnlens/store` that build or run SQL: any sqlalchemy import but the `Session`
    type a dependency passes along, or a call of a session's query methods."""
    import ast

    package = REPO / "src" / "attnlens"
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.is_relative_to(package / "store"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                names = {alias.name for alias in node.names}
                if not (node.module == "sqlalchemy.orm" and names == {"Session"}):
                    found.append(f"{where} imports {sorted(names)} from {node.module}")
            elif isinstance(node, ast.Import) and any(a.name.startswith("sqlalchemy") for a in node.names):
                found.append(f"{where} imports sqlalchemy")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "session"
            ):
                found.append(f"{where} calls session.{node.func.attr}")
    return found


def test_sql_lives_only_in_the_store():
    assert sql_outside_store() == []
