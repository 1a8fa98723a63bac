"""The progress callback of long CLI work: plain lines every 10 % to a pipe, a redrawn bar
on a terminal, and the rate and time left when a unit is given (a fake clock here)."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable

import pytest

from compiler import cli
from compiler.cli_common import progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_pipe_gets_deciles_with_rate_and_time_left() -> None:
    out, now = io.StringIO(), [0.0]
    update = progress_bar("calibrating", out, unit="samples", clock=lambda: now[0])
    for k in range(1, 21):
        now[0] = k * 0.5  # two samples a second
        update(k, 20)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # the first sample, then one line per decile: 2/20, 4/20, ...
    assert lines[0] == "calibrating: 1/20 (2 samples/s, 10 s left)"
    assert lines[1] == "calibrating: 2/20 (2 samples/s, 9 s left)"
    assert lines[-1] == "calibrating: 20/20 (2 samples/s)"


def test_unknown_total_and_no_unit() -> None:
    out = io.StringIO()
    update = progress_bar("building C", out, clock=lambda: 1.0)
    update(1, None)
    update(2, None)
    assert out.getvalue() == "building C: 1\n"


def test_terminal_bar_redraws_one_line() -> None:
    out, now = _Tty(), [0.0]
    update = progress_bar("calibrating", out, unit="samples", clock=lambda: now[0])
    now[0] = 1.0
    update(1, 4)
    now[0] = 4.0
    update(4, 4)
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "[#######.......................] 1/4 (1 samples/s, 3 s left)" in text
    assert "4/4 (1 samples/s)" in text


def test_an_error_after_an_unfinished_bar_starts_its_own_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or any failure) midway: `qnnc: error:` must not be printed on the bar's line."""
    err = _Tty()
    monkeypatch.setattr(sys, "stderr", err)
    update = progress_bar("calibrating", unit="samples", clock=lambda: 1.0)
    update(1, 4)

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", _parser_running(interrupted))
    assert cli.main(["ops"]) == 130
    text = err.getvalue()
    assert "1/4" in text and "\x1b[K\nqnnc: error: interrupted\n" in text
    cli.finish_progress_lines()  # nothing left open: no stray newline later
    assert err.getvalue() == text


def _parser_running(fn: Callable[[object], int]) -> Callable[[], argparse.ArgumentParser]:
    def build() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser()
        p.add_argument("command")
        p.set_defaults(func=fn)
        return p
    return build
