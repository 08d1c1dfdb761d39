"""The one-direction layering of DESIGN.md, checked on the import statements."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "src" / "tilewise"

# layer -> tilewise modules (first component below tilewise) it may not import
FORBIDDEN = {
    "ir": {"te", "schedule", "lower", "codegen", "runtime", "autotune", "ops", "driver",
           "target", "distributed", "cli"},
    "te": {"schedule", "lower", "codegen", "runtime", "autotune", "ops", "driver", "target",
           "distributed", "cli"},
    "schedule": {"lower", "codegen", "runtime", "autotune", "ops", "driver", "distributed", "cli"},
    "lower": {"codegen", "runtime", "autotune", "ops", "driver", "distributed", "cli"},
    "codegen": {"runtime", "autotune", "ops", "driver", "distributed", "cli"},
    "runtime": {"schedule", "lower", "autotune", "ops", "driver", "distributed", "cli"},
    "autotune": {"graph", "frontend", "models", "cli"},
    "ops": {"graph", "frontend", "models", "cli", "distributed"},
    "frontend": {"schedule", "lower", "codegen", "runtime", "autotune", "ops", "driver",
                 "distributed", "cli", "models"},
    "graph": {"frontend", "models", "cli", "distributed"},
    "models": {"ir", "te", "schedule", "lower", "codegen", "runtime", "autotune", "ops",
               "driver", "distributed", "cli", "graph", "frontend"},
}
# ir may use only errors (besides itself); te only ir and errors
ALLOWED_ONLY = {"ir": {"ir", "errors"}, "te": {"te", "ir", "errors"}}


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported tilewise top-level module, line, inside a function body)."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    pkg_parts = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    if rel.name == "__init__":
        pkg_parts = list(rel.parts[:-1])
    tree = ast.parse(path.read_text())
    out = []
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    in_func = {id(x) for f in funcs for x in ast.walk(f)}
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                if node.module:
                    names = [mod]
                else:
                    names = [f"{mod}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        for n in names:
            parts = n.split(".")
            if parts[0] == "tilewise" and len(parts) > 1:
                out.append((parts[1], node.lineno, id(node) in in_func))
    return out


def _files(layer: str) -> list[Path]:
    p = PKG / layer
    return sorted(p.rglob("*.py")) if p.is_dir() else [p.with_suffix(".py")]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_one_direction(layer):
    bad = []
    for f in _files(layer):
        for mod, line, in_func in _imports(f):
            lazy_ok = layer == "te" and f.name == "__init__.py" and in_func and mod == "schedule"
            if lazy_ok:
                continue
            allowed = ALLOWED_ONLY.get(layer)
            if mod in FORBIDDEN[layer] or (allowed is not None and mod not in allowed):
                bad.append(f"{f.relative_to(PKG)}:{line} imports tilewise.{mod}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_graph_knows_no_file_format():
    """The graph IR and its passes never read ONNX: that is the frontend's."""
    bad = [f"{f.relative_to(PKG)}" for f in _files("graph")
           if re.search(r"^\s*(import|from)\s+(onnx|torch)\b", f.read_text(), re.M)]
    assert not bad, bad


def test_checker_sees_relative_imports():
    """The checker resolves ``from ..x import y`` (a broken checker passes everything)."""
    mods = {m for m, _, _ in _imports(PKG / "lower" / "bound.py")}
    assert {"ir", "schedule", "errors"} <= mods
    lazy = [(m, f) for m, _, f in _imports(PKG / "te" / "__init__.py") if m == "schedule"]
    assert lazy and all(f for _, f in lazy)
