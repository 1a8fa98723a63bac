"""The `qnnc` command line: inspect, run, ops, compile, example.

Every error a user can cause is printed as one paragraph, ``qnnc: error: ...``, with an exit
code that says what kind of problem it was (see ``EXIT_CODES``); tracebacks appear only with
``--debug``. The subcommands live in cli_inspect.py and cli_run.py; this module holds the
argument parser and the error handling.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from compiler.api import CALIB_METHODS, DEFAULT_CALIB_METHOD, PRECISIONS, qnnc_version
from compiler.cli_bench import BENCH_EPILOG, cmd_bench, widen_target_choices
from compiler.cli_cache import add_cache_parser
from compiler.cli_common import (
    add_budget_options,
    add_input_shape_option,
    add_percentile_option,
    add_size_budget_option,
    add_smooth_option,
    add_weight_range_option,
    count,
    finish_progress_lines,
    one_paragraph,
)
from compiler.cli_completion import add_completion_parser
from compiler.cli_golden import add_golden_parser
from compiler.cli_inspect import cmd_inspect, cmd_ops
from compiler.cli_passes import add_passes_parser
from compiler.cli_run import cmd_compile, cmd_example, cmd_run
from compiler.cli_targets import add_targets_parser
from compiler.errors import QnncError
from compiler.examples import EXAMPLES
from ir.interpreter import InterpreterError
from ir.ops.registry import OpError
from ir.verifier import VerifyError
from targets.registry import target_names

EXIT_CODES = {
    0: "success",
    1: "error (bad command line, failed pass, file system problem, ...)",
    2: "the model file is missing, unreadable or not a valid ONNX model",
    3: "the model uses ops, types or dynamic shapes qnnc does not support",
    4: "the input data does not fit the model (name, shape, dtype, unreadable file)",
    130: "interrupted (Ctrl-C)",
}

MAIN_EPILOG = """\
examples:
  qnnc example --list                          # built-in example models
  qnnc example tiny_cnn -o tiny.onnx           # write one
  qnnc inspect tiny.onnx                       # summary, per-layer params and FLOPs
  qnnc run tiny.onnx --random-input            # run on the reference interpreter
  qnnc compile tiny.onnx -o build/tiny         # compile to an IR folder
  qnnc run build/tiny --input x.npy            # run the compiled folder
  qnnc ops                                     # the ONNX ops qnnc supports

exit codes:
""" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())

INSPECT_EPILOG = """\
examples:
  qnnc inspect model.onnx
  qnnc inspect model.onnx --input-shape input=1x3x224x224   # symbolic batch size
  qnnc inspect model.onnx --json > summary.json

MACs are counted for Conv/ConvTranspose/MatMul/Gemm/Einsum; FLOPs are 2 per MAC plus
bias adds, pooling windows, a few per element for normalisations, and one per output
element for elementwise ops. A model with unsupported ops is still summarised, with every
unsupported op and its nodes listed; the exit code is then 3."""

RUN_EPILOG = """\
examples:
  qnnc run model.onnx --random-input                  # seeded random data of the right shapes
  qnnc run model.onnx --input image.npy               # one-input model: no name needed
  qnnc run model.onnx --input ids=ids.npy --input mask=mask.npy
  qnnc run model.onnx --input feeds.npz --output outs.npz   # .npz keys = input names
  qnnc run build/model --input image.npy              # a folder made by qnnc compile
  qnnc run build/model --random-input --json          # outputs' summary as JSON

Float inputs accept any float dtype (converted); integer inputs accept integers that fit.
An .npz's keys must be the input names (numpy's unnamed arr_0, arr_1, ... are taken in the
model's input order). NaN/Inf in an INT8 model's input is an error unless --allow-nonfinite.
For outputs with a single non-trivial axis (logits) the argmax is shown."""

OPS_EPILOG = """\
examples:
  qnnc ops
  qnnc ops --json | python -c "import json,sys; print(len(json.load(sys.stdin)))\""""

COMPILE_EPILOG = """\
examples:
  qnnc compile model.onnx -o build/model
  qnnc compile model.onnx -o build/model --input-shape input=1x3x224x224
  qnnc compile model.onnx -o build/model --print-after all 2> passes.log
  qnnc compile model.onnx -o build/model --disable-pass fold-batchnorm -v
  qnnc compile model.onnx -o build/model --target host --threads 2   # C for this CPU
  qnnc compile model.onnx -o build/q8 --precision int8 --calib calib.npz
  qnnc compile model.onnx -o build/q8 --precision int8 --calib calib.npz \\
      --calib-method entropy --skip-op-types Softmax --skip-layers conv1
  qnnc compile model.onnx -o build/q8 --calib calib.npz --eval held_out.npz \\
      --worst 5 --eval-report accuracy.html   # per-layer SQNR, each bad layer's cause and fix

The output folder holds model.ir (IR text), model.ir.npz (large constants) and
manifest.json; with --target host also model.c, model.h, weights.c, the Cython wrapper,
the built Python module, a Makefile and an example main.c (`make` builds it without
Python). It is written atomically: if compilation fails, nothing is left behind.
An existing output folder is replaced only if it holds exactly what an earlier qnnc compile
wrote there (manifest.json lists the files); anything else needs --force. A symbolic link
as OUT_DIR is never followed."""

EXAMPLE_EPILOG = """\
examples:
  qnnc example --list
  qnnc example tiny_cnn -o tiny.onnx
  qnnc example tiny_cnn --seed 3 -o tiny3.onnx"""


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on exit code 1 (2 means a bad model file in qnnc), in one
    paragraph: the error, a did-you-mean for a mistyped choice, and where the help is."""

    def error(self, message: str) -> NoReturn:
        if not message.startswith("argument "):  # a missing or unknown argument: show the form
            self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {suggest(message)}\n"
                     f"(`{self.prog} --help` lists every option)\n")


def suggest(message: str) -> str:
    """argparse's "invalid choice" message with the closest choice offered."""
    m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if not m:
        return message
    choices = re.findall(r"'([^']*)'", m.group(2))
    close = difflib.get_close_matches(m.group(1).lower(), choices, n=1, cutoff=0.6)
    return message + (f"; did you mean {close[0]!r}?" if close else "")


def _sub(
    subs: argparse._SubParsersAction, name: str, help: str, epilog: str,
    fn: Callable[[argparse.Namespace], int], debug: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    p = subs.add_parser(
        name, help=help, description=help[0].upper() + help[1:] + ".", epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter, parents=[debug],
    )
    p.set_defaults(func=fn)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qnnc",
        description="qnnc: an ahead-of-time compiler for quantised neural networks "
        "(ONNX in, C out).",
        epilog=MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qnnc {qnnc_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    # Subcommands accept --debug too; SUPPRESS keeps them from resetting the global one.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks on errors")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = _sub(subs, "inspect", "summarise a model: inputs, outputs, per-layer params and FLOPs",
             INSPECT_EPILOG, cmd_inspect, debug)
    p.add_argument("model", metavar="MODEL.onnx")
    add_input_shape_option(p)
    add_size_budget_option(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = _sub(subs, "run", "run a model on the reference interpreter, or a compiled folder as "
             "it was compiled (host C, staged C, tvm or the interpreter)",
             RUN_EPILOG, cmd_run, debug)
    p.add_argument("model", metavar="MODEL.onnx|COMPILED_DIR")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", action="append", default=[], metavar="[NAME=]FILE",
                     help="input data: x.npy, name=x.npy or feeds.npz (repeatable)")
    src.add_argument("--random-input", action="store_true",
                     help="feed seeded random data of the right shapes and dtypes")
    p.add_argument("--seed", type=count, default=0, help="seed for --random-input (default 0)")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="let NaN/Inf into an INT8 model's float inputs (refused by default: "
                   "they quantise to ordinary codes and give plausible-looking outputs)")
    p.add_argument("-o", "--output", metavar="OUT.npz", help="save the outputs to an .npz file")
    p.add_argument("--force", action="store_true", help="overwrite OUT.npz if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--json", action="store_true",
                   help="print where and how long it ran and each output's summary as JSON")
    add_input_shape_option(p)
    add_size_budget_option(p)

    p = _sub(subs, "ops", "list the ONNX ops qnnc supports and the IR ops they become",
             OPS_EPILOG, cmd_ops, debug)
    p.add_argument("--json", action="store_true", help="print the table as JSON")

    p = _sub(subs, "compile", "compile a model to an IR folder, or to C for a target",
             COMPILE_EPILOG, cmd_compile, debug)
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("-o", "--output-dir", metavar="OUT_DIR",
                   help="the folder to write (required unless --print-pipeline)")
    p.add_argument("--force", action="store_true",
                   help="replace OUT_DIR even if it is not exactly a previous qnnc output "
                   "(files qnnc did not write there are deleted); a symbolic link is never "
                   "followed")
    add_input_shape_option(p)
    add_size_budget_option(p)
    p.add_argument("--pipeline", metavar="PASSES",
                   help="the passes to run, e.g. \"fold-batchnorm,quantize{method=mse},layout,"
                   "tile\" (default: the one --print-pipeline shows)")
    p.add_argument("--print-pipeline", action="store_true",
                   help="print the pipeline these options run (as text --pipeline takes) and "
                   "exit")
    p.add_argument("--print-after", action="append", default=[], metavar="PASS|all",
                   help="print the IR to stderr after PASS (repeatable; 'all' for every pass)")
    p.add_argument("--disable-pass", action="append", default=[], metavar="PASS",
                   help="skip PASS (repeatable)")
    add_build_options(p, eval_report=True)
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_true", help="say more")
    loud.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")

    p = _sub(subs, "example", "write one of the built-in example models as an .onnx file",
             EXAMPLE_EPILOG, cmd_example, debug)
    name = p.add_argument("name", nargs="?", metavar="NAME")
    name.completions = sorted(EXAMPLES)  # type: ignore[attr-defined]  # for qnnc completion
    p.add_argument("-o", "--output", metavar="FILE.onnx", help="where to write (NAME.onnx)")
    p.add_argument("--force", action="store_true",
                   help="overwrite FILE.onnx (and FILE_calib.npz) if they exist")
    p.add_argument("--list", action="store_true", help="list the examples")
    p.add_argument("--json", action="store_true", help="with --list: as JSON")
    p.add_argument("--seed", type=count, default=0, help="seed for the weights (default 0)")
    p.add_argument("--calib-samples", type=count, default=0, metavar="N",
                   help="also write N random input samples as FILE_calib.npz, ready for "
                   "qnnc compile --calib (the examples' weights are random too)")

    p = _sub(subs, "bench", "time a model: compile it (or load a compiled folder) and run it "
             "repeatedly, or model its latency on an accelerator target", BENCH_EPILOG,
             cmd_bench, debug)
    p.add_argument("model", metavar="MODEL.onnx|COMPILED_DIR")
    add_input_shape_option(p)
    add_size_budget_option(p)
    add_build_options(p)
    widen_target_choices(p)
    p.add_argument("--repeat", type=count, default=20, metavar="N",
                   help="timed runs (default 20); the median is reported")
    p.add_argument("--warmup", type=count, default=3, metavar="N",
                   help="untimed runs first (default 3)")
    p.add_argument("--compare", choices=("onnxruntime",), default=None, type=str.lower,
                   help="also time onnxruntime on the same model, inputs and threads: f32, "
                   "and quantize_static INT8 on the --calib samples when given")
    p.add_argument("--profile", action="store_true",
                   help="with --target host: also time every layer (a build with a clock "
                   "read after each layer) and list the slowest, with the time per op kind")
    p.add_argument("--json", action="store_true",
                   help="print everything measured (and modelled) as JSON")

    add_golden_parser(subs, _sub, debug)
    add_targets_parser(subs, _sub, debug)
    add_passes_parser(subs, _sub, debug)
    add_cache_parser(subs, _sub, debug)
    add_completion_parser(subs, _sub, debug)
    return parser


def target_choices() -> list[str]:
    """The target names --target completes to."""
    from targets.tvm.targets import NAMED

    return [*target_names(), "tvm", *(f"tvm:{n}" for n in NAMED)]


def target_arg(text: str) -> str:
    """--target's value: a built-in name (any case), tvm, tvm:NAME or tvm:JSON (kept as
    written: JSON is case-sensitive)."""
    from targets.tvm.targets import is_tvm, parse

    if is_tvm(text.strip()) or is_tvm(text.strip().lower()):
        t = text.strip()
        t = "tvm" + t[3:] if t[:3].lower() == "tvm" else t
        try:
            parse(t)
        except QnncError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return t
    if text.lower() not in target_names():
        close = difflib.get_close_matches(text.lower(), target_choices(), n=1, cutoff=0.6)
        raise argparse.ArgumentTypeError(
            f"unknown target {text!r}; the targets are: {', '.join(target_choices())} "
            "(or tvm:JSON)" + (f"; did you mean {close[0]!r}?" if close else ""))
    return text.lower()


def add_build_options(p: argparse.ArgumentParser, *, eval_report: bool = False) -> None:
    """Target, threads, CPU level and quantisation options (compile and bench share them);
    ``eval_report``: also --eval-report (compile, which prints the --eval report)."""
    p.add_argument("--pad-to-profile", action="store_true",
                   help="with several shape profiles: pad an input no profile matches with "
                   "zeros at the end of each dimension to the smallest profile at least as "
                   "large (only where the model's own preprocessing pads so, e.g. PP-OCR's "
                   "recogniser along the text-line width)")
    target = p.add_argument("--target", default=None, type=target_arg, metavar="TARGET",
                   help="generate and build code for this target: host (C for this CPU), "
                   "an accelerator profile whose staged C runs here "
                   f"({', '.join(target_names()[1:])}), or tvm (Apache TVM for this CPU) / "
                   "tvm:NAME (aarch64, cortex-a76, riscv64, cuda, c) / tvm:JSON (a TVM "
                   "target); default: IR only")
    target.completions = target_choices()  # type: ignore[attr-defined]  # for qnnc completion
    p.add_argument("--tune", type=int, default=0, metavar="N",
                   help="tvm targets: tune the kernels with N MetaSchedule trials (says how "
                   "long first; the database is cached and reused)")
    p.add_argument("--tune-rpc", metavar="HOST:PORT:KEY", default=None,
                   help="with --tune: measure on the boards registered under KEY with the TVM "
                   "RPC tracker at HOST:PORT")
    p.add_argument("--target-file", metavar="FILE.toml|.json", default=None,
                   help="an accelerator profile of your own chip (see qnnc targets --help)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads of the generated code (OpenMP when > 1; default 1)")
    p.add_argument("--cpu", default="auto",
                   choices=("auto", "generic", "avx2", "avx512vnni", "native"),
                   help="host CPU level to compile for (default: detect this machine)")
    q = p.add_argument_group("quantisation")
    q.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="f32 or int8 (needs --calib); default: int8 when --calib is given, "
                   "else f32")
    q.add_argument("--calib", metavar="DATA",
                   help="calibration samples: an .npz (arrays stacked on a new leading axis), "
                   "an .npy, or a folder of .npy files")
    q.add_argument("--calib-method", default=DEFAULT_CALIB_METHOD,
                   choices=CALIB_METHODS,
                   help=f"range observer (default {DEFAULT_CALIB_METHOD}); layerwise picks "
                   "one of the others per tensor by the error it causes in the layers reading "
                   "it; auto quantises with percentile and with entropy ranges and keeps the "
                   "one whose outputs agree with f32 better on the first samples")
    add_percentile_option(q)
    q.add_argument("--skip-layers", action="append", default=[], metavar="NAME[,NAME...]",
                   help="layers (node names, see qnnc inspect) to keep in f32 (repeatable)")
    q.add_argument("--skip-op-types", action="append", default=[], metavar="OP[,OP...]",
                   help="op types to keep in f32, e.g. Softmax,Gemm (repeatable)")
    q.add_argument("--per-tensor-weights", action="store_true",
                   help="one weight scale per layer instead of per output channel")
    add_weight_range_option(q)
    add_smooth_option(q)
    q.add_argument("--equalize", action="store_true",
                   help="cross-layer equalisation before quantising (helps per-tensor weights "
                   "on depthwise networks)")
    q.add_argument("--eval", metavar="DATA",
                   help="held-out samples (as --calib): compare every layer with f32 and show "
                   "the worst")
    add_budget_options(q)
    q.add_argument("--worst", type=count, default=5, metavar="N",
                   help="how many of the worst layers to show with --eval, each with what "
                   "limited it and the setting to change (default 5)")
    if eval_report:
        q.add_argument("--eval-report", metavar="PATH.json|PATH.html",
                       help="also write the --eval report: .json (every tensor's figures, "
                       "cause and fix) or .html (a self-contained page: SQNR chart along the "
                       "network, worst layers, table)")


def _fail(message: str, code: int) -> int:
    sys.stdout.flush()
    finish_progress_lines()
    sys.stderr.write(f"qnnc: error: {one_paragraph(message)}\n")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `qnnc` script; returns the exit code (see ``EXIT_CODES``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 1
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        if debug:
            raise
        return _fail("interrupted", 130)
    except QnncError as e:
        if debug:
            raise
        return _fail(str(e), e.exit_code)
    except InterpreterError as e:
        if debug:
            raise
        return _fail(f"running the model failed: {e}", 1)
    except (OpError, VerifyError) as e:
        if debug:
            raise
        return _fail(
            f"{e}. This is a bug in qnnc, not in your model; rerun with --debug and report it "
            "with the model attached.", 1,
        )
    except BrokenPipeError:  # e.g. `qnnc ops | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as e:
        if debug:
            raise
        where = f" {e.filename!r}" if e.filename else ""
        return _fail(f"{e.strerror or e}{where}", 1)


if __name__ == "__main__":
    sys.exit(main())
