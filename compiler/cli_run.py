"""`qnnc run`, `qnnc compile` and `qnnc example`."""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from compiler.api import CompiledModel, compile_model, load_compiled, pipeline_for
from compiler.cli_common import input_shapes_arg, print_json, progress_bar
from compiler.errors import QnncError
from compiler.flops import human
from compiler.folders import apply_umask
from compiler.io import check_new_file, random_inputs, read_inputs, write_outputs
from compiler.options import CompileOptions
from compiler.quant.accuracy_html import check_report_path, write_report
from compiler.shape_profiles import profile_text
from targets.tables import table


# -- run --------------------------------------------------------------------------------------
def _summary(name: str, a: np.ndarray) -> list[Any]:
    """One table row: name, shape, dtype, min, max, mean and (for logits) argmax."""
    row: list[Any] = [name, "[" + ",".join(str(d) for d in a.shape) + "]", a.dtype.name]
    if a.size == 0 or a.dtype.kind not in "biuf":
        return row + ["-", "-", "-", "-"]
    v = a.astype(np.float64) if a.dtype.kind == "b" else a
    row += [_num(v.min()), _num(v.max()), _num(np.mean(v, dtype=np.float64))]
    logits_like = a.dtype.kind == "f" and a.size > 1 and sum(d > 1 for d in a.shape) == 1
    row.append(str(int(np.argmax(a))) if logits_like else "-")
    return row


def _num(x: Any) -> str:
    return f"{float(x):.6g}"


def load_runnable(args: argparse.Namespace) -> CompiledModel:
    """An ONNX file (imported and compiled in memory) or a compiled folder."""
    path = Path(args.model)
    if path.is_dir():
        if args.input_shape:
            raise QnncError(
                f"--input-shape applies to ONNX models; the compiled folder {args.model!r} "
                "already has fixed shapes (recompile to change them)"
            )
        return load_compiled(path)
    return compile_model(args.model, input_shapes=input_shapes_arg(args),
                         max_tensor_bytes=args.max_tensor_size)


def cmd_run(args: argparse.Namespace) -> int:
    if args.output:
        check_new_file(Path(args.output), "--output", args.force)
    cm = load_runnable(args)
    if args.random_input:
        feeds = random_inputs(cm.input_types, seed=args.seed, budget=args.max_tensor_size)
    else:
        feeds = read_inputs(args.input, cm.input_names, budget=args.max_tensor_size)
    cm.allow_nonfinite = args.allow_nonfinite
    cm.reset_counters()
    start = time.perf_counter()
    outs = cm.run(None, feeds)
    ms = (time.perf_counter() - start) * 1e3
    if args.json:
        print_json(_run_json(args, cm, feeds, outs, ms))
    elif not args.quiet:
        fed = ", ".join(f"{k}: {np.asarray(v).dtype.name}{list(np.shape(v))}"
                        for k, v in feeds.items())
        source = f"random inputs (seed {args.seed})" if args.random_input else "inputs"
        where = {"host": "as host C", None: "on the reference interpreter"}.get(
            cm.target, f"as {cm.target} staged C on this host")
        last = getattr(cm, "last_profile", None)
        if last is not None:
            where += f", shape profile {last} ({profile_text(cm.profiles[last])})"  # type: ignore[attr-defined]
        print(f"ran {args.model} {where} in {ms:.1f} ms; {source}: {fed}")
        rows = [_summary(n, a) for n, a in zip(cm.output_names, outs)]
        print(table(["output", "shape", "dtype", "min", "max", "mean", "argmax"], rows,
                    right=(3, 4, 5, 6)))
        line = counters_line(cm)
        if line:
            print(line)
    if args.output:
        write_outputs(args.output, dict(zip(cm.output_names, outs)), force=args.force)
        if not args.quiet and not args.json:
            print(f"wrote {len(outs)} output(s) to {args.output}")
    return 0


def _run_json(args: argparse.Namespace, cm: CompiledModel, feeds: dict[str, Any],
              outs: list[np.ndarray], ms: float) -> dict[str, Any]:
    """What `qnnc run --json` prints: where and how long it ran, the inputs' types and each
    output's summary (the table's columns; null where a figure does not apply or an output
    holds NaN or infinity)."""
    rows = []
    for n, a in zip(cm.output_names, outs):
        row: dict[str, Any] = {"name": n, "shape": list(a.shape), "dtype": a.dtype.name,
                               "min": None, "max": None, "mean": None, "argmax": None}
        if a.size and a.dtype.kind in "biuf":
            v = a.astype(np.float64)
            finite = bool(np.isfinite(v).all())  # JSON has no NaN or infinity
            if finite:
                row.update(min=float(v.min()), max=float(v.max()), mean=float(v.mean()))
            if _summary(n, a)[-1] != "-":
                row["argmax"] = int(np.argmax(a))
        rows.append(row)
    last = getattr(cm, "last_profile", None)
    return {"model": args.model, "target": cm.target, "ms": ms,
            **({"shape_profile": last} if last is not None else {}),
            "inputs": {k: {"dtype": np.asarray(v).dtype.name, "shape": list(np.shape(v))}
                       for k, v in feeds.items()},
            "outputs": rows}


def counters_line(cm: CompiledModel) -> str:
    """Accelerator targets: whether the run's counters (bytes per link, MACs) equal the cost
    model's for every staged layer, naming the layers that differ (for a model of several
    shape profiles, the profile the run used)."""
    last = getattr(cm, "last_profile", None)
    if last is not None:
        cm = cm.variants[last]  # type: ignore[attr-defined]
    plans = cm.plans()
    counters = cm.counters()
    if plans is None or not counters:
        return ""
    from targets.staged.plans import modelled_counters

    differ = [p.node for p in plans
              if {k: v for k, v in counters.get(p.node, {}).items() if v}
              != modelled_counters(p)]
    if not differ:
        return (f"counters: bytes per buffer level and MACs of all {len(plans)} staged layers "
                "equal the cost model's")
    return (f"counters: {len(differ)} of {len(plans)} staged layers differ from the cost "
            f"model: {', '.join(differ[:10])}")


# -- compile ----------------------------------------------------------------------------------
def _print_ir(pass_name: str, text: str) -> None:
    sys.stderr.write(f"// ----- IR after {pass_name} -----\n{text.rstrip()}\n")
    sys.stderr.flush()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_compile(args: argparse.Namespace) -> int:
    opts = compile_options(args)
    if args.print_pipeline:
        print(pipeline_for(opts))
        return 0
    if not args.output_dir:
        raise QnncError("qnnc compile needs an output folder: -o OUT_DIR")
    report_path = eval_report_path(args)
    start = time.perf_counter()
    cm = compile_model(args.model, opts.replace(
        disabled_passes=tuple(args.disable_pass), print_after=tuple(args.print_after),
        output_dir=args.output_dir, force=args.force, on_print=_print_ir,
        progress=None if args.quiet else progress_bar("calibrating", unit="samples"),
        build_progress=None if args.quiet else progress_bar("building C"),
        tune_progress=None if args.quiet else progress_bar("tuning", unit="trials"),
        tune_log=None if args.quiet else _say))
    secs = time.perf_counter() - start
    if report_path is not None:
        if cm.accuracy is None:
            raise QnncError(f"no accuracy report to write to {str(report_path)!r}: qnnc "
                            "quantised nothing (an f32 build, or a model that came quantised)")
        write_report(cm.accuracy, report_path, worst=args.worst)
    if args.quiet:
        return 0
    passes = ", ".join(cm.pipeline) or "none"
    where = f" for {cm.target}" if cm.target else ""
    if hasattr(cm, "profiles"):
        where += (f" with {len(cm.profiles)} shape profiles ("  # type: ignore[attr-defined]
                  f"{'; '.join(profile_text(p) for p in cm.profiles)})")  # type: ignore[attr-defined]
    print(f"compiled {args.model} -> {args.output_dir}{where} ({len(cm.graph.nodes)} IR nodes, "
          f"passes: {passes}) in {secs:.2f} s")
    if cm.auto_precision is not None:
        print(cm.auto_precision.format())
    if cm.accuracy is not None:
        print(cm.accuracy.format(worst=args.worst))
    if report_path is not None:
        print(f"wrote the accuracy report {report_path}")
    b = cm.build
    if b is not None:
        print(f"arena {b.arena_bytes} bytes, weights {b.weight_bytes} bytes"
              f"{', cached build' if b.cache_hit else ''}")
        _say_one_thread(cm, args.threads)
    if cm.profile is not None:
        from compiler.cli_bench import modelled_lines
        from targets.report import REPORT_FILES

        print("\n".join(modelled_lines(cm)))
        print("reports: " + ", ".join(str(Path(args.output_dir) / f) for f in REPORT_FILES))
    if args.verbose:
        counts = ", ".join(f"{op} x{n}" for op, n in sorted(cm.graph.op_counts().items()))
        print(f"ops: {counts or 'none'}")
        for name, t in cm.input_types.items():
            print(f"input  {name}: {t}")
        for name, t in cm.output_types.items():
            print(f"output {name}: {t}")
        for f in sorted(Path(args.output_dir).iterdir()):
            print(f"wrote {f} ({human(f.stat().st_size)}B)")
    return 0


def _say_one_thread(cm: CompiledModel, threads: int) -> None:
    """Say so when a host build asked for threads was built for one (compiler.builds
    .host_threads)."""
    from compiler.builds import host_threads
    from targets.c.emitter import MIN_PARALLEL_NS, MIN_SHARED_NS, shared_ns

    graphs = [v.graph for v in getattr(cm, "variants", [cm])]
    if cm.target == "host" and threads > 1 and host_threads(graphs, threads) == 1:
        shared = max((shared_ns(g) for g in graphs), default=0.0)
        why = (f"no layer is large enough to share out (each would take under "
               f"{MIN_PARALLEL_NS / 1000:g} us on one thread)") if shared == 0 else \
            (f"its layers large enough to share out would take about {shared / 1e3:.0f} us "
             f"together on one thread, under the {MIN_SHARED_NS / 1e3:g} us that two "
             f"threads need to gain more than their forks, joins and wake-ups cost")
        print(f"built for one thread, not {threads}: {why}")


def eval_report_path(args: argparse.Namespace) -> Path | None:
    """--eval-report's path, checked before compiling (a bad one fails in a second, not
    after calibration): it needs --eval, a .json or .html name and an existing folder."""
    path = getattr(args, "eval_report", None)
    if path is None:
        return None
    if not args.eval:
        raise QnncError("--eval-report writes the --eval accuracy report: give held-out "
                        "samples with --eval DATA too")
    return check_report_path(path)


def compile_options(args: argparse.Namespace) -> CompileOptions:
    """The compile options the flags of add_build_options (and compile's --pipeline) give;
    compile and bench share them."""
    return CompileOptions(
        input_shapes=input_shapes_arg(args),
        max_tensor_bytes=getattr(args, "max_tensor_size", None),
        pad_to_profile=getattr(args, "pad_to_profile", False),
        pipeline=getattr(args, "pipeline", None),
        target=args.target,
        target_file=getattr(args, "target_file", None),
        tune=getattr(args, "tune", 0),
        tune_rpc=getattr(args, "tune_rpc", None),
        threads=args.threads,
        cpu=args.cpu,
        precision=args.precision,
        calibration=args.calib,
        calib_method=args.calib_method,
        calib_percentile=args.calib_percentile,
        skip_layers=split_list(args.skip_layers),
        skip_op_types=split_list(args.skip_op_types),
        per_channel=not args.per_tensor_weights,
        weight_range=args.weight_range,
        equalize=args.equalize,
        smooth=args.smooth,
        eval_data=args.eval,
        min_sqnr_db=args.min_sqnr,
        max_drop=args.max_drop,
    )


def split_list(values: list[str]) -> list[str]:
    """Repeatable, comma-separated option values as one list."""
    return [item.strip() for v in values for item in v.split(",") if item.strip()]


# -- example ----------------------------------------------------------------------------------
def _examples() -> ModuleType:
    try:
        mod: ModuleType | None = importlib.import_module("compiler.examples")
    except ModuleNotFoundError as e:
        if e.name != "compiler.examples":
            raise
        mod = None
    if mod is None or not hasattr(mod, "EXAMPLES") or not hasattr(mod, "build_example"):
        raise QnncError("this qnnc build has no example models (compiler.examples)")
    return mod


def cmd_example(args: argparse.Namespace) -> int:
    mod = _examples()
    examples: dict[str, str] = dict(mod.EXAMPLES)
    if args.list or not args.name:
        if not args.list:
            raise QnncError("name an example to write (qnnc example NAME -o FILE.onnx), or "
                            "list them with qnnc example --list")
        if args.json:
            print_json(dict(sorted(examples.items())))
        else:
            print(table(["example", "description"], sorted(examples.items()), max_width=100))
        return 0
    if args.name not in examples:
        raise QnncError(
            f"no example named {args.name!r}; the examples are: {', '.join(sorted(examples))}"
        )
    out = Path(args.output or f"{args.name}.onnx")
    calib = out.with_name(f"{out.stem}_calib.npz")
    check_new_file(out, "the example file", args.force)
    if args.calib_samples:
        check_new_file(calib, "the calibration file", args.force)
    model = mod.build_example(args.name, seed=args.seed)
    _write_bytes_atomically(out, model.SerializeToString())
    print(f"wrote {out} ({len(model.graph.node)} nodes); try: qnnc inspect {out}")
    if args.calib_samples:
        _write_calibration(model, args.calib_samples, args.seed, calib)
        print(f"wrote {calib} ({args.calib_samples} samples); try: qnnc compile {out} "
              f"-o build/{out.stem} --calib {calib}")
    return 0


def _write_calibration(model: Any, count: int, seed: int, path: Path) -> None:
    """``count`` seeded N(0, 1) samples per input, stacked on a new leading axis."""
    if count < 0:
        raise QnncError("--calib-samples must be positive")
    graph = compile_model(model, pipeline=[]).graph
    samples = [random_inputs({v.name: v.type for v in graph.inputs}, seed=seed + 1 + k)
               for k in range(count)]
    stacked = {name: np.stack([s[name] for s in samples]) for name in samples[0]}
    buf = io.BytesIO()
    np.savez(buf, **stacked)
    _write_bytes_atomically(path, buf.getvalue())


def _write_bytes_atomically(path: Path, data: bytes) -> None:
    parent = path.absolute().parent
    if not parent.is_dir():
        raise QnncError(f"cannot write {str(path)!r}: folder {str(parent)!r} does not exist")
    if path.is_dir():
        raise QnncError(f"cannot write {str(path)!r}: it is a folder")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        apply_umask(Path(tmp))  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
