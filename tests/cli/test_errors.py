"""Bad inputs: each gives one clear `qnnc: error:` paragraph, the documented exit code and
never a traceback — both in-process (main(argv)) and as a real `python -m compiler.cli`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from compiler import cli
from compiler.frontend.registry import CONVERTERS
from ir.interpreter import InterpreterError
from ir.verifier import VerifyError
from tests.cli.models import (
    Result,
    assert_one_paragraph_error,
    conv_relu,
    fails_checker,
    run_cli,
    run_subprocess,
    save,
    two_inputs,
    unsupported,
)


@pytest.fixture
def qnnc(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> Callable:
    """Runs the CLI in-process, or as a real process for the tests marked ``both``."""
    if getattr(request, "param", "in-process") == "in-process":
        return lambda argv: run_cli(argv, capsys)
    return run_subprocess


# The commonest mistakes also go through a real process: exit status, stderr, no traceback.
both = pytest.mark.parametrize("qnnc", ["in-process", "subprocess"], indirect=True)


Qnnc = Callable[[list[str]], Result]


def _conv_file(tmp_path: Path) -> Path:
    return save(conv_relu(), tmp_path / "conv.onnx")


@both
def test_truncated_onnx(qnnc: Qnnc, tmp_path: Path) -> None:
    data = conv_relu().SerializeToString()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 2])
    r = qnnc(["inspect", str(p)])
    assert_one_paragraph_error(r, 2, "cut.onnx")


@both
def test_text_file_is_not_onnx(qnnc: Qnnc, tmp_path: Path) -> None:
    p = tmp_path / "notes.onnx"
    p.write_text("this is a shopping list, not a neural network\n" * 20)
    r = qnnc(["run", str(p), "--random-input"])
    assert_one_paragraph_error(r, 2, "notes.onnx")


def test_model_failing_the_checker(qnnc: Qnnc, tmp_path: Path) -> None:
    p = save(fails_checker(), tmp_path / "bad.onnx")
    r = qnnc(["compile", str(p), "-o", str(tmp_path / "out")])
    assert_one_paragraph_error(r, 2, "checker")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["inspect", "run", "compile"])
def test_unsupported_ops_are_all_listed(qnnc: Qnnc, tmp_path: Path, command: str) -> None:
    p = save(unsupported(), tmp_path / "unsup.onnx")
    argv = {
        "inspect": ["inspect", str(p)],
        "run": ["run", str(p), "--random-input"],
        "compile": ["compile", str(p), "-o", str(tmp_path / "out")],
    }[command]
    r = qnnc(argv)
    expected = {"StringNormalizer": ["norm_a", "norm_b"], "RandomUniformLike": ["rnd"]}
    expected = {op: nodes for op, nodes in expected.items() if op not in CONVERTERS}
    expected["com.acme.Frobnicate"] = ["frob"]
    needles = [op for op in expected] + [repr(n) for ns in expected.values() for n in ns]
    assert_one_paragraph_error(r, 3, "qnnc ops", *needles)
    assert "'relu'" not in r.err  # supported nodes are not blamed


@both
def test_missing_model_file(qnnc: Qnnc, tmp_path: Path) -> None:
    r = qnnc(["inspect", str(tmp_path / "nowhere.onnx")])
    assert_one_paragraph_error(r, 2, "nowhere.onnx", "does not exist")


def test_missing_compiled_folder_content(qnnc: Qnnc, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = qnnc(["run", str(tmp_path / "empty"), "--random-input"])
    assert_one_paragraph_error(r, 2, "model.ir", "qnnc compile")


@both
def test_missing_input_file(qnnc: Qnnc, tmp_path: Path) -> None:
    r = qnnc(["run", str(_conv_file(tmp_path)), "--input", str(tmp_path / "absent.npy")])
    assert_one_paragraph_error(r, 4, "absent.npy", "does not exist")


@both
def test_input_of_wrong_shape(qnnc: Qnnc, tmp_path: Path) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 8, 9), np.float32))
    r = qnnc(["run", str(_conv_file(tmp_path)), "--input", str(x)])
    assert_one_paragraph_error(r, 4, "'x'", "[1, 3, 8, 9]", "[1, 3, 8, 8]")


@both
def test_input_of_wrong_dtype(qnnc: Qnnc, tmp_path: Path) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 8, 8), np.int32))
    r = qnnc(["run", str(_conv_file(tmp_path)), "--input", f"x={x}"])
    assert_one_paragraph_error(r, 4, "'x'", "int32", "float32")


@both
def test_unknown_input_name(qnnc: Qnnc, tmp_path: Path) -> None:
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 8, 8), np.float32))
    r = qnnc(["run", str(_conv_file(tmp_path)), "--input", f"image={x}"])
    assert_one_paragraph_error(r, 4, "'image'", "x (f32[1,3,8,8])")


def test_unnamed_npy_for_a_two_input_model(qnnc: Qnnc, tmp_path: Path) -> None:
    p = save(two_inputs(), tmp_path / "two.onnx")
    a = tmp_path / "a.npy"
    np.save(a, np.zeros((2, 3), np.float32))
    r = qnnc(["run", str(p), "--input", str(a)])
    assert_one_paragraph_error(r, 4, "2 inputs", "--input NAME=")


def test_npz_key_that_is_no_input_is_refused(qnnc: Qnnc, tmp_path: Path) -> None:
    f = tmp_path / "feeds.npz"
    np.savez(f, image=np.zeros((1, 3, 8, 8), np.float32))
    r = qnnc(["run", str(_conv_file(tmp_path)), "--input", str(f)])
    assert_one_paragraph_error(r, 4, "['image']", "inputs: x", "numpy.savez")


def test_unnamed_npz_arrays_follow_the_input_order(qnnc: Qnnc, tmp_path: Path) -> None:
    p = save(two_inputs(), tmp_path / "two.onnx")
    f = tmp_path / "feeds.npz"
    np.savez(f, np.ones((2, 3), np.float32), np.full((2, 3), 2, np.float32))
    out = tmp_path / "out.npz"
    r = qnnc(["run", str(p), "--input", str(f), "-o", str(out), "-q"])
    assert r.code == 0, r.err
    with np.load(out) as got:
        np.testing.assert_array_equal(got["y"], np.full((2, 3), 3, np.float32))  # relu(1 + 2)
        np.testing.assert_array_equal(got["z"], np.ones((2, 3), np.float32))  # a is arr_0


def test_nonfinite_input_to_an_int8_model(qnnc: Qnnc, tmp_path: Path) -> None:
    from compiler.api import compile_model

    src = _conv_file(tmp_path)
    rng = np.random.default_rng(0)
    calib = [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(4)]
    folder = tmp_path / "q"
    compile_model(str(src), precision="int8", calibration=calib).save(folder)
    x = tmp_path / "x.npy"
    bad = np.zeros((1, 3, 8, 8), np.float32)
    bad[0, 1, 2, 3] = np.nan
    bad[0, 0, 0, 0] = np.inf
    np.save(x, bad)
    r = qnnc(["run", str(folder), "--input", str(x)])
    assert_one_paragraph_error(r, 4, "'x'", "2 NaN or infinite", "--allow-nonfinite")
    r = qnnc(["run", str(folder), "--input", str(x), "--allow-nonfinite", "-q"])
    assert r.code == 0, r.err
    # the f32 model passes NaN through, as onnxruntime does: no error there
    r = qnnc(["run", str(src), "--input", str(x), "-q"])
    assert r.code == 0, r.err


def test_corrupt_npy(qnnc: Qnnc, tmp_path: Path) -> None:
    x = tmp_path / "x.npy"
    x.write_bytes(b"\x93NUMPY garbage")
    r = qnnc(["run", str(_conv_file(tmp_path)), "--input", str(x)])
    assert_one_paragraph_error(r, 4, "x.npy")


@both
def test_symbolic_dimension_needs_input_shape(qnnc: Qnnc, tmp_path: Path) -> None:
    p = save(conv_relu(batch="N"), tmp_path / "dyn.onnx")
    r = qnnc(["run", str(p), "--random-input"])
    assert_one_paragraph_error(r, 3, "'N'", "--input-shape x=1x3x8x8")
    ok = qnnc(["run", str(p), "--random-input", "--input-shape", "x=2x3x8x8"])
    assert ok.code == 0, ok.err
    assert "[2,4,8,8]" in ok.out


def test_bad_input_shape_spec(qnnc: Qnnc, tmp_path: Path) -> None:
    p = save(conv_relu(batch="N"), tmp_path / "dyn.onnx")
    r = qnnc(["inspect", str(p), "--input-shape", "x=1xthreex8x8"])
    assert_one_paragraph_error(r, 1, "1xthreex8x8")
    r = qnnc(["inspect", str(p), "--input-shape", "nosuch=1x3x8x8"])
    assert_one_paragraph_error(r, 3, "nosuch", "'x'")


def test_usage_error_exits_1(qnnc: Qnnc) -> None:
    r = qnnc(["run"])
    assert r.code == 1
    assert "usage:" in r.err and "Traceback" not in r.err


def test_a_mistyped_choice_is_one_paragraph_with_a_suggestion(qnnc: Qnnc, tmp_path: Path
                                                               ) -> None:
    r = qnnc(["compile", str(tmp_path / "m.onnx"), "--target", "ascend91b"])
    assert r.code == 1 and "usage:" not in r.err
    assert "did you mean 'ascend910b'?" in r.err and "qnnc compile --help" in r.err
    assert len(r.err.strip().splitlines()) == 2
    r = qnnc(["compile", str(tmp_path / "m.onnx"), "--calib-method", "percentil"])
    assert "did you mean 'percentile'?" in r.err
    r = qnnc(["compile", str(tmp_path / "m.onnx"), "--target", "zzz"])
    assert "did you mean" not in r.err and "the targets are: host, " in r.err


def test_target_names_ignore_case(qnnc: Qnnc, tmp_path: Path) -> None:
    """ATC users write Ascend910B: the parser accepts it as ascend910b (the model file is
    then what fails, with exit 2, not the target name)."""
    r = qnnc(["compile", str(tmp_path / "missing.onnx"), "--target", "Ascend910B",
              "-o", str(tmp_path / "out")])
    assert "invalid choice" not in r.err and r.code == 2 and "missing.onnx" in r.err


def test_failed_compile_leaves_no_output_folder(qnnc: Qnnc, tmp_path: Path) -> None:
    p = save(unsupported(), tmp_path / "unsup.onnx")
    out = tmp_path / "build" / "model"
    r = qnnc(["compile", str(p), "-o", str(out)])
    assert r.code == 3
    assert not out.exists()
    assert not (tmp_path / "build").exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["unsup.onnx"]


def test_refuses_to_overwrite_a_foreign_folder(qnnc: Qnnc, tmp_path: Path) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    r = qnnc(["compile", str(_conv_file(tmp_path)), "-o", str(out)])
    assert_one_paragraph_error(r, 1, "precious", "refusing to overwrite", "--force")
    assert sorted(f.name for f in out.iterdir()) == ["thesis.tex"]


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    r = run_subprocess(["--debug", "inspect", str(tmp_path / "nowhere.onnx")])
    assert r.code != 0
    assert "Traceback" in r.err and "ModelLoadError" in r.err
    r = run_subprocess(["inspect", "--debug", str(tmp_path / "nowhere.onnx")])
    assert "Traceback" in r.err


@pytest.mark.parametrize(
    ("exc", "code", "needle"),
    [
        (KeyboardInterrupt(), 130, "interrupted"),
        (PermissionError(13, "Permission denied", "/root/x"), 1, "Permission denied '/root/x'"),
        (VerifyError("node #3 (Relu): reads %v before it is defined"), 1, "bug in qnnc"),
        (InterpreterError("node 'n' (Div) failed: boom"), 1, "running the model failed"),
    ],
)
def test_other_failures_are_one_paragraph(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    exc: BaseException, code: int, needle: str,
) -> None:
    def explode(args: object) -> int:
        raise exc

    monkeypatch.setattr(cli, "cmd_ops", explode)
    assert_one_paragraph_error(run_cli(["ops"], capsys), code, needle)
    with pytest.raises(type(exc)):
        cli.main(["ops", "--debug"])
