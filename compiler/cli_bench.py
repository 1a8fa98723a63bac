"""`qnnc bench`: the latency of a compiled model on this machine (median of repeated runs
after warm-up, with the spread), so a user can compare targets, precisions and threads.

Accelerator targets (every built-in profile but the host) cannot run here, so for them bench
reports the cost model's latency instead: the model tiled for the chip (targets/tiling) and
its layers' modelled cycles summed (targets/cost.py), with the ten slowest layers. The figures
come from targets.report, so they are the ones `qnnc compile --target T` writes to report.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compiler.api import CompiledModel, compile_model, load_compiled
from compiler.cli_common import print_json, progress_bar
from compiler.cli_run import compile_options
from compiler.errors import QnncError
from compiler.flops import graph_costs, human
from compiler.golden.facts import model_precision
from compiler.io import random_inputs
from targets.host.build import DONE
from targets.profiles import BUILTIN_TARGETS
from targets.registry import target_names
from targets.tables import table

TOP_LAYERS = 10
_MODELLED = ", ".join(t for t in BUILTIN_TARGETS if t != "host")

BENCH_EPILOG = f"""\
examples:
  qnnc bench model.onnx                                   # reference interpreter
  qnnc bench model.onnx --target host                     # generated C, one thread
  qnnc bench model.onnx --target host --threads 2 --repeat 50
  qnnc bench model.onnx --target host --precision int8 --calib calib.npz
  qnnc bench model.onnx --target host --calib calib.npz --compare onnxruntime
  qnnc bench model.onnx --target host --calib calib.npz --profile   # time per layer
  qnnc bench build/model                                  # a folder made by qnnc compile
  qnnc bench model.onnx --target mlu370x8 --calib calib.npz   # modelled latency on the chip
  qnnc bench build/model_ascend910b                       # the same from a compiled folder
  qnnc bench model.onnx --target host --json > bench.json # every figure, machine-readable

The host numbers are wall-clock medians on this machine; other work on it shows up in them.
On the accelerator targets the latency is the cost model's, from the same report data as
the compiled folder's report.txt (the layers tiled to the chip's buffers as INT8 kernels; the
ten slowest are listed); the staged C that `qnnc run` executes is then timed on this CPU,
which emulates the chip and says nothing about its speed.
Accelerator targets: {_MODELLED}."""


def duration(ms: float) -> str:
    """A modelled time in the unit that keeps it readable (small models take nanoseconds)."""
    if ms >= 1:
        return f"{ms:.3f} ms"
    if ms >= 1e-3:
        return f"{ms * 1e3:.3f} us"
    return f"{ms * 1e6:.3f} ns"


def widen_target_choices(p: argparse.ArgumentParser) -> None:
    """Reword bench's --target help (the option comes from the build options compile shares):
    bench times host C and models the accelerator profiles."""
    for action in p._actions:  # argparse has no public way to reach an added option
        if action.dest == "target":
            action.completions = target_names()  # type: ignore[attr-defined]
            action.help = ("time generated C for host (or the tvm build for this CPU: "
                           "--target tvm), or model the latency on an accelerator profile "
                           "(default: time the reference interpreter)")


def _compiled(args: argparse.Namespace) -> CompiledModel:
    path = Path(args.model)
    if path.is_dir():
        cm = load_compiled(path)
        asked = args.target_file or args.target
        if asked and asked != cm.target:
            raise QnncError(f"{args.model} was compiled for {cm.target or 'no target'}, not "
                            f"{asked}: bench the .onnx model with --target {asked}, or compile "
                            "it for that target first")
        built = folder_threads(path)
        if built is not None:
            if args.threads > 1 and args.threads != built:
                raise QnncError(f"{args.model} was compiled for {built} thread(s), not "
                                f"{args.threads}: bench it without --threads, or compile the "
                                f".onnx model with --threads {args.threads}")
            args.threads = built  # --profile and --compare run at the folder's count
        return cm
    return compile_model(args.model, compile_options(args),
                         progress=progress_bar("calibrating", unit="samples"))


def folder_threads(folder: Path) -> int | None:
    """The thread count a compiled folder's host C was built for (its build.json), or None
    where the folder does not say (no host build, or one older than the record)."""
    try:
        meta = json.loads((folder / DONE).read_text(encoding="utf-8"))
        threads = meta["options"]["threads"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return threads if isinstance(threads, int) and threads >= 1 else None


def modelled_text(model: str, data: dict[str, Any], top: int = TOP_LAYERS) -> str:
    """The modelled summary of one model on one target (``data`` from report_data)."""
    t, m = data["target"], data["model"]
    ratio = m["offchip_over_compulsory"]
    lines = [
        f"{model}: modelled on {t['name']} ({m['tiled_layers']} layers staged on the chip as "
        f"INT8 kernels, {m['untiled_layers']} streamed around them; all in the totals)",
        f"target   {t['description']}",
        f"latency  {duration(m['latency_ms'])} modelled ({m['cycles']:.0f} cycles at "
        f"{t['clock_hz'] / 1e9:.2f} GHz)",
        f"compute  {m['achieved_tops']:.2f} of {t['int8_tops']:g} INT8 TOPS = "
        f"{100 * m['utilisation']:.1f}% utilisation",
        f"off-chip {m['offchip_bytes'] / 1e6:.3f} MB vs compulsory "
        f"{m['compulsory_bytes'] / 1e6:.3f} MB"
        + (f" ({ratio:.2f}x)" if ratio is not None else "")
        + f"; {m['bound']}-bound (intensity "
        + (f"{m['intensity']:.1f}" if m["intensity"] is not None else "-")
        + f" vs ridge {t['ridge']:.1f} ops/byte)",
    ]
    whys = Counter(d["why"] for d in data["untiled"])
    if whys:  # why the layers around the kernels are not tiled
        lines.append("not tiled " + ", ".join(f"{n} x {why}" for why, n in whys.items()))
    tops = [d for d in data["untiled"] if not d.get("note", "").startswith("counted in ")]
    slow = sorted(data["layers"] + tops, key=lambda d: -d["cycles"])[:top]
    if not slow:
        return "\n".join(lines + ["no layers staged on the chip"])
    total = m["cycles"] or 1.0
    rows = [[i, d["name"], d["op"], f"{d['us']:.3f}", f"{100 * d['cycles'] / total:.1f}",
             human(d["macs"]), f"{d['offchip_bytes'] / 1e6:.3f}", d["bound"]]
            for i, d in enumerate(slow, start=1)]
    lines.append(f"top {len(slow)} layers by modelled time:")
    lines.append(table(["#", "layer", "op", "us", "% time", "MACs", "off-chip MB", "bound"],
                       rows, right=(0, 3, 4, 5, 6)))
    return "\n".join(lines)


def modelled_lines(cm: CompiledModel) -> list[str]:
    """One line per shape profile of an accelerator build: the modelled latency (the figure
    report.txt and `qnnc bench` state)."""
    data = cm.report() or {}
    parts = data.get("profiles", [data] if data else [])
    out = []
    for d in parts:
        m, t = d["model"], d["target"]
        at = f" at {d['shapes']}" if "shapes" in d else ""
        out.append(f"modelled on {t['name']}{at}: {duration(m['latency_ms'])} "
                   f"({m['cycles']:.0f} cycles), {100 * m['utilisation']:.1f}% of its INT8 "
                   f"peak, {m['bound']}-bound")
    return out


def modelled_sections(model: str, cm: CompiledModel) -> list[str]:
    """The modelled summary of an accelerator build, one per shape profile: from the same
    report data (targets.report.report_data) as report.txt and report.json."""
    data = cm.report() or {}
    if "profiles" not in data:
        return [modelled_text(model, data)] if data else []
    return [modelled_text(f"{model} at {p['shapes']}", p) for p in data["profiles"]]


def cmd_bench(args: argparse.Namespace) -> int:
    if args.repeat < 1 or args.warmup < 0:
        raise QnncError("--repeat must be at least 1 and --warmup at least 0")
    if args.target and args.target.startswith("tvm:") and args.target != "tvm:cuda":
        raise QnncError(f"bench times the model on this machine; {args.target} builds for "
                        "another one: compile it with -o and run its run_model.py there, or "
                        "bench --target tvm (this CPU)")
    cm = _compiled(args)
    feeds = random_inputs(cm.input_types, seed=0)
    if getattr(args, "profile", False) and cm.target != "host":
        raise QnncError("--profile times the host C layer by layer: use it with --target host "
                        "(an accelerator's per-layer figures are in its report.txt)")
    if args.compare and cm.profile is not None:
        raise QnncError("--compare onnxruntime times this CPU against onnxruntime: use it with "
                        "--target host (or no target), not an accelerator's modelled latency")
    data = bench_data(args, cm, feeds)
    if getattr(args, "json", False):
        print_json(data)
    else:
        print(bench_text(args, cm, data))
    return 0


def bench_data(args: argparse.Namespace, cm: CompiledModel, feeds: dict[str, Any]
               ) -> dict[str, Any]:
    """Everything `qnnc bench` measured, as the dict --json prints: the timing, and the
    modelled accelerator summary, the onnxruntime comparison and the per-layer profile when
    they were asked for."""
    times = _timed(lambda: cm.run(None, feeds), args.warmup, args.repeat)
    med = statistics.median(times)
    macs = sum(c.macs for c in graph_costs(cm.graph))
    data: dict[str, Any] = {
        "model": args.model, "target": cm.target, "layers": len(cm.graph.nodes),
        "precision": model_precision(cm.graph),
        "latency_ms": {"median": med, "min": min(times), "max": max(times),
                       "runs": args.repeat, "warmup": args.warmup},
        "macs": int(macs), "gops": 2 * macs / med / 1e6 if macs else None,
    }
    if cm.profile is not None:
        report = cm.report() or {}
        data["modelled"] = report.get("profiles", [report] if report else [])
    if args.compare:
        data["compare"] = _compare_onnxruntime(args, cm, feeds, med)
    if getattr(args, "profile", False):
        from compiler.cli_profile import layer_profile

        data["profile"] = layer_profile(cm, feeds, threads=getattr(args, "threads", 1) or 1,
                                        cpu=getattr(args, "cpu", "auto") or "auto",
                                        runs=args.repeat, warmup=min(args.warmup, 1))
    return data


def bench_text(args: argparse.Namespace, cm: CompiledModel, data: dict[str, Any]) -> str:
    sections = modelled_sections(args.model, cm) if cm.profile is not None else []
    where = {"host": "host C", None: "reference interpreter",
             "tvm": "Apache TVM build for this CPU"}.get(
        cm.target, f"{cm.target} staged C emulated on this CPU (not the chip's speed)")
    t = data["latency_ms"]
    lines = ["\n\n".join(sections) + "\n"] if sections else []
    lines += [f"{args.model}: {where}, {data['layers']} layers",
              f"latency  median {t['median']:.3f} ms   min {t['min']:.3f} ms   max "
              f"{t['max']:.3f} ms   ({t['runs']} runs after {t['warmup']} warm-up)"]
    if data["macs"]:
        lines.append(f"compute  {human(data['macs'])}MACs per run -> {data['gops']:.2f} GOPS")
    if "compare" in data:
        lines.append("\n" + compare_text(data["compare"]))
    if "profile" in data:
        from compiler.cli_profile import profile_text

        lines.append("\n" + profile_text(data["profile"]))
    return "\n".join(lines)


def _timed(fn: Callable[[], object], warmup: int, repeat: int) -> list[float]:
    """Milliseconds of ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _compare_onnxruntime(args: argparse.Namespace, cm: CompiledModel, feeds: dict[str, Any],
                         qnnc_ms: float) -> dict[str, Any]:
    """onnxruntime on the same model and inputs, with the same thread count: f32, and its
    quantize_static INT8 when calibration data was given (the same samples qnnc used)."""
    import onnx

    from compiler.ort_compare import ort_quantize, ort_session
    from compiler.quant.calib_data import calibration_data

    source = Path(args.model)
    if source.is_dir():
        source = Path(cm.source or "")
        if not source.is_file():
            raise QnncError(f"--compare onnxruntime needs the .onnx model; {args.model} was "
                            f"compiled from {cm.source!r}, which is not there: bench the .onnx")
    model = onnx.load(str(source))
    threads = getattr(args, "threads", 1) or 1
    rows = [{"runtime": "qnnc " + ("INT8" if model_precision(cm.graph) == "int8" else "f32"),
             "median_ms": qnnc_ms}]

    def row(name: str, session: Any) -> None:
        ms = statistics.median(_timed(lambda: session.run(None, feeds), args.warmup,
                                      args.repeat))
        rows.append({"runtime": name, "median_ms": ms})

    row("onnxruntime f32", ort_session(model.SerializeToString(), threads))
    if getattr(args, "calib", None):
        samples = list(calibration_data(args.calib, cm.input_types))
        with tempfile.TemporaryDirectory(prefix="qnnc-ort-") as tmp:
            row("onnxruntime INT8 (quantize_static)",
                ort_session(ort_quantize(model, samples, Path(tmp)), threads))
    for r in rows:  # its time / qnnc's: > 1 means qnnc is faster
        r["ratio"] = r["median_ms"] / qnnc_ms
    return {"threads": threads, "rows": rows, "load": os.getloadavg()[0],
            "cpus": os.cpu_count() or 1}


def compare_text(data: dict[str, Any]) -> str:
    threads, load, cpus = data["threads"], data["load"], data["cpus"]
    note = (f"load {load:.2f} on {cpus} CPUs: other work shares the cores, so the "
            "ratios are too noisy to judge" if load > max(cpus - 1, 0.5)
            else f"load {load:.2f}")
    head = (f"against onnxruntime ({threads} thread{'s' * (threads > 1)}, same random "
            "inputs; ratio = its time / qnnc's, > 1: qnnc faster)")
    rows = [[r["runtime"], f"{r['median_ms']:.3f}", f"{r['ratio']:.2f}"] for r in data["rows"]]
    return "\n".join([head, table(["runtime", "median ms", "ratio"], rows, right=(1, 2)),
                       note])
