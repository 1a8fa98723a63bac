"""Regenerate the golden corpus: ``python -m tests.golden.regen [NAME ...] [--target T]``;
the shipped models' goldens (tests/golden/shipped.py) with ``--shipped [NAME ...]``.

Records every (model, target, precision) combination of tests/golden/corpus.py that compiles
into tests/golden/data/<model>/<target>-<precision>/, replacing what is there. Combinations a
target cannot compile yet are listed as skipped and left unrecorded. Review the diff (the
manifests say what changed: IR hash, tolerances) before committing.
"""

from __future__ import annotations

import argparse
import sys
import time

from compiler.golden import record_outputs
from targets.c.emitter import CodegenError
from tests.golden.corpus import CASES, INT8_ONLY, PRECISIONS, TARGETS, compile_case, folder
from tests.golden.shipped import SHIPPED, compile_shipped
from tests.golden.shipped import folder as shipped_folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.golden.regen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"models to record (default all: {', '.join(c.name for c in CASES)})")
    p.add_argument("--target", action="append", choices=TARGETS, help="only this target")
    p.add_argument("--precision", action="append", choices=PRECISIONS,
                   help="only this precision")
    p.add_argument("--shipped", action="store_true",
                   help="record the shipped models' goldens instead (names: "
                        f"{', '.join(c.name for c in SHIPPED)})")
    args = p.parse_args(argv)
    if args.shipped:
        return _shipped(p, args)
    unknown = set(args.names) - {c.name for c in CASES}
    if unknown:
        p.error(f"unknown model(s) {sorted(unknown)}")
    for case in CASES:
        if args.names and case.name not in args.names:
            continue
        for target in args.target or TARGETS:
            for precision in args.precision or PRECISIONS:
                if target in INT8_ONLY and precision != "int8":
                    continue
                start = time.perf_counter()
                where = folder(case, target, precision)
                try:
                    cm, pins = compile_case(case, target, precision)
                except CodegenError as e:
                    print(f"skipped  {where.relative_to(where.parents[2])}: {e}"[:160])
                    continue
                record_outputs(cm, case.inputs(case.model()), where, extra=pins)
                secs = time.perf_counter() - start
                print(f"recorded {where.relative_to(where.parents[2])} ({secs:.1f} s)")
    return 0


def _shipped(p: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    unknown = set(args.names) - {c.name for c in SHIPPED}
    if unknown:
        p.error(f"unknown shipped model(s) {sorted(unknown)}")
    for case in SHIPPED:
        if args.names and case.name not in args.names:
            continue
        if not case.available():
            print(f"skipped  {case.name}: {case.case.shipped.package} is not installed")
            continue
        for target, precision in case.targets:
            if (args.target and target not in args.target) or (
                    args.precision and precision not in args.precision):
                continue
            start = time.perf_counter()
            where = shipped_folder(case, target, precision)
            cm, pins = compile_shipped(case, target, precision)
            record_outputs(cm, case.inputs(), where, extra=pins)
            secs = time.perf_counter() - start
            print(f"recorded {where.relative_to(where.parents[2])} ({secs:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
