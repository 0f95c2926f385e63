"""Who imports whom inside cmfnet_core: no cycles, and lower layers never reach up.

The layers, bottom up: weights, image I/O and tiling; the backends (executors
per tile); the engine (tiles a photo over a backend); the benchmark; the CLI.
Imports inside functions count too: a lazy import upward is still a cycle in
the design, only one Python does not trip over.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cmfnet_core"

#: module (or package) -> modules it must never import
NEVER_IMPORTS = {
    "cmfnet_core.backends": ("cmfnet_core.engine", "cmfnet_core.bench", "cmfnet_core.cli"),
    "cmfnet_core.engine": ("cmfnet_core.bench", "cmfnet_core.cli"),
    "cmfnet_core.imageio": ("cmfnet_core.backends", "cmfnet_core.engine", "cmfnet_core.cli"),
    "cmfnet_core.tiling": ("cmfnet_core.backends", "cmfnet_core.engine", "cmfnet_core.cli"),
    "cmfnet_core.versions": ("cmfnet_core.bench", "cmfnet_core.cli"),
    "cmfnet_core.bench": ("cmfnet_core.cli",),
    "cmfnet_core.bench_child": ("cmfnet_core.bench", "cmfnet_core.cli"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """The cmfnet_core modules ``path`` imports (``from . import x`` names x's module)."""
    known = set(modules())
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:  # a submodule, or a name the module at ``base`` holds
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found & known


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("lower", sorted(NEVER_IMPORTS))
def test_lower_layers_never_import_upper_ones(lower):
    for name, path in modules().items():
        if within(name, lower):
            reached = [m for m in imports(path) for upper in NEVER_IMPORTS[lower] if within(m, upper)]
            assert not reached, f"{name} imports {reached}"


def test_no_import_cycles_at_import_time():
    graph = {name: imports(path, top_level_only=True) - {name} for name, path in modules().items()}
    done, path = set(), []

    def visit(name):
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        path.append(name)
        for target in sorted(graph.get(name, ())):
            visit(target)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_the_checker_sees_relative_imports():
    """The rules above hold only if relative imports are resolved: check one known edge."""
    assert "cmfnet_core.backends" in imports(PACKAGE / "engine.py")
    assert "cmfnet_core.backends.precision" in imports(PACKAGE / "backends" / "__init__.py")
