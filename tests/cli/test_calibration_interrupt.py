"""Ctrl-C during calibration: exit 130 with one line, and nothing left behind — no output
folder, no half-written temporary beside it, no observer thread still running."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

import pytest

from compiler.cli import main

calibrate_mod = importlib.import_module("compiler.quant.calibrate")


@pytest.mark.parametrize("threads", [1, 2])
def test_interrupted_calibration_leaves_nothing(tiny: Path, tmp_path: Path, threads: int,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    fed = {"n": 0}
    feed = calibrate_mod.Calibrator.feed

    def interrupted(self, feeds, graph=None):  # type: ignore[no-untyped-def]
        self.threads = threads
        monkeypatch.setattr(calibrate_mod, "THREADED_ELEMENTS", 0)
        fed["n"] += 1
        if fed["n"] == 5:
            raise KeyboardInterrupt
        return feed(self, feeds, graph)

    monkeypatch.setattr(calibrate_mod.Calibrator, "feed", interrupted)
    out = tmp_path / "build" / "q8"
    before = set(tmp_path.rglob("*"))
    rc = main(["compile", str(tiny), "-o", str(out), "--calib", str(tmp_path / "calib.npz"),
               "--target", "host"])
    err = capsys.readouterr().err
    assert rc == 130 and "interrupted" in err
    assert fed["n"] == 5
    assert not out.exists()
    assert set(tmp_path.rglob("*")) - before <= {tmp_path / "build"}  # at most the empty parent
    assert not any(t.name == "qnnc-observe" and t.is_alive() for t in threading.enumerate())
