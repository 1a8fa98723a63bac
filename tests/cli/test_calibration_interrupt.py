"""Ctrl-C during calibration: exit 130 with one line, and nothing left behind — no output
folder, no half-written temporary beside it, no observer thread still running."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

import pytest

from compiler.cli import main

calibrate_mod = importlib.import_module("compiler.quant.calibrate")


@pytest.mark.parametrize("path", ["stacked", "one by one", "threaded"])
def test_interrupted_calibration_leaves_nothing(tiny: Path, tmp_path: Path, path: str,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Interrupted at the fifth sample, on each way samples are fed: as one stack, one by
    one, and one by one with the observers on their own thread."""
    fed = {"n": 0, "alone": 0}
    take = calibrate_mod.Calibrator._take_inputs
    feed = calibrate_mod.Calibrator.feed
    init = calibrate_mod.Calibrator.__init__

    def made(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        self.threads = 2 if path == "threaded" else 1

    def interrupted(self, feeds, graph):  # type: ignore[no-untyped-def]
        fed["n"] += 1
        if fed["n"] == 5:
            raise KeyboardInterrupt
        return take(self, feeds, graph)

    def alone(self, feeds, graph=None):  # type: ignore[no-untyped-def]
        fed["alone"] += 1
        return feed(self, feeds, graph)

    monkeypatch.setattr(calibrate_mod.Calibrator, "__init__", made)
    monkeypatch.setattr(calibrate_mod.Calibrator, "feed", alone)
    monkeypatch.setattr(calibrate_mod.Calibrator, "_take_inputs", interrupted)
    if path == "threaded":
        monkeypatch.setattr(calibrate_mod, "THREADED_ELEMENTS", 0)
    if path != "stacked":
        monkeypatch.setattr(calibrate_mod.Calibrator, "stack_size", lambda self: 1)
    out = tmp_path / "build" / "q8"
    before = set(tmp_path.rglob("*"))
    rc = main(["compile", str(tiny), "-o", str(out), "--calib", str(tmp_path / "calib.npz"),
               "--target", "host"])
    err = capsys.readouterr().err
    assert rc == 130 and "interrupted" in err
    assert fed["n"] == 5 and fed["alone"] == (0 if path == "stacked" else 5)
    assert not out.exists()
    assert set(tmp_path.rglob("*")) - before <= {tmp_path / "build"}  # at most the empty parent
    assert not any(t.name == "qnnc-observe" and t.is_alive() for t in threading.enumerate())
