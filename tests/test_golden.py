"""Golden outputs: the comparison rules, the golden folder and set formats, and the
`qnnc golden record|check` commands end to end (record, pass, regress, update, pass)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from compiler import golden
from compiler.api import compile_model
from compiler.cli import main
from compiler.errors import QnncError
from compiler.examples import build_example
from compiler.golden import Tolerance, compare_output


# -- comparison rules ---------------------------------------------------------------------------
def test_integers_compare_exactly_and_report_positions() -> None:
    want = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    got = want.copy()
    got[1, 2, 3] += 1
    got[0, 1, 0] -= 5
    r = compare_output("y", want, got, None)
    assert not r.ok
    assert "2 of 24 elements differ (exact)" in r.summary
    assert "first at [0, 1, 0], [1, 2, 3]" in r.details[0]
    assert "worst abs error 5 at [0, 1, 0] (got -1, expected 4)" in r.details[1]
    assert compare_output("y", want, want.copy(), None).ok


def test_float_tolerance_boundary_nan_and_inf() -> None:
    want = np.array([1.0, 0.0, np.nan, np.inf, -2.0], np.float32)
    tol = Tolerance(1e-5, 1e-6)
    inside = want + np.array([1e-5, 1e-6, 0, 0, 0], np.float32) * 0.9
    assert compare_output("y", want, inside.astype(np.float32), tol).ok
    outside = want.copy()
    outside[1] = 3e-6
    r = compare_output("y", want, outside, tol)
    assert not r.ok and "1 of 5" in r.summary and "first at [1]" in r.details[0]
    flipped = want.copy()
    flipped[3] = -np.inf
    assert not compare_output("y", want, flipped, tol).ok
    assert "worst rel error inf" in compare_output("y", want, outside, tol).details[2]


def test_shape_or_dtype_change_fails() -> None:
    want = np.zeros((2, 3), np.float32)
    assert "got float32[3, 2]" in compare_output("y", want, want.reshape(3, 2), None).summary
    assert not compare_output("y", want, want.astype(np.float64), Tolerance(1, 1)).ok


def test_int8_outputs_exact_and_reported_in_quantisation_steps(tmp_path: Path) -> None:
    model = build_example("tiny_cnn")
    rng = np.random.default_rng(0)
    calib = {"input": rng.standard_normal((8, 1, 1, 8, 8)).astype(np.float32)}
    cm = compile_model(model, precision="int8", calibration=calib)
    x = {"input": rng.standard_normal((1, 1, 8, 8)).astype(np.float32)}
    golden.record_outputs(cm, x, tmp_path / "g")
    man = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert man["precision"] == "int8"
    step = golden.quant_steps(cm.graph)["logits"]
    assert man["outputs"][0] == {"name": "logits", "dtype": "float32", "shape": [1, 10],
                                 "compare": "tolerance", "rtol": 0.0, "atol": 0.0,
                                 "quant_step": step}
    outs = dict(np.load(tmp_path / "g" / "outputs.npz"))
    outs["logits"][0, 4] += np.float32(step)  # one code off
    np.savez(tmp_path / "g" / "outputs.npz", **outs)
    res = golden.check_outputs(cm, tmp_path / "g")
    assert not res.passed
    assert "= 1 quantisation steps" in res.report()


# -- golden folders ----------------------------------------------------------------------------
def test_changed_inputs_are_reported_not_compared(tmp_path: Path) -> None:
    cm = compile_model(build_example("tiny_cnn"))
    x = np.zeros((1, 1, 8, 8), np.float32)
    golden.record_outputs(cm, {"input": x}, tmp_path / "g")
    assert golden.check_outputs(cm, tmp_path / "g", {"input": x}).passed
    res = golden.check_outputs(cm, tmp_path / "g", {"input": x + 1})
    assert not res.passed and "input 'input' differs" in res.report()


def test_unknown_target_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(QnncError, match="goldens can be recorded for: interp, host, ascend"):
        golden.compile_target("ascend999")
    m = tmp_path / "m.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    rc = main(["golden", "record", str(m), "--random-input", "-o", str(tmp_path / "g"),
               "--target", "mlu370"])
    assert rc == 1 and not (tmp_path / "g").exists()


def test_failed_record_leaves_previous_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    m = tmp_path / "m.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    out = tmp_path / "g"
    assert main(["golden", "record", str(m), "--random-input", "-o", str(out), "-q"]) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(_graph: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr("compiler.golden.folder.ir_hash", boom)
    with pytest.raises(RuntimeError):
        golden.record_set(m, out, ["interp"], lambda cm: {"input": np.ones((1, 1, 8, 8))},
                          golden.GoldenOptions())
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g", "m.onnx"]  # no temp folders


# -- the CLI end to end -------------------------------------------------------------------------
def _bump_weight(src: Path, dst: Path) -> None:
    m = onnx.load(src)
    for t in m.graph.initializer:
        if t.name == "fc.weight":
            a = numpy_helper.to_array(t).copy()
            a[3, :8] += 0.25
            t.CopyFrom(numpy_helper.from_array(a, t.name))
    onnx.save(m, dst)


def test_cli_record_check_regress_update(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    m = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    np.savez(tmp_path / "data.npz",
             input=np.random.default_rng(5).standard_normal((1, 1, 8, 8)).astype(np.float32))
    out = tmp_path / "goldens" / "tiny"
    assert main(["golden", "record", str(m), "--inputs", str(tmp_path / "data.npz"),
                 "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["interp", "manifest.json", "model.onnx"]
    assert sorted(p.name for p in (out / "interp").iterdir()) == [
        "inputs.npz", "manifest.json", "outputs.npz"]
    man = json.loads((out / "interp" / "manifest.json").read_text())
    assert len(man["ir_hash"]) == 64 and man["qnnc_version"] and man["target"] == "interp"
    capsys.readouterr()

    assert main(["golden", "check", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ok" in text and "IR unchanged" in text and "all 1 target(s) match" in text

    # an edited model behaves like a compiler that computes something else
    _bump_weight(out / "model.onnx", out / "model.onnx")
    assert main(["golden", "check", str(out)]) == 1
    text = capsys.readouterr().out
    assert "FAIL" in text and "output 'logits' float32[1, 10]:" in text
    assert "elements differ (rtol 1e-05, atol 1e-06)" in text
    assert "first at [0, 3]" in text and "worst abs error" in text and "worst rel error" in text
    assert "IR hash changed" in text and "1 of 1 target(s) FAILED" in text

    assert main(["golden", "check", str(out), "--update"]) == 0
    assert "UPDATED" in capsys.readouterr().out
    assert main(["golden", "check", str(out)]) == 0
    assert "IR unchanged" in capsys.readouterr().out
    assert json.loads((out / "interp" / "manifest.json").read_text())["ir_hash"] != man["ir_hash"]


def test_cli_check_another_model_then_adopt_it(tmp_path: Path, capsys: pytest.CaptureFixture
                                               ) -> None:
    m = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    out = tmp_path / "g"
    assert main(["golden", "record", str(m), "--random-input", "--seed", "3", "-o", str(out),
                 "-q"]) == 0
    _bump_weight(m, m)  # the user's source model changes after recording
    assert main(["golden", "check", str(out)]) == 0  # the stored copy still matches...
    assert "source model" in capsys.readouterr().out  # ...but the check says the source moved
    assert main(["golden", "check", str(out), "--model", str(m)]) == 1
    assert "elements differ" in capsys.readouterr().out
    assert main(["golden", "check", str(out), "--model", str(m), "--update", "-q"]) == 0
    assert (out / "model.onnx").read_bytes() == m.read_bytes()
    assert main(["golden", "check", str(out), "-q"]) == 0


def test_cli_int8_record_stores_calibration(tmp_path: Path, capsys: pytest.CaptureFixture
                                            ) -> None:
    m = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", input=rng.standard_normal((8, 1, 1, 8, 8)).astype("f4"))
    np.save(tmp_path / "x.npy", rng.standard_normal((1, 1, 8, 8)).astype(np.float32))
    out = tmp_path / "q8"
    calib = str(tmp_path / "calib.npz")
    assert main(["golden", "record", str(m), "--inputs", str(tmp_path / "x.npy"), "-o",
                 str(tmp_path / "f32"), "--precision", "f32", "--calib", calib]) == 1
    assert "--calib alone means int8" in capsys.readouterr().err
    # --calib alone means int8, as in qnnc compile and compile_model(calibration=...)
    assert main(["golden", "record", str(m), "--inputs", str(tmp_path / "x.npy"), "-o",
                 str(out), "--calib", calib]) == 0
    assert "int8" in capsys.readouterr().out
    (tmp_path / "calib.npz").unlink()  # the set must not depend on the user's files
    m.unlink()
    assert (out / "calib.npz").is_file()
    assert main(["golden", "check", str(out)]) == 0
    assert "exact (tolerance 0)" in capsys.readouterr().out


def test_cli_check_with_new_calibration_says_what_moved(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    m = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", input=rng.standard_normal((8, 1, 1, 8, 8)).astype("f4"))
    wide = 3 * rng.standard_normal((8, 1, 1, 8, 8)).astype("f4")  # other ranges, other scales
    np.savez(tmp_path / "wide.npz", input=wide)
    out = tmp_path / "q8"
    assert main(["golden", "record", str(m), "--random-input", "-o", str(out), "--calib",
                 str(tmp_path / "calib.npz"), "-q"]) == 0
    recorded = json.loads((out / "interp" / "manifest.json").read_text())
    assert recorded["calibration"]["samples"] == 8
    capsys.readouterr()
    assert main(["golden", "check", str(out), "--calib", str(tmp_path / "wide.npz"),
                 "--json"]) == 1
    (res,) = json.loads(capsys.readouterr().out)
    assert not res["passed"] and not res["outputs"][0]["ok"]
    notes = " ".join(res["notes"])
    assert "calibration changed since recording (samples_sha256 " in notes
    assert "output 'logits': its quantisation step (output scale) changed from" in notes
    # --update adopts the new samples: the stored copy is replaced and the check passes
    assert main(["golden", "check", str(out), "--calib", str(tmp_path / "wide.npz"),
                 "--update", "-q"]) == 0
    np.testing.assert_array_equal(np.load(out / "calib.npz")["input"], wide)
    capsys.readouterr()
    assert main(["golden", "check", str(out), "--json"]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    assert res["passed"] and not any("calibration changed" in n for n in res["notes"])


def test_cli_check_calib_on_an_f32_set_is_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    m = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    np.savez(tmp_path / "c.npz", input=np.zeros((2, 1, 1, 8, 8), np.float32))
    assert main(["golden", "record", str(m), "--random-input", "-o", str(tmp_path / "g"),
                 "-q"]) == 0
    assert main(["golden", "check", str(tmp_path / "g"), "--calib",
                 str(tmp_path / "c.npz")]) == 1
    assert "only applies to an INT8 set" in capsys.readouterr().err


def test_cli_check_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["golden", "check", str(tmp_path / "nope")]) != 0
    assert "no manifest.json" in capsys.readouterr().err
    m = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    out = tmp_path / "g"
    assert main(["golden", "record", str(m), "--random-input", "-o", str(out), "-q"]) == 0
    assert main(["golden", "check", str(out), "--target", "host"]) == 1
    assert "no golden for target(s) ['host']" in capsys.readouterr().err
    assert main(["golden", "check", str(out / "interp")]) == 1
    assert "single golden folder" in capsys.readouterr().err


def test_help_documents_exit_status(capsys: pytest.CaptureFixture) -> None:
    assert main(["golden", "check", "--help"]) == 0
    text = capsys.readouterr().out
    assert "exit status" in text and "0  every output" in text and "1  a mismatch" in text


def test_cli_two_targets_one_folder_each(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    m = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    out = tmp_path / "g"
    assert main(["golden", "record", str(m), "--random-input", "-o", str(out), "-q",
                 "--target", "interp", "--target", "host"]) == 0
    assert json.loads((out / "manifest.json").read_text())["targets"] == ["interp", "host"]
    assert json.loads((out / "host" / "manifest.json").read_text())["target"] == "host"
    assert main(["golden", "check", str(out), "--target", "host"]) == 0
    assert "(host, f32): ok" in capsys.readouterr().out


def test_cli_record_takes_the_compile_quantisation_options(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture
                                                            ) -> None:
    """--per-tensor-weights, --equalize and --smooth are recorded in the set and replayed by
    check (the recorded calibration says the alpha it was smoothed with)."""
    m = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", input=rng.standard_normal((8, 1, 1, 8, 8)).astype("f4"))
    out = tmp_path / "q8"
    assert main(["golden", "record", str(m), "--random-input", "-o", str(out), "-q",
                 "--calib", str(tmp_path / "calib.npz"), "--per-tensor-weights",
                 "--equalize", "--smooth", "0.5"]) == 0
    opts = json.loads((out / "manifest.json").read_text())["options"]
    assert opts["per_channel"] is False and opts["equalize"] is True and opts["smooth"] == 0.5
    (target,) = [d for d in out.iterdir() if (d / "manifest.json").is_file()]
    assert json.loads((target / "manifest.json").read_text())["calibration"]["smooth"] == 0.5
    assert main(["golden", "check", str(out), "-q"]) == 0


def test_cli_record_stores_the_percentile_and_older_sets_replay_theirs(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--calib-percentile is recorded and replayed; a set recorded before the option existed
    (no calib_percentile in its options) replays with the 99.99 it was calibrated with, so
    its goldens still pass after the default moved to 99.999."""
    m = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", input=rng.standard_normal((8, 1, 1, 8, 8)).astype("f4"))
    calib = str(tmp_path / "calib.npz")
    old, new = tmp_path / "old", tmp_path / "new"
    for out, p in ((old, "99.99"), (new, "99.5")):
        assert main(["golden", "record", str(m), "--random-input", "-o", str(out), "-q",
                     "--calib", calib, "--calib-percentile", p]) == 0
    assert json.loads((new / "manifest.json").read_text())["options"]["calib_percentile"] \
        == 99.5
    assert main(["golden", "check", str(new), "-q"]) == 0
    # the older set: its manifests as written before the percentile was recorded
    man = json.loads((old / "manifest.json").read_text())
    del man["options"]["calib_percentile"]
    (old / "manifest.json").write_text(json.dumps(man))
    target = old / "interp" / "manifest.json"
    rec = json.loads(target.read_text())
    assert rec["calibration"].pop("percentile") == 99.99
    target.write_text(json.dumps(rec))
    assert golden.goldenset.load_options(man["options"]).calib_percentile == 99.99
    capsys.readouterr()
    assert main(["golden", "check", str(old)]) == 0
    assert "calibration changed" not in capsys.readouterr().out
    # and a set that replays with another percentile than it was recorded with fails
    man["options"]["calib_percentile"] = 99.5
    (old / "manifest.json").write_text(json.dumps(man))
    capsys.readouterr()
    assert main(["golden", "check", str(old)]) != 0
    out = capsys.readouterr().out  # (auto's choice may change with the percentile too)
    assert "calibration changed since recording (" in out and "percentile 99.99 -> 99.5" in out


PIPELINE = "fold-constants,quantize{method=mse},dce,layout,fold-layout,tile"


def test_cli_record_with_a_target_file_and_a_pipeline(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    """golden record takes compile's --target-file and --pipeline; the set keeps a copy of the
    chip profile and replays both, so check needs none of the user's files."""
    from targets.profiles.thinker2 import DATA

    m = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", input=rng.standard_normal((4, 1, 1, 8, 8)).astype("f4"))
    chip = json.loads(json.dumps(DATA))
    chip["name"] = "mychip"
    (tmp_path / "chip.json").write_text(json.dumps(chip))
    out = tmp_path / "g"
    assert main(["golden", "record", str(m), "--random-input", "-o", str(out), "-q",
                 "--calib", str(tmp_path / "calib.npz"),
                 "--target-file", str(tmp_path / "chip.json"), "--pipeline", PIPELINE]) == 0
    assert json.loads((out / "manifest.json").read_text())["targets"] == ["mychip"]
    assert json.loads((out / "mychip" / "manifest.json").read_text())["target"] == "mychip"
    (tmp_path / "chip.json").unlink()  # the set holds its own copy
    assert main(["golden", "check", str(out), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [(r["target"], r["passed"]) for r in results] == [("mychip", True)]
    opts = json.loads((out / "manifest.json").read_text())["options"]
    assert opts["pipeline"] == PIPELINE
    assert opts["target_file"] == "target.json" and (out / "target.json").is_file()
    # the profile named like a built-in target is refused (its folder would clash)
    chip["name"] = "thinker2"
    (tmp_path / "chip.json").write_text(json.dumps(chip))
    assert main(["golden", "record", str(m), "--random-input", "-o", str(tmp_path / "g2"),
                 "--calib", str(tmp_path / "calib.npz"),
                 "--target-file", str(tmp_path / "chip.json")]) == 1
    assert "named 'thinker2', like a built-in target" in capsys.readouterr().err


def test_cli_record_with_an_accuracy_budget(tmp_path: Path, capsys: pytest.CaptureFixture
                                            ) -> None:
    """compile's --eval/--min-sqnr reach golden record: the held-out samples are stored in the
    set and the budget replayed by check."""
    m = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), m)
    rng = np.random.default_rng(0)
    for name in ("calib", "held"):
        np.savez(tmp_path / f"{name}.npz",
                 input=rng.standard_normal((4, 1, 1, 8, 8)).astype("f4"))
    out = tmp_path / "g"
    assert main(["golden", "record", str(m), "--random-input", "-o", str(out), "-q",
                 "--calib", str(tmp_path / "calib.npz"), "--eval", str(tmp_path / "held.npz"),
                 "--min-sqnr", "60"]) == 0
    opts = json.loads((out / "manifest.json").read_text())["options"]
    assert opts["min_sqnr_db"] == 60.0 and (out / "eval.npz").is_file()
    for name in ("calib", "held"):
        (tmp_path / f"{name}.npz").unlink()  # the set holds its own copies
    assert main(["golden", "check", str(out), "-q"]) == 0
    assert main(["golden", "record", str(m), "--random-input", "-o", str(tmp_path / "f"),
                 "--eval", str(out / "eval.npz")]) == 1
    assert "applies to INT8 goldens" in capsys.readouterr().err
