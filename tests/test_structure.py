"""Structural rules the code keeps (besides ruff and the layering): operands are read by the
names the ops declare, passes get what they need as options (no hidden state), and modules
stay small enough to read in one sitting."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for layer in ("ir", "targets", "compiler")
           for p in sorted((ROOT / layer).rglob("*.py"))]
#: reading an IR node's operand by position: node.inputs[1], n.inputs[1:3] (a graph's own
#: inputs, Node's own methods, and both orders of a commutative op's pair are not that)
POSITIONAL = re.compile(r"(?<!graph)(?<!self)\.inputs\[\s*(\d+\s*\]|\d*\s*:\s*\d*\s*\])")
MAX_LINES = 650


def _offences(pattern: re.Pattern[str], files: list[Path]) -> list[str]:
    out = []
    for path in files:
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                out.append(f"{path.relative_to(ROOT)}:{k}: {line.strip()}")
    return out


def test_the_positional_pattern_catches_what_it_should() -> None:
    for bad in ("w = node.inputs[1]", "b = n.inputs[2] if len(n.inputs) > 2 else None",
                "rest = node.inputs[1:3]", "x = node.inputs[0]"):
        assert POSITIONAL.search(bad), bad
    for fine in ("graph.inputs[0].name", "for a, b in (add.inputs, add.inputs[::-1]):",
                 "x = node.first_operand()", "w = node.w"):
        assert not POSITIONAL.search(fine), fine


def test_operands_are_read_by_name() -> None:
    """Outside the op definitions themselves (ir/ops/, where an op's infer and compute see
    its own operand list), operands are read as node.w, node.b, ... (registry.py)."""
    files = [p for p in SOURCES if "ir/ops" not in p.as_posix()]
    assert not _offences(POSITIONAL, files), "\n".join(_offences(POSITIONAL, files))


def test_no_hidden_pass_state() -> None:
    found = _offences(re.compile(r"\bContextVar\b|\bcontextvars\b"), SOURCES)
    assert not found, "\n".join(found)


def test_modules_stay_small() -> None:
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in SOURCES
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, f"modules over {MAX_LINES} lines: {long}"
