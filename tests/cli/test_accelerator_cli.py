"""`qnnc compile --target <accelerator>` and `qnnc run` on the folder it writes: tiles shown
with --print-after tile, the three reports written, the run's counters checked against the
cost model; a bad target file is a clear error with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main


def test_compile_for_an_accelerator_then_run(tiny: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["compile", str(tiny), "-o", str(out), "--calib", str(tmp_path / "calib.npz"),
               "--target", "ascend910b", "--print-after", "tile"])
    text = capsys.readouterr().err  # the IR goes to stderr, the summary to stdout
    assert rc == 0
    assert "IR after tile" in text and 'tile_target="ascend910b"' in text
    assert 'layout="NC1HWC0:32"' in text and 'weight_layout="FRACTAL_Z:16x32"' in text
    data = json.loads((out / "report.json").read_text())
    assert data["target"]["name"] == "ascend910b"
    assert {d["name"] for d in data["layers"]} >= {"conv0", "conv1", "pool", "logits"}
    assert "conv1" in (out / "report.txt").read_text()
    assert "<svg" in (out / "roofline.html").read_text()
    assert main(["run", str(out), "--random-input"]) == 0
    ran = capsys.readouterr().out
    assert "as ascend910b staged C" in ran
    assert "counters: bytes per buffer level and MACs of all 6 staged layers equal" in ran


def test_a_target_file_with_a_bad_figure_is_a_clear_error(tiny: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    bad = tmp_path / "chip.json"
    from targets.profiles.thinker2 import DATA

    data = json.loads(json.dumps(DATA))
    data["offchip"]["bandwidth"]["value"] = 0
    bad.write_text(json.dumps(data))
    rc = main(["compile", str(tiny), "-o", str(tmp_path / "o"), "--calib",
               str(tmp_path / "calib.npz"), "--target-file", str(bad)])
    err = capsys.readouterr().err
    assert rc != 0 and "bandwidth" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_accelerator_targets_need_int8(tiny: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["compile", str(tiny), "-o", str(tmp_path / "o"), "--target", "mlu370x8"])
    assert rc != 0 and "runs INT8 kernels" in capsys.readouterr().err


def test_the_compile_summary_states_the_modelled_latency(tiny: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    out = tmp_path / "t2"
    assert main(["compile", str(tiny), "-o", str(out), "--calib", str(tmp_path / "calib.npz"),
                 "--target", "thinker2"]) == 0
    said = capsys.readouterr().out
    cycles = round(json.loads((out / "report.json").read_text())["model"]["cycles"])
    assert "modelled on thinker2: " in said and f"({cycles} cycles)" in said
    assert f"reports: {out / 'report.json'}, {out / 'report.txt'}, {out / 'roofline.html'}" \
        in said
