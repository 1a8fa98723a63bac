"""`qnnc golden record` and `qnnc golden check`: golden-output regression tests from the shell.

The logic lives in compiler/golden/; this module parses arguments and prints reports.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from compiler import golden
from compiler.api import CALIB_METHODS, DEFAULT_CALIB_METHOD, PRECISIONS, CompiledModel
from compiler.cli_common import (
    add_budget_options,
    add_input_shape_option,
    add_percentile_option,
    add_size_budget_option,
    add_smooth_option,
    add_weight_range_option,
    count,
    print_json,
    single_shapes_arg,
)
from compiler.cli_run import split_list
from compiler.errors import QnncError
from compiler.io import random_inputs, read_inputs

GOLDEN_EPILOG = """\
examples:
  qnnc golden record model.onnx --input data.npz -o goldens/model
  qnnc golden record model.onnx --target interp --target host --random-input -o goldens/m
  qnnc golden record model.onnx --input x.npy --calib calib.npz -o goldens/q8
  qnnc golden check goldens/model                 # exit 0: every output matches
  qnnc golden check goldens/model --update        # accept an intended change

A golden set is a folder: manifest.json (model sha256, options, targets), model.onnx (a
copy, so the golden survives the original moving or changing), calib.npz for INT8, and one
folder per target holding manifest.json (qnnc version, IR hash, per-output dtype, shape and
tolerance), inputs.npz and outputs.npz. See `qnnc golden record --help` for tolerances."""

RECORD_EPILOG = f"""\
examples:
  qnnc golden record model.onnx --input data.npz -o goldens/model
  qnnc golden record model.onnx --random-input --target interp --target host -o goldens/m
  qnnc golden record model.onnx --input x.npy --calib calib.npz --target ascend910b -o g/q8
  qnnc golden record model.onnx --input x.npy --rtol 1e-4 --atol 1e-6 -o goldens/loose
  qnnc golden record model.onnx --random-input --calib c.npz --target-file chip.toml -o g/chip

Targets: {', '.join(golden.golden_targets())} (interp = the reference interpreter, the default).

Integer outputs are compared exactly. Float outputs of f32 models within
|got - expected| <= atol + rtol*|expected|, by default rtol={golden.DEFAULT_RTOL:g},
atol={golden.DEFAULT_ATOL:g}: compiler changes may reorder float arithmetic.
Float outputs of INT8 models are dequantised integer codes, compared with
tolerance 0: any difference is a changed code, reported in quantisation steps.
--rtol/--atol override the float tolerance; it is stored in the manifest and
kept by `check --update`. The golden set is written atomically."""

CHECK_EPILOG = """\
examples:
  qnnc golden check goldens/model                  # every recorded target
  qnnc golden check goldens/model --target host    # one of them
  qnnc golden check goldens/model --update         # accept an intended change
  qnnc golden check goldens/model --calib new.npz  # INT8: calibrate on other samples
  qnnc golden check goldens/model --json > result.json

Recompiles the stored model copy with the recorded options for every recorded target, runs
it on the stored inputs and compares. Per output it prints the number of mismatching
elements, the first positions (multi-indices), and the worst absolute and relative errors;
it also says whether the compiled IR changed (its sha256) — a changed IR with matching
outputs passes — and, for INT8, whether the calibration samples (their sha256) or an output's
quantisation step (its scale) changed since recording.

exit status:
  0  every output of every checked target matches its golden (or --update rewrote it)
  1  a mismatch, or an error printed as `qnnc: error: ...` (a golden folder that is
     missing or broken, ...); 2-4 as for every qnnc command (see `qnnc --help`)"""


def add_golden_parser(
    subs: argparse._SubParsersAction,
    sub: Callable[..., argparse.ArgumentParser],
    debug: argparse.ArgumentParser,
) -> None:
    """Register `qnnc golden record|check` (``sub`` is cli._sub)."""
    g = sub(subs, "golden", "record and check golden outputs (regression tests)",
            GOLDEN_EPILOG, lambda a: _usage(g), debug)
    gsubs = g.add_subparsers(dest="golden_command", metavar="ACTION",
                             parser_class=type(g))

    p = sub(gsubs, "record", "compile, run and store golden outputs per target",
            RECORD_EPILOG, cmd_record, debug)
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("-o", "--output-dir", required=True, metavar="DIR",
                   help="the golden set folder to write")
    p.add_argument("--force", action="store_true",
                   help="replace DIR even if it is not exactly a golden set qnnc wrote")
    p.add_argument("--target", action="append", default=[], metavar="T", type=str.lower,
                   choices=golden.golden_targets(),
                   help="target to record for (repeatable; default interp)")
    p.add_argument("--target-file", metavar="FILE.toml|.json", default=None,
                   help="also record for an accelerator profile of your own chip (the set "
                   "keeps a copy; its golden folder is named after the profile)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", "--inputs", dest="inputs", action="append", default=[],
                     metavar="[NAME=]FILE",
                     help="input data: data.npz, x.npy or name=x.npy (repeatable; as for run)")
    src.add_argument("--random-input", action="store_true",
                     help="record on seeded random inputs of the right shapes")
    p.add_argument("--seed", type=count, default=0, help="seed for --random-input (default 0)")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance, float outputs")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance, float outputs")
    add_input_shape_option(p)
    add_size_budget_option(p)
    p.add_argument("--disable-pass", action="append", default=[], metavar="PASS",
                   help="skip PASS (repeatable)")
    p.add_argument("--pipeline", metavar="PASSES",
                   help="the passes to run, as for qnnc compile (stored and replayed by check)")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="host threads")
    p.add_argument("--cpu", default="auto",
                   choices=("auto", "generic", "avx2", "avx512vnni", "native"),
                   help="host CPU level (default: detect this machine)")
    q = p.add_argument_group("quantisation")
    q.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="f32 or int8 (default: int8 when --calib is given, else f32)")
    q.add_argument("--calib", metavar="DATA", help="calibration samples (.npz, .npy, folder); "
                   "a stacked copy is stored in the golden set")
    q.add_argument("--calib-method", default=DEFAULT_CALIB_METHOD,
                   choices=CALIB_METHODS)
    add_percentile_option(q)
    q.add_argument("--skip-layers", action="append", default=[], metavar="NAME[,NAME...]")
    q.add_argument("--skip-op-types", action="append", default=[], metavar="OP[,OP...]")
    q.add_argument("--per-tensor-weights", action="store_true",
                   help="one weight scale per layer instead of per output channel")
    add_weight_range_option(q)
    add_smooth_option(q)
    q.add_argument("--equalize", action="store_true",
                   help="cross-layer equalisation before quantising")
    q.add_argument("--eval", metavar="DATA",
                   help="held-out samples (as --calib) for an accuracy budget; a stacked "
                   "copy is stored in the golden set")
    add_budget_options(q)
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")

    p = sub(gsubs, "check", "recompile, rerun and compare with the stored golden outputs",
            CHECK_EPILOG, cmd_check, debug)
    p.add_argument("golden_dir", metavar="DIR")
    p.add_argument("--target", action="append", default=[], metavar="T", type=str.lower,
                   help="check only this recorded target (repeatable; default all)")
    p.add_argument("--model", metavar="MODEL.onnx",
                   help="compile this model instead of the stored copy (with --update it "
                   "becomes the new copy)")
    p.add_argument("--calib", metavar="DATA",
                   help="calibrate on these samples instead of the stored ones (INT8 sets; "
                   "with --update they become the stored copy)")
    p.add_argument("--update", action="store_true",
                   help="rewrite the golden outputs and manifests (for intended changes)")
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON (the exit status is the same)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only failures")


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help()
    return 1


def cmd_record(args: argparse.Namespace) -> int:
    if args.calib and args.precision == "f32":
        raise QnncError("--calib applies to precision int8; drop one of the two (--calib "
                        "alone means int8, as in qnnc compile)")
    options = golden.GoldenOptions(
        precision=args.precision or ("int8" if args.calib else "f32"),
        calib_method=args.calib_method, calib_percentile=args.calib_percentile,
        equalize=args.equalize, smooth=args.smooth,
        per_channel=not args.per_tensor_weights, weight_range=args.weight_range,
        skip_layers=split_list(args.skip_layers), skip_op_types=split_list(args.skip_op_types),
        input_shapes={k: list(v) for k, v in (single_shapes_arg(args) or {}).items()},
        disabled_passes=list(args.disable_pass), threads=args.threads, cpu=args.cpu,
        pipeline=args.pipeline, max_tensor_bytes=args.max_tensor_size,
        min_sqnr_db=args.min_sqnr, max_drop=args.max_drop,
    )

    def feeds(cm: CompiledModel) -> dict:
        if args.random_input:
            return random_inputs(cm.input_types, seed=args.seed)
        return read_inputs(args.inputs, cm.input_names)

    targets = args.target or ([] if args.target_file else [golden.INTERP])
    folders = golden.record_set(args.model, args.output_dir, targets, feeds, options,
                                calibration=args.calib, rtol=args.rtol, atol=args.atol,
                                force=args.force, target_file=args.target_file,
                                eval_data=args.eval)
    if not args.quiet:
        for f in folders:
            man = golden.read_manifest(f)
            outs = ", ".join(f"{o['name']} {o['dtype']}{o['shape']}" for o in man["outputs"])
            print(f"recorded {f} ({man['target']}, {man['precision']}, IR "
                  f"{man['ir_hash'][:12]}): {outs}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    results = golden.check_set(args.golden_dir, targets=args.target or None, model=args.model,
                               update=args.update, calibration=args.calib)
    failed = [r for r in results if not r.passed and not r.updated]
    if args.json:
        print_json([r.as_dict() for r in results])
        return 1 if failed else 0
    for r in results:
        if not (args.quiet and (r.passed or r.updated)):
            print(r.report())
    if not args.quiet:
        n = len(results)
        verdict = (f"{len(failed)} of {n} target(s) FAILED" if failed else
                   f"updated {sum(r.updated for r in results)} of {n} target(s)"
                   if any(r.updated for r in results) else f"all {n} target(s) match")
        print(verdict + (" (rerun with --update to accept an intended change)" if failed
                         else ""))
    return 1 if failed else 0
