"""The long fuzz run: many mutated models through the harness in worker processes, so a
crash (a worker dying) and a hang (no answer within the per-case timeout; the worker is
killed and replaced) are counted rather than taking the run down.

    python -m tests.fuzz.runner --count 10000 --workers 2 --save /tmp/fuzz-findings

prints the counts per outcome and the distinct findings (each saved as CASE.onnx to --save).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from tests.fuzz.harness import Outcome, check_case
from tests.fuzz.mutators import mutant
from tests.fuzz.seeds import seed_models


@dataclass
class Report:
    counts: Counter = field(default_factory=Counter)
    findings: dict[int, Outcome] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        parts = ", ".join(f"{k} {self.counts[k]}" for k in
                          ("ok", "error", "traceback", "crash", "hang"))
        return f"{sum(self.counts.values())} cases in {self.seconds:.0f} s: {parts}"


def _worker(conn: Connection, seed: int, timeout_s: float) -> None:
    seeds = seed_models()
    with tempfile.TemporaryDirectory() as d:
        while True:
            index = conn.recv()
            if index is None:
                return
            o = check_case(mutant(seeds, seed, index), Path(d), timeout_s)
            conn.send((o.kind, o.stage, o.detail))


class _Slot:
    def __init__(self, ctx: mp.context.BaseContext, seed: int, timeout_s: float) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, seed, timeout_s), daemon=True)
        self.proc.start()
        child.close()
        self.index: int | None = None
        self.started = 0.0

    def stop(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()


def run_many(count: int, seed: int = 0, workers: int = 2, timeout_s: float = 20.0,
             start: int = 0) -> Report:
    """Cases ``start .. start+count`` of the run with ``seed``."""
    ctx = mp.get_context("fork")
    report = Report()
    begin = time.monotonic()
    todo = list(range(start, start + count))[::-1]
    slots = [_Slot(ctx, seed, timeout_s) for _ in range(workers)]

    def record(index: int, o: Outcome) -> None:
        report.counts[o.kind] += 1
        if o.kind not in ("ok", "error"):
            report.findings[index] = o

    while todo or any(s.index is not None for s in slots):
        for k, s in enumerate(slots):
            if s.index is None and todo:
                s.index, s.started = todo.pop(), time.monotonic()
                s.conn.send(s.index)
            if s.index is None:
                continue
            if s.conn.poll(0.01):
                try:
                    kind, stage, detail = s.conn.recv()
                    record(s.index, Outcome(kind, stage, detail))
                    s.index = None
                    continue
                except EOFError:
                    record(s.index, Outcome("crash", "", f"exit {s.proc.exitcode}"))
            elif time.monotonic() - s.started > timeout_s + 10:  # SIGALRM did not get it
                record(s.index, Outcome("hang", "", f"no answer in {timeout_s + 10} s"))
            elif s.proc.is_alive():
                continue
            else:
                record(s.index, Outcome("crash", "", f"exit {s.proc.exitcode}"))
            s.stop()
            slots[k] = _Slot(ctx, seed, timeout_s)
    for s in slots:
        s.conn.send(None)
        s.proc.join(5)
        s.stop()
    report.seconds = time.monotonic() - begin
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, default=0, help="first case index")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    p.add_argument("--save", type=Path, help="write each finding as CASE.onnx here")
    args = p.parse_args(argv)
    report = run_many(args.count, args.seed, args.workers, args.timeout, args.start)
    print(report.line())
    seeds = seed_models()
    for index, o in sorted(report.findings.items()):
        last = o.detail.strip().splitlines()[-1] if o.detail.strip() else ""
        print(f"case {index}: {o.kind} at {o.stage}: {last[:200]}")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"case{index}.onnx").write_bytes(mutant(seeds, args.seed, index))
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
