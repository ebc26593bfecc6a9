"""The package's module graph: no import cycles, no private name imported from another module,
no module over the size limit. Run alone: ``pytest tests/test_layout.py``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xanesnet"
#: Lines a module may hold (the guide's ~500, with room for a docstring's growth).
MAX_LINES = 550


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None]]:
    """(module imported, name taken from it or None) of every import, inside functions too."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition(".")[0]
            target = (base + "." + (node.module or "")).strip(".") if node.level else node.module
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.append((full, None) if full in modules else (target, alias.name))
    return [(t, n) for t, n in found if t and t.split(".")[0] == "xanesnet"]


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    private = []
    for name, path in modules.items():
        for target, imported in _imports(name, path, modules):
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target != name and not modules[target].name == "__init__.py":
                edges[name].add(target)
            if imported and imported.startswith("_") and not imported.startswith("__"):
                if imported != "_core":
                    private.append(f"{name} imports {target}.{imported}")
    return edges, private


def test_no_import_cycles():
    edges, _ = _graph()
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles


def test_no_private_names_imported_across_modules():
    assert not _graph()[1]


def test_no_module_over_the_size_limit():
    sizes = {
        p.relative_to(PACKAGE.parent): len(p.read_text().splitlines()) for p in _modules().values()
    }
    assert not {str(p): n for p, n in sizes.items() if n > MAX_LINES}
