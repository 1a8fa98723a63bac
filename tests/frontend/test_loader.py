"""Loading ONNX files: clear errors for bad files, external data confined to the model's folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.errors import ConversionError, ModelLoadError, UnsupportedModelError
from compiler.frontend import load
from compiler.frontend.importer import import_model
from compiler.frontend.loader import load_onnx


def _add_model(shape: list[int | str] | None = None) -> onnx.ModelProto:
    shape = shape or [2, 3]
    b = numpy_helper.from_array(np.arange(3, dtype=np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["y"], name="add0")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [b],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_missing_empty_truncated_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_onnx(tmp_path / "nope.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        load_onnx(tmp_path / "empty.onnx")
    good = _add_model().SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelLoadError, match="not"):
        load_onnx(tmp_path / "cut.onnx")
    (tmp_path / "text.onnx").write_text("hello, I am not a model\n")
    with pytest.raises(ModelLoadError, match="not"):
        load_onnx(tmp_path / "text.onnx")


def test_checker_failure_is_reported(tmp_path: Path) -> None:
    m = _add_model()
    m.graph.node[0].input[0] = "undefined_value"
    p = tmp_path / "bad.onnx"
    p.write_bytes(m.SerializeToString())
    with pytest.raises(ModelLoadError, match="checker"):
        load_onnx(p)


def test_symbolic_dimension_needs_input_shape(tmp_path: Path) -> None:
    p = tmp_path / "sym.onnx"
    onnx.save(_add_model(["N", 3]), p)
    with pytest.raises(ConversionError, match="--input-shape x="):
        load(p)
    g = load(p, {"x": (4, 3)})
    assert g.inputs[0].type.shape == (4, 3)
    with pytest.raises(ConversionError, match="fixes a dimension"):
        load(p, {"x": (4, 5)})
    with pytest.raises(ConversionError, match="inputs are"):
        load(p, {"nope": (4, 3)})


def _relu_model(shape: list[int | str | None]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu0")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_minus_one_and_empty_dims_are_symbolic(tmp_path: Path) -> None:
    """paddle2onnx writes -1 for "any size" and leaves dimensions empty; both are symbolic."""
    p = tmp_path / "paddle.onnx"
    onnx.save(_relu_model([-1, 3, 48, None]), p)
    assert load_onnx(p).graph.input[0].type.tensor_type.shape.dim[0].dim_value == -1
    g = load(p, {"x": (1, 3, 48, 192)})
    assert g.inputs[0].type.shape == (1, 3, 48, 192)
    with pytest.raises(ConversionError, match="fixes a dimension to 48"):
        load(p, {"x": (1, 3, 32, 192)})
    with pytest.raises(ConversionError, match=r"'-1'.*--input-shape x=1x3x48x<W> "):
        load(p)


@pytest.mark.parametrize(
    ("shape", "suggested"),
    [
        (["N", 3, "height", "width"], "1x3x<height>x<width>"),
        (["p2o.DynamicDimension.0", 3, None, "p2o.DynamicDimension.1"], "1x3x<H>x<W>"),
        (["batch", "sequence"], "1x<sequence>"),
        (["sequence_length", 576], "1x576"),
        ([2, "p2o.Dim.1", 128], "2x<d1>x128"),
        (["n"], "<n>"),
    ],
)
def test_symbolic_dimension_suggestion_keeps_static_dims(
    tmp_path: Path, shape: list[int | str | None], suggested: str
) -> None:
    p = tmp_path / "sym.onnx"
    onnx.save(_relu_model(shape), p)
    with pytest.raises(ConversionError) as e:
        load(p)
    assert f"--input-shape x={suggested} " in str(e.value)


def test_unsupported_ops_reported_together() -> None:
    m = _add_model()
    m.graph.node.extend([
        helper.make_node("RandomUniformLike", ["y"], ["d1"], name="rnd_a"),
        helper.make_node("RandomUniformLike", ["y"], ["d2"], name="rnd_b"),
        helper.make_node("StringSplit", ["y"], ["u"], name="uniq"),
    ])
    with pytest.raises(UnsupportedModelError) as e:
        import_model(m)
    msg = str(e.value)
    assert "RandomUniformLike: 2 node(s)" in msg and "'rnd_a'" in msg and "'rnd_b'" in msg
    assert "StringSplit" in msg and "'uniq'" in msg


def _external_model(tmp_path: Path, location: str) -> Path:
    m = _add_model()
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    p = tmp_path / "model" / "ext.onnx"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(m.SerializeToString())
    return p


def test_external_data_loads_from_model_folder(tmp_path: Path) -> None:
    p = _external_model(tmp_path, "weights.bin")
    (p.parent / "weights.bin").write_bytes(np.arange(3, dtype=np.float32).tobytes())
    g = load(p)
    np.testing.assert_array_equal(g.constants[0].data, np.arange(3, dtype=np.float32))


@pytest.mark.parametrize("loc", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_cannot_escape_model_folder(tmp_path: Path, loc: str) -> None:
    (tmp_path / "secret.bin").write_bytes(b"\0" * 12)
    p = _external_model(tmp_path, loc)
    with pytest.raises(ModelLoadError, match="outside the model's folder|absolute path"):
        load_onnx(p)


def test_missing_external_file(tmp_path: Path) -> None:
    p = _external_model(tmp_path, "gone.bin")
    with pytest.raises(ModelLoadError, match="missing"):
        load_onnx(p)


def test_output_names_survive_identity_and_constants() -> None:
    m = _add_model()
    m.graph.node.append(helper.make_node("Identity", ["x"], ["x_copy"], name="id"))
    m.graph.output.append(helper.make_tensor_value_info("x_copy", TensorProto.FLOAT, [2, 3]))
    g = import_model(m)
    assert [v.name for v in g.outputs] == ["y", "x_copy"]


def test_output_folded_to_a_constant_keeps_its_name() -> None:
    shape = helper.make_node("Shape", ["x"], ["y"], name="shape")
    graph = helper.make_graph(
        [shape], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [2])],
    )
    g = import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert [v.name for v in g.outputs] == ["y"]
    from ir.interpreter import run

    np.testing.assert_array_equal(run(g, {"x": np.zeros((2, 3), np.float32)})["y"], [2, 3])
