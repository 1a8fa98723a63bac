"""Small helpers the `qnnc` subcommands share: JSON output, shape specs, progress bars
(plain-text tables come from targets.tables, which the reports use too)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from compiler.budget import FLAG, parse_size
from compiler.errors import QnncError
from compiler.io import parse_input_shapes
from compiler.quant.observers import DEFAULT_PERCENTILE, percentile_problem


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def input_shapes_arg(args: argparse.Namespace) -> list[str] | None:
    """The --input-shape texts as given (compiler/shape_profiles.py reads them against the
    model: one shape, or several shape profiles)."""
    specs = getattr(args, "input_shape", None) or []
    return list(specs) or None


def single_shapes_arg(args: argparse.Namespace) -> dict[str, tuple[int, ...]] | None:
    """--input-shape as one shape per input (commands that work on one shape)."""
    specs = getattr(args, "input_shape", None) or []
    return parse_input_shapes(specs) if specs else None


def add_input_shape_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="fix an input's shape, e.g. --input-shape input=1x3x224x224 (repeatable; "
        "needed for inputs with symbolic dimensions such as a batch size 'N'). Several "
        "shapes compile shape profiles into one model: x=1x3x48x160|320|640 (alternatives "
        "per dimension), x=1x3x640x640,1x3x960x960 (whole shapes), seq=16..512:*2 or "
        "seq=16..64:+16 (a named dimension of the model, every input using it), "
        "'a=1x1,b=1x8;a=1x16,b=1x4' (alternatives one by one)",
    )


def add_size_budget_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        FLAG, dest="max_tensor_size", type=_size, default=None, metavar="SIZE",
        help="the largest tensor qnnc may make while importing or running the model, e.g. "
        "4G (default 1G, or 4x the model's largest weight if that is larger); a model that "
        "declares bigger tensors is refused before anything is allocated",
    )


def fraction(text: str) -> float:
    """An argparse type: '1%' or '0.01' -> 0.01."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a fraction: {text!r} (e.g. 1% or 0.01)") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1 (0% and 100%)")
    return value


def percentile(text: str) -> float:
    """An argparse type: a calibration percentile in (50, 100]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentile: {text!r} (e.g. 99.999)") from None
    if (problem := percentile_problem(value)) is not None:
        raise argparse.ArgumentTypeError(problem)
    return value


def add_percentile_option(q: argparse._ArgumentGroup) -> None:
    """--calib-percentile (compile, bench, run, golden record)."""
    q.add_argument("--calib-percentile", type=percentile, default=DEFAULT_PERCENTILE,
                   metavar="P",
                   help="the percentile method's P: each tail's rarest 100 - P percent of a "
                   f"tensor's calibration values are clipped (default {DEFAULT_PERCENTILE:g}; "
                   "lower clips more)")


def add_weight_range_option(q: argparse._ArgumentGroup) -> None:
    """--weight-range (compile, bench, run, golden record)."""
    from compiler.options import DEFAULT_WEIGHT_RANGE, WEIGHT_RANGE_CHOICES

    q.add_argument("--weight-range", choices=WEIGHT_RANGE_CHOICES, default=DEFAULT_WEIGHT_RANGE,
                   help="weight codes: int8 ([-127, 127]); paired (int8, but no two "
                   "neighbouring same-sign weights past 128 together: the host's AVX2 code "
                   "then multiplies bytes exactly at nearly twice the rate, for a small "
                   "accuracy cost); int7 ([-63, 63], as onnxruntime's reduce_range); auto "
                   "(the default): paired for --target host on an AVX2 CPU without VNNI, "
                   "else int8")


def add_smooth_option(q: argparse._ArgumentGroup) -> None:
    """--smooth (compile, bench, run, golden record)."""
    q.add_argument("--smooth", type=fraction, default=0.0, metavar="ALPHA",
                   help="SmoothQuant: move this share (0-1, e.g. 0.5) of each activation "
                   "channel's range into the weights of the MatMul/Gemm layers that read a "
                   "LayerNorm/RMSNorm output, for activations with outlier channels "
                   "(default 0: off)")


def add_budget_options(q: argparse._ArgumentGroup) -> None:
    """--min-sqnr and --max-drop, the INT8 accuracy budget (compile and golden record)."""
    q.add_argument("--min-sqnr", type=float, metavar="DB",
                   help="accuracy budget: keep the most sensitive layers in f32 until the "
                   "output SQNR vs f32 is at least DB (needs --eval)")
    q.add_argument("--max-drop", type=fraction, metavar="FRACTION",
                   help="accuracy budget: at most this fall in top-1 agreement with f32, "
                   "e.g. 1%% or 0.01 (needs --eval)")


def count(text: str) -> int:
    """An argparse type: a non-negative integer (seeds, sample and repeat counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except QnncError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def one_paragraph(message: str) -> str:
    """The message with blank lines removed, so an error prints as a single paragraph."""
    lines = [ln.rstrip() for ln in str(message).strip().splitlines()]
    return "\n".join(ln for ln in lines if ln.strip())


def require(cond: bool, message: str) -> None:
    if not cond:
        raise QnncError(message)


_OPEN_LINES: dict[int, Any] = {}  # terminals where a progress bar's line is unfinished


def finish_progress_lines() -> None:
    """End any progress bar's unfinished terminal line, so a message printed next (an error
    after Ctrl-C, say) starts on a line of its own."""
    for out in list(_OPEN_LINES.values()):
        out.write("\n")
        out.flush()
    _OPEN_LINES.clear()


def progress_bar(label: str, stream: Any = None, unit: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> Callable[[int, int | None], None]:
    """A progress callback for long work: a redrawn bar on a terminal, a few plain lines
    (every 10 %) when stderr is a file or a pipe, so logs stay readable. With ``unit`` (e.g.
    "samples") each line also shows the rate and, when the total is known, the time left."""
    out = stream if stream is not None else sys.stderr
    tty = bool(getattr(out, "isatty", lambda: False)())
    state = {"last": -1}
    start = clock()

    def rate(done: int, total: int | None) -> str:
        secs = clock() - start
        if unit is None or done <= 0 or secs <= 0:
            return ""
        per_s = done / secs
        left = f", {(total - done) / per_s:.0f} s left" if total and done < total else ""
        return f" ({per_s:.3g} {unit}/s{left})"

    def update(done: int, total: int | None) -> None:
        if tty:
            if total:
                filled = int(30 * done / total)
                out.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
                          f"{rate(done, total)}\x1b[K")
            else:
                out.write(f"\r{label} {done}{rate(done, total)}\x1b[K")
            if total and done >= total:
                out.write("\n")
                _OPEN_LINES.pop(id(out), None)
            else:
                _OPEN_LINES[id(out)] = out
            out.flush()
            return
        if total:
            decile = 10 * done // total
            if decile != state["last"]:
                state["last"] = decile
                out.write(f"{label}: {done}/{total}{rate(done, total)}\n")
        elif done % 100 == 0 or done == 1:
            out.write(f"{label}: {done}{rate(done, total)}\n")

    return update
