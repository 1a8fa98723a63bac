"""docs/ops.md, rendered from the registries — the supported-op list is data, and the docs
print it rather than repeat it. Regenerate with ``python -m compiler.opsdoc --write``; a test
fails when the committed file is out of date."""

from __future__ import annotations

import sys
from pathlib import Path

from compiler.frontend.loader import MIN_OPSET
from compiler.frontend.registry import supported_ops
from ir.ops.registry import OPS

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "ops.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def render() -> str:
    convs = supported_ops()
    lines = [
        "# Supported ops",
        "",
        "Generated from qnnc's registries by `python -m compiler.opsdoc --write`; "
        "`qnnc ops` prints the same list.",
        "",
        f"## ONNX ops ({len(convs)})",
        "",
        f"Default domain, opsets {MIN_OPSET} to the newest the installed onnx knows. Operands "
        "that decide shapes (a Reshape's shape, a Slice's bounds, ...) must be constant at "
        "compile time.",
        "",
        "| ONNX op | IR ops | note |",
        "| --- | --- | --- |",
    ]
    for c in convs:
        ir_ops = ", ".join(c.ir_ops) if c.ir_ops else "(folded at import)"
        lines.append(f"| {c.op_type} | {ir_ops} | {_cell(c.note)} |")
    lines += [
        "",
        f"## IR ops ({len(OPS)})",
        "",
        "| IR op | inputs | attributes | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name in sorted(OPS):
        op = OPS[name]
        hi = "*" if op.max_inputs < 0 else str(op.max_inputs)
        arity = str(op.min_inputs) if hi == str(op.min_inputs) else f"{op.min_inputs}..{hi}"
        attrs = ", ".join(f"{k}: {a.kind}" for k, a in op.attrs.items())
        doc = op.doc.strip().splitlines()[0] if op.doc.strip() else ""
        lines.append(f"| {name} | {arity} | {_cell(attrs)} | {_cell(doc)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--write" in args:
        DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
        DOC_PATH.write_text(text)
        print(f"wrote {DOC_PATH.name}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
