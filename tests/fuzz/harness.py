"""One fuzz case through qnnc's front door: load (as `qnnc inspect` does), import to the IR
with the default pipeline, and run on the reference interpreter where it compiles. The only
acceptable failures are qnnc's own: QnncError subclasses (what the CLI prints as one
paragraph with its exit code) and InterpreterError (a run-time failure the CLI reports
cleanly). Anything else is a traceback a user would have seen."""

from __future__ import annotations

import io
import signal
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from compiler import cli
from compiler.api import compile_model
from compiler.errors import QnncError
from compiler.io import random_inputs
from ir.interpreter import InterpreterError

# fuzzed models may declare anything: keep every tensor small so cases stay fast
BUDGET = 16 << 20
BUDGET_FLAG = "16M"


@dataclass(frozen=True)
class Outcome:
    kind: str  # "ok", "error" (qnnc's own), "traceback" or "hang"
    stage: str = ""
    detail: str = ""


class CaseTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise CaseTimeout in the main thread after ``seconds`` (SIGALRM)."""
    def fire(signum: int, frame: object) -> None:
        raise CaseTimeout()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_case(data: bytes, folder: Path, timeout_s: float = 20.0) -> Outcome:
    """Run ``data`` (an .onnx file's bytes) through inspect, compile and run."""
    path = folder / "case.onnx"
    path.write_bytes(data)
    stage = "inspect"
    try:
        with time_limit(timeout_s):
            out = io.StringIO()
            with redirect_stdout(out), redirect_stderr(out):
                code = cli.main(["inspect", str(path), "--max-tensor-size", BUDGET_FLAG])
            if code not in (0, 2, 3, 4) or "Traceback" in out.getvalue():
                return Outcome("traceback", stage, f"exit {code}: {out.getvalue()[-2000:]}")
            stage = "compile"
            cm = compile_model(path, max_tensor_bytes=BUDGET)
            stage = "run"
            cm.run(None, random_inputs(cm.input_types, budget=BUDGET))
    except (QnncError, InterpreterError) as e:
        return Outcome("error", stage, f"{type(e).__name__}: {e}"[:500])
    except CaseTimeout:
        return Outcome("hang", stage, f"over {timeout_s} s")
    except Exception:  # noqa: BLE001 - the point: any other exception is a finding
        return Outcome("traceback", stage, traceback.format_exc()[-4000:])
    return Outcome("ok", stage)
