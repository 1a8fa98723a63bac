"""Regenerate the golden corpus: ``python -m tests.golden.regen [NAME ...] [--target T]``.

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.golden.regen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"models to record (default all: {', '.join(c.name for c in CASES)})")
    p.add_argument("--target", action="append", choices=TARGETS, help="only this target")
    p.add_argument("--precision", action="append", choices=PRECISIONS,
                   help="only this precision")
    args = p.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
