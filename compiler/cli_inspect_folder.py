"""`qnnc inspect DIR` on a folder `qnnc compile` wrote: what it was compiled from, for which
target and precision, and its IR layer by layer (the same table as for an .onnx file)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from compiler.api import load_compiled
from compiler.cli_common import print_json
from compiler.cli_inspect import report
from compiler.flops import human
from compiler.golden.facts import model_precision
from targets.tables import table


def inspect_folder(args: argparse.Namespace) -> int:
    folder = Path(args.model)
    cm = load_compiled(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    info: dict[str, Any] = {
        "folder": str(folder),
        "source_model": manifest.get("source_model"),
        "qnnc_version": manifest.get("qnnc_version"),
        "target": cm.target,
        "precision": model_precision(cm.graph),
        "pipeline": list(cm.pipeline),
        "calibration": cm.calibration,
        "inputs": [{"name": n, "type": str(t)} for n, t in cm.input_types.items()],
        "outputs": [{"name": n, "type": str(t)} for n, t in cm.output_types.items()],
    }
    if cm.build is not None:
        info["arena_bytes"] = cm.build.arena_bytes
        info["weight_bytes"] = cm.build.weight_bytes
    data = {"compiled": info, **{k: v for k, v in report({}, cm.graph, []).items()
                                 if k != "model"}}
    if args.json:
        print_json(data)
        return 0
    lines = [
        f"compiled  {info['folder']} (qnnc {info['qnnc_version']})",
        f"from      {info['source_model'] or '-'}",
        f"target    {info['target'] or 'none (the reference interpreter runs it)'}, "
        f"{info['precision']}",
        f"pipeline  {', '.join(info['pipeline']) or 'none'}",
    ]
    cal = info["calibration"]
    if cal:
        weights = f", {cal['weight_range']} weights" if cal.get("weight_range") else ""
        smooth = f", smoothed (alpha {cal['smooth']:g})" if cal.get("smooth") else ""
        method = cal["method"] + (f" {cal['percentile']:g}" if "percentile" in cal else "")
        if cal.get("chosen"):  # auto: percentile (at that P) or entropy, and why
            scores = ", ".join(f"{k} {v:.1f} dB" for k, v in cal.get("scores_db", {}).items())
            method = (f"auto (percentile {cal.get('percentile', 0):g} or entropy): "
                      f"{cal['chosen']}" + (f", output SQNR {scores}" if scores else ""))
        lines.append(f"calibrated {method} on {cal['samples']} samples (sha256 "
                     f"{cal['samples_sha256'][:16]}...){weights}{smooth}")
    if "arena_bytes" in info:
        lines.append(f"memory    arena {info['arena_bytes']} bytes, weights "
                     f"{info['weight_bytes']} bytes")
    lines += ["inputs"] + [f"  {v['name']}: {v['type']}" for v in info["inputs"]]
    lines += ["outputs"] + [f"  {v['name']}: {v['type']}" for v in info["outputs"]]
    rows = [[i, x["name"], x["op"], x["outputs"][0] if x["outputs"] else "-",
             human(x["params"]), human(x["macs"]), human(x["flops"])]
            for i, x in enumerate(data["layers"])]
    lines += ["", table(["#", "node", "op", "output", "params", "MACs", "FLOPs"], rows,
                        right=(0, 4, 5, 6))]
    t = data["totals"]
    counts = ", ".join(f"{op} x{n}" for op, n in t["op_counts"].items()) or "none"
    lines += ["", f"total     {t['ir_nodes']} IR nodes; params {human(t['params'])}; "
              f"MACs {human(t['macs'])}; FLOPs {human(t['flops'])}", f"ops       {counts}"]
    print("\n".join(lines))
    return 0
