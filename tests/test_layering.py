"""The layering ir ← targets ← compiler: nothing imports upward, and every module imports on
its own.

A module of ir/ may import only ir; one of targets/ ir and targets; compiler/ anything of the
three. The check reads every import statement (function-local ones included) from the source,
so a lazy import cannot hide an upward dependency. The second test imports each module first
in an interpreter that has none of the project's modules loaded, which is where an import
cycle shows up as a circular ImportError.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("ir", "targets", "compiler")


def _modules() -> list[tuple[str, Path]]:
    out = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out.append((".".join(parts), path))
    return out


def _imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def test_no_module_imports_upward() -> None:
    bad = []
    for module, path in _modules():
        own = LAYERS.index(module.split(".")[0])
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, name in _imported(tree, module, path.name == "__init__.py"):
            top = name.split(".")[0]
            if top in LAYERS and LAYERS.index(top) > own:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {name}")
    assert not bad, "upward imports (ir ← targets ← compiler):\n" + "\n".join(bad)


_PROBE = """
import importlib, json, sys, traceback
failures = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("ir", "targets", "compiler")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failures[name] = traceback.format_exc(limit=3)
print(json.dumps(failures))
"""


def test_every_module_imports_first() -> None:
    """Each module imported as the first of the project's modules (third-party packages stay
    loaded between modules: only the project's own import order matters for a cycle)."""
    names = [m for m, _ in _modules()]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # bytecode caching on: each module is compiled once, not once per re-import
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(names)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not failures, "\n".join(f"{k}:\n{v}" for k, v in failures.items())
