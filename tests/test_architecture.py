"""Layering rules from DESIGN.md and docs/architecture.md, enforced by walking the imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "services", "playground")
MODEL_LIBRARIES = {
    "torch",
    "transformers",
    "sumy",
    "keybert",
    "gensim",
    "sentence_transformers",
    "llama_cpp",
    "sklearn",
    "yake",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def imports(path: Path, module_level_only: bool = False) -> Iterator[str]:
    """Absolute module names imported by ``path`` (``if TYPE_CHECKING`` blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def visit(node: ast.AST, top: bool) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                yield from (alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                yield child.module
                yield from (f"{child.module}.{alias.name}" for alias in child.names)
            inner = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if not (module_level_only and inner):
                yield from visit(child, top and not inner)

    yield from visit(tree, True)


def project_graph(module_level_only: bool = True) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in project_files()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {i for i in imports(path, module_level_only) if i in modules} - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles_between_modules() -> None:
    cycle = find_cycle(project_graph(module_level_only=False))
    assert cycle is None, " -> ".join(cycle or [])


def test_no_import_cycles_between_service_packages() -> None:
    graph: dict[str, set[str]] = {}
    for module, targets in project_graph(module_level_only=False).items():
        if module.startswith("services."):
            package = ".".join(module.split(".")[:2])
            graph.setdefault(package, set()).update(
                ".".join(t.split(".")[:2]) for t in targets if t.startswith("services.")
            )
    for package in graph:
        graph[package].discard(package)
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_core_depends_on_no_other_service_package() -> None:
    for path in sorted((REPO / "services" / "core").rglob("*.py")):
        outside = {
            i
            for i in imports(path)
            if i.startswith("services.") and not i.startswith("services.core")
        }
        assert not outside, f"{path.relative_to(REPO)} imports {sorted(outside)}"


def test_handlers_reach_services_only_through_core() -> None:
    files = sorted((REPO / "handlers").rglob("*.py"))
    assert files
    for path in files:
        reached = {i for i in imports(path) if i.startswith("services.")}
        beyond = {i for i in reached if not i.startswith("services.core")}
        assert not beyond, f"{path.relative_to(REPO)} imports {sorted(beyond)}"


def test_handlers_never_import_model_libraries() -> None:
    for path in sorted((REPO / "handlers").rglob("*.py")):
        leaked = {i.split(".")[0] for i in imports(path)} & MODEL_LIBRARIES
        assert not leaked, f"{path.relative_to(REPO)} imports {sorted(leaked)}"


def test_services_never_import_telegram_or_the_surface() -> None:
    files = sorted((REPO / "services").rglob("*.py"))
    assert files
    for path in files:
        roots = {i.split(".")[0] for i in imports(path)}
        leaked = roots & {"telegram", "handlers", "bot", "playground"}
        assert not leaked, f"{path.relative_to(REPO)} imports {sorted(leaked)}"


def test_production_modules_never_import_the_playground_at_module_level() -> None:
    for path in sorted([*(REPO / "bot").rglob("*.py"), *(REPO / "handlers").rglob("*.py")]):
        found = {i for i in imports(path, module_level_only=True) if i.startswith("playground")}
        assert not found, f"{path.relative_to(REPO)} imports {sorted(found)} at import time"


def test_starting_the_production_run_modes_loads_no_playground_module() -> None:
    code = (
        "import sys, bot.run, bot.app, bot.cli\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'playground')\n"
        "assert not loaded, loaded\n"
        "assert 'torch' not in sys.modules, 'torch is imported by the run modes themselves'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
