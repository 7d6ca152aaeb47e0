"""The ES modules of the frontend, read as text (no browser): their imports form no cycle, no page imports the
router, and no module keeps its own copy of the task list (pages read it from GET /api/tasks)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

JS = REPO / "frontend" / "static" / "js"
# `import x from "..."`, `import { a, b } from "..."` (over several lines), `export ... from "..."`,
# `import "..."`.
# Dynamic `import("...")` is left out on purpose: it runs later and cannot make a load-time cycle.
STATIC_IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;'"]*?(?:\bfrom\s*)?["']([^"']+)["']""", re.MULTILINE)
# Two task names that only a copy of the task list would hold together.
TASK_NAMES = ("boolean_literals", "mathematical_operators")


def modules() -> list[Path]:
    return sorted(JS.rglob("*.js"))


def imports_of(path: Path) -> list[Path]:
    """The modules `path` imports statically, resolved to files (bare or absolute specifiers are not ours)."""
    out = []
    for spec in STATIC_IMPORT.findall(path.read_text(encoding="utf-8")):
        if spec.startswith("."):
            out.append((path.parent / spec).resolve())
        elif spec.startswith("/js/"):
            out.append((JS / spec.removeprefix("/js/")).resolve())
    return out


def find_cycle(graph: dict[Path, list[Path]]) -> list[Path] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search with colours)."""
    state: dict[Path, str] = {}
    stack: list[Path] = []

    def visit(node: Path) -> list[Path] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def rel(path: Path) -> str:
    return path.relative_to(JS).as_posix()


def test_the_parser_sees_every_kind_of_import(tmp_path):
    """The checks below are only as good as the import parser: a multi-line named import, a namespace import,
    a side-effect import and a re-export all count; a dynamic import and a string that merely says
    `import` do not."""
    module = tmp_path / "m.js"
    module.write_text(
        'import { a,\n  b } from "./one.js";\nimport * as two from "../two.js";\nimport "./three.js";\n'
        'export { c } from "./four.js";\nconst x = await import("./dynamic.js");\n'
        'const s = "import me from ./not.js";\n'
    )
    assert [p.name for p in imports_of(module)] == ["one.js", "two.js", "three.js", "four.js"]


def test_find_cycle_reports_the_cycle():
    a, b, c = Path("/a.js"), Path("/b.js"), Path("/c.js")
    assert find_cycle({a: [b], b: [c], c: []}) is None
    assert find_cycle({a: [b], b: [c], c: [a]}) == [a, b, c, a]


def test_every_import_resolves_to_a_module():
    missing = [f"{rel(m)} -> {t}" for m in modules() for t in imports_of(m) if not t.is_file()]
    assert not missing, "imports of files that do not exist:\n" + "\n".join(missing)


def test_no_import_cycle():
    graph = {m.resolve(): imports_of(m) for m in modules()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(rel(p) for p in cycle)


def test_no_page_imports_the_router():
    """app.js imports the pages; a page importing it back would load the router twice in the graph and
    make a cycle. URL helpers live in url.js."""
    app = (JS / "app.js").resolve()
    offenders = [rel(m) for m in sorted((JS / "pages").glob("*.js")) if app in imports_of(m)]
    assert not offenders, f"pages that import app.js: {offenders}"


@pytest.mark.parametrize("path", modules(), ids=rel)
def test_no_copy_of_the_task_list(path):
    """The task list lives on the server (GET /api/tasks): a module holding two task names as string
    literals is keeping a copy that will drift."""
    text = path.read_text(encoding="utf-8")
    assert not all(re.search(rf"([\"'`]){name}\1", text) for name in TASK_NAMES), (
        f"{rel(path)} holds a copy of the task list; read it from GET /api/tasks (api.js `tasks()`)."
    )
