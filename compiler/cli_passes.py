"""`qnnc passes`: every pass a pipeline can name, what it does, and its options."""

from __future__ import annotations

import argparse
from typing import Any

from compiler.cli_common import print_json
from compiler.errors import QnncError
from compiler.passes import PASSES
from compiler.passes.manager import options_of, show_value

PASSES_EPILOG = """\
examples:
  qnnc passes
  qnnc passes quantize tile
  qnnc compile model.onnx --calib c.npz --print-pipeline       # the pipeline a compile runs
  qnnc compile model.onnx -o out --calib c.npz \\
      --pipeline "fold-constants,fold-batchnorm,quantize{method=mse skip-op-types=Softmax},dce"

A pipeline is pass names separated by commas, each with its options in braces, separated by
spaces; list values by commas; quote names with spaces or commas: skip-layers="conv 1",conv2.
Options that text cannot carry (calibration samples, the target when --target gives it) are
given to the passes by the compile."""


def _options(name: str) -> list[dict[str, Any]]:
    cls = PASSES[name]
    return [{"name": f.name.replace("_", "-"), "default": show_value(cls, f, f.default),
             "doc": f.metadata.get("doc", "")} for f in options_of(cls)]


def cmd_passes(args: argparse.Namespace) -> int:
    names = args.passes or sorted(PASSES)
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        raise QnncError(f"unknown pass(es) {unknown}; the passes are: "
                        f"{', '.join(sorted(PASSES))}")
    if args.json:
        print_json([{"name": n, "description": PASSES[n].description, "options": _options(n)}
                    for n in names])
        return 0
    for n in names:
        print(f"{n}: {PASSES[n].description}")
        for o in _options(n):
            print(f"    {o['name']}={o['default']}  {o['doc']}")
    return 0


def add_passes_parser(subs: argparse._SubParsersAction, sub, debug) -> None:  # noqa: ANN001
    """Register `qnnc passes` (``sub`` is cli._sub, passed in to avoid an import cycle)."""
    p = sub(subs, "passes", "list the passes a pipeline can name, with their options",
            PASSES_EPILOG, cmd_passes, debug)
    p.add_argument("passes", nargs="*", metavar="PASS", help="only these passes")
    p.add_argument("--json", action="store_true", help="print the list as JSON")


__all__ = ["add_passes_parser", "cmd_passes"]
