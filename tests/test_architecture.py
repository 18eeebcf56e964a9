"""Layering rules from DESIGN.md, enforced by walking the imports."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_handlers_never_import_model_libraries() -> None:
    files = sorted((REPO / "handlers").rglob("*.py"))
    assert files
    for path in files:
        leaked = imported_roots(path) & MODEL_LIBRARIES
        assert not leaked, f"{path.relative_to(REPO)} imports {sorted(leaked)}"


def test_services_never_import_telegram() -> None:
    files = sorted((REPO / "services").rglob("*.py"))
    assert files
    for path in files:
        assert "telegram" not in imported_roots(path), f"{path.relative_to(REPO)} imports telegram"
