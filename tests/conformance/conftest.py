"""Prints pass/fail/excluded/unsupported counts per op after a conformance run."""

from __future__ import annotations

from collections import defaultdict

import pytest

_TALLY: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    op = dict(report.user_properties).get("onnx_op")
    if op is None:
        return
    if report.when == "call" or (report.when == "setup" and report.skipped):
        if hasattr(report, "wasxfail"):
            outcome = "excluded" if report.skipped else "xpass"
        elif report.skipped:
            outcome = "unsupported"
        else:
            outcome = report.outcome  # passed / failed
        _TALLY[op][outcome] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _TALLY:
        return
    tr = terminalreporter
    tr.section("ONNX backend node tests per op")
    cols = ("passed", "failed", "excluded", "unsupported")
    tr.write_line(f"{'op':<28}" + "".join(f"{c:>12}" for c in cols))
    totals = dict.fromkeys(cols, 0)
    for op in sorted(_TALLY):
        row = _TALLY[op]
        for c in cols:
            totals[c] += row.get(c, 0)
        if row.get("unsupported", 0) and len(row) == 1:
            continue  # ops qnnc does not claim: only counted in the total
        tr.write_line(f"{op:<28}" + "".join(f"{row.get(c, 0):>12}" for c in cols))
    tr.write_line(f"{'total':<28}" + "".join(f"{totals[c]:>12}" for c in cols))
