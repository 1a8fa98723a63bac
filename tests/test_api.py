"""The Python API: load, compile, run, save and reload; every user mistake is a QnncError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from compiler import api
from compiler.api import CompiledModel, compile_model, load_compiled, load_model
from compiler.errors import (
    ConversionError,
    InputError,
    ModelLoadError,
    QnncError,
    UnsupportedModelError,
)
from compiler.io import parse_input_shape, parse_shape, random_inputs, read_inputs
from compiler.options import CompileOptions
from compiler.passes import PASSES, Pass, register
from ir.graph import Graph
from ir.types import DType, TensorType
from tests.cli.models import conv_reference, conv_relu, save, two_inputs, unsupported

A = np.array([[1, -2, 3], [-4, 5, -6]], np.float32)
B = np.full((2, 3), 0.5, np.float32)


def test_load_model_from_proto_and_path(tmp_path: Path) -> None:
    g1 = load_model(two_inputs())
    g2 = load_model(save(two_inputs(), tmp_path / "m.onnx"))
    assert g1 == g2
    assert [n.op for n in g1.nodes] == ["Add", "Relu", "Identity"]
    with pytest.raises(QnncError, match="ModelProto"):
        load_model(42)  # type: ignore[arg-type]


def test_load_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "missing.onnx")
    with pytest.raises(UnsupportedModelError, match="StringNormalizer"):
        load_model(unsupported())
    with pytest.raises(ConversionError, match="--input-shape x=1x3x8x8"):
        load_model(conv_relu(batch="N"))
    g = load_model(conv_relu(batch="N"), input_shapes={"x": (3, 3, 8, 8)})
    assert g.inputs[0].type == TensorType((3, 3, 8, 8), DType.f32)


def test_run_like_onnxruntime() -> None:
    cm = compile_model(two_inputs())
    assert isinstance(cm, CompiledModel)
    assert (cm.input_names, cm.output_names) == (["a", "b"], ["y", "z"])
    y, z = cm.run(None, {"a": A, "b": B})
    np.testing.assert_array_equal(y, np.maximum(A + B, 0))
    np.testing.assert_array_equal(z, A)
    (z_only,) = cm.run(["z"], {"a": A, "b": B})
    np.testing.assert_array_equal(z_only, A)
    # float64 data is converted to the model's float32
    (y64,) = cm.run(["y"], {"a": A.astype(np.float64), "b": B})
    assert y64.dtype == np.float32
    np.testing.assert_array_equal(y64, y)


def test_conv_matches_onnxruntime() -> None:
    model = conv_relu()
    x = np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32)
    (got,) = compile_model(model).run(None, {"x": x})
    np.testing.assert_allclose(got, conv_reference(x, model), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("feeds", "pattern"),
    [
        ({"a": A}, r"missing input\(s\) \['b'\]"),
        ({"a": A, "b": B, "c": B}, r"unknown input name\(s\) \['c'\].*a \(f32\[2,3\]\)"),
        ({"a": A, "b": B[:1]}, r"'b' has shape \[1, 3\].*\[2, 3\]"),
        ({"a": A, "b": B.astype(np.int64)}, r"'b' has dtype int64.*float32"),
        ({"a": A, "b": B > 0}, r"'b' has dtype bool"),
        ({"a": A, "b": np.array([["x"] * 3] * 2)}, r"'b' has dtype <U1"),
    ],
)
def test_bad_feeds_raise_input_error(feeds: dict, pattern: str) -> None:
    cm = compile_model(two_inputs())
    with pytest.raises(InputError, match=pattern):
        cm.run(None, feeds)


def test_bad_output_name_and_feed_container() -> None:
    cm = compile_model(two_inputs())
    with pytest.raises(InputError, match=r"unknown output name\(s\) \['w'\]"):
        cm.run(["w"], {"a": A, "b": B})
    with pytest.raises(InputError, match="dict"):
        cm.run(None, [A, B])  # type: ignore[arg-type]


def test_integer_inputs_accept_fitting_ints_only() -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.INT8, [3])
    y = helper.make_tensor_value_info("y", TensorProto.INT8, [3])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    cm = compile_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    (out,) = cm.run(None, {"x": np.array([-5, 0, 7], np.int64)})
    assert out.dtype == np.int8 and out.tolist() == [0, 0, 7]
    with pytest.raises(InputError, match="int64.*int8"):
        cm.run(None, {"x": np.array([-5, 0, 300], np.int64)})  # 300 would wrap around


def test_save_and_load_compiled_roundtrip(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "er" / "m"
    cm = compile_model(save(conv_relu(), tmp_path / "m.onnx"), output_dir=out)
    assert sorted(f.name for f in out.iterdir()) == ["manifest.json", "model.ir", "model.ir.npz"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["qnnc_version"] == api.qnnc_version()
    assert manifest["outputs"] == [
        {"name": "y", "type": "f32[1,4,8,8]", "shape": [1, 4, 8, 8], "dtype": "float32"}
    ]
    assert manifest["pipeline"] == cm.pipeline
    again = load_compiled(out)
    assert again.graph == cm.graph
    x = np.random.default_rng(4).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(again.run(None, {"x": x})[0], cm.run(None, {"x": x})[0])


def test_load_compiled_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_compiled(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no model.ir"):
        load_compiled(tmp_path / "empty")
    bad = tmp_path / "bad"
    compile_model(two_inputs(), output_dir=bad)
    (bad / "model.ir").write_text("graph @g( this is not IR")
    with pytest.raises(ModelLoadError, match="model.ir"):
        load_compiled(bad)


def test_failed_save_leaves_nothing(tmp_path: Path) -> None:
    def boom(folder: Path) -> None:
        (folder / "half.txt").write_text("half")
        raise RuntimeError("disk on fire")

    target = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError, match="disk on fire"):
        api.write_folder_atomically(target, boom)
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    compile_model(two_inputs(), output_dir=out)
    before = (out / "model.ir").read_text()

    def boom(folder: Path) -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        api.write_folder_atomically(out, boom)
    assert (out / "model.ir").read_text() == before
    assert [f.name for f in tmp_path.iterdir()] == ["out"]


def test_refuses_to_overwrite_foreign_folder_or_file(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    (tmp_path / "file").write_text("keep")
    for name in ("mine", "file"):
        with pytest.raises(QnncError, match="refusing to (overwrite|replace)"):
            compile_model(two_inputs(), output_dir=tmp_path / name)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    assert (tmp_path / "file").read_text() == "keep"


def test_unknown_pass_names() -> None:
    with pytest.raises(QnncError, match="unknown pass"):
        compile_model(two_inputs(), disabled_passes=["no-such-pass"])
    with pytest.raises(QnncError, match="unknown pass"):
        compile_model(two_inputs(), print_after=["no-such-pass"])


def test_print_after_calls_the_hook() -> None:
    pipeline = api.default_pipeline()
    if not pipeline:
        pytest.skip("the passes package is not present in this checkout")
    seen: list[tuple[str, str]] = []
    cm = compile_model(conv_relu(), print_after=["all"], on_print=lambda p, t: seen.append((p, t)))
    assert [p for p, _ in seen] == pipeline == cm.pipeline
    assert all("Conv(" in t for _, t in seen)
    skipped = compile_model(conv_relu(), disabled_passes=[pipeline[0]])
    assert pipeline[0] not in skipped.pipeline


def test_io_helpers(tmp_path: Path) -> None:
    assert parse_shape("1x3x224x224") == (1, 3, 224, 224) == parse_shape("1,3,224,224")
    assert parse_input_shape("a=b=2x2") == ("a=b", (2, 2))
    for bad in ("1x0", "x", "1xx2"):
        with pytest.raises(QnncError):
            parse_shape(bad)
    np.savez(tmp_path / "one.npz", arr_0=A)
    assert list(read_inputs([str(tmp_path / "one.npz")], ["a"])) == ["a"]
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(InputError, match=r"\.npy"):
        read_inputs([str(tmp_path / "x.txt")], ["a"])
    r = random_inputs({"f": TensorType((2, 2), DType.f16), "i": TensorType((3,), DType.i64),
                       "b": TensorType((4,), DType.bool)}, seed=5)
    assert [(v.dtype.name, v.shape) for v in r.values()] == [
        ("float16", (2, 2)), ("int64", (3,)), ("bool", (4,))
    ]
    assert 0 <= r["i"].min() and r["i"].max() < 10


@pytest.fixture
def test_passes() -> Iterator[list[str]]:
    """Two registered passes, "one" and "two", that record their runs in the yielded log."""
    log: list[str] = []

    def make(pass_name: str) -> type[Pass]:
        @dataclass(frozen=True)
        class Recorder(Pass):
            name = pass_name
            description = f"test only: records that {pass_name} ran"

            def run(self, graph: Graph) -> Graph:
                log.append(self.name)
                return graph

        return register(Recorder)

    make("one"), make("two")
    yield log
    PASSES.pop("one"), PASSES.pop("two")


def test_pipeline_options_reach_the_pass_manager(test_passes: list[str]) -> None:
    log, printed = test_passes, []
    cm = compile_model(two_inputs(), pipeline="one,two", print_after=["all"],
                       on_print=lambda p, t: printed.append(p))
    assert log == printed == cm.pipeline == ["one", "two"]
    log.clear(), printed.clear()
    cm = compile_model(two_inputs(), pipeline=["one", "two"], disabled_passes=["one"],
                       print_after=["all"], on_print=lambda p, t: printed.append(p))
    assert log == printed == cm.pipeline == ["two"]
    log.clear()
    assert compile_model(two_inputs(), pipeline="two,two").pipeline == ["two", "two"]
    with pytest.raises(QnncError, match="(?s)unknown pass.*'three'.*one, quantize, .*two"):
        compile_model(two_inputs(), print_after=["three"])


def test_one_options_object_or_keywords() -> None:
    calib = {"a": A[None], "b": B[None]}
    by_object = compile_model(two_inputs(), CompileOptions(precision="int8", calibration=calib))
    by_keywords = compile_model(two_inputs(), precision="int8", calibration=calib)
    assert by_object.graph == by_keywords.graph
    assert by_object.pipeline[-1] == "quantize"
    # calibration data alone means int8, as the CLI's --calib does
    assert compile_model(two_inputs(), calibration=calib).pipeline[-1] == "quantize"
    with pytest.raises(QnncError, match="unknown compile option.*'calib'"):
        compile_model(two_inputs(), calib="c.npz")
    with pytest.raises(QnncError, match="applies to precision int8; drop one"):
        compile_model(two_inputs(), precision="f32", calibration=calib)


def test_cli_print_after_headers(test_passes: list[str], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from compiler.cli import main

    p = save(two_inputs(), tmp_path / "m.onnx")
    assert main(["compile", str(p), "-o", str(tmp_path / "o"), "--pipeline", "one,two",
                 "--print-after", "two"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "// ----- IR after two -----"
    assert "Add(" in err and "after one" not in err
