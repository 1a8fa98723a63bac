"""Damaged model files: each is one clear error with the documented exit
code, never a traceback — tensors whose bytes disagree with their dims, element types ONNX
does not define, text that is not UTF-8, and external data the loader must read itself."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.api import compile_model
from compiler.errors import ModelLoadError, UnsupportedModelError
from compiler.frontend.importer import import_model
from compiler.frontend.loader import check_model, load_onnx
from tests.cli.models import assert_one_paragraph_error, run_cli

X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])


def _add(b: onnx.TensorProto, x: onnx.ValueInfoProto = X) -> onnx.ModelProto:
    graph = helper.make_graph([helper.make_node("Add", ["x", "b"], ["y"], name="add0")],
                              "g", [x], [Y], [b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _bias() -> onnx.TensorProto:
    return numpy_helper.from_array(np.arange(3, dtype=np.float32), "b")


def _damaged(model: onnx.ModelProto, old: bytes, new: bytes) -> bytes:
    """The serialised model with one byte string replaced by another of the same length."""
    assert len(old) == len(new)
    raw = model.SerializeToString()
    assert raw.count(old) == 1
    return raw.replace(old, new)


def test_raw_data_longer_than_dims_names_the_initializer(tmp_path: Path) -> None:
    b = _bias()
    b.raw_data += b"123"  # 15 bytes for 3 floats: numpy would fail to reshape
    p = tmp_path / "m.onnx"
    onnx.save(_add(b), p)
    with pytest.raises(ModelLoadError, match=r"initializer 'b' declares \[3\] FLOAT \(12 "
                       r"bytes\) but holds 15 bytes"):
        import_model(load_onnx(p))


def test_raw_data_of_a_constant_attribute_is_checked_too() -> None:
    t = numpy_helper.from_array(np.arange(4, dtype=np.int64), "c")
    t.raw_data += b"\0" * 8
    node = helper.make_node("Constant", [], ["b"], name="const0", value=t)
    graph = helper.make_graph([node, helper.make_node("Add", ["x", "b"], ["y"])], "g", [X], [Y])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelLoadError, match="attribute 'value' declares"):
        import_model(m)


def test_unknown_element_type_in_initializer_and_input(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    b = _bias()
    b.data_type = 999
    with pytest.raises(UnsupportedModelError, match="999 \\(not an ONNX type\\)"):
        import_model(_add(b))
    x999 = helper.make_tensor_value_info("x", 999, [2, 3])
    p = tmp_path / "x999.onnx"
    onnx.save(_add(_bias(), x999), p)
    r = run_cli(["inspect", str(p)], capsys)
    assert_one_paragraph_error(r, 3, "input 'x'", "999")
    assert "x: 999 (not an onnx type)[2,3]" in r.out  # the summary before the error


@pytest.mark.parametrize("old,new,field", [
    (b"PRODUCE", b"PR\xff\xfeUCE", "model.producer_name"),
    (b"add0", b"ad\xff0", "model.graph.node[0].name"),
    (b"Add", b"A\xffd", "model.graph.node[0].op_type"),
    (b"DOCSTR", b"DO\xffSTR", "model.graph.doc_string"),
])
def test_text_that_is_not_utf8_is_a_load_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              old: bytes, new: bytes, field: str) -> None:
    m = _add(_bias())
    m.producer_name, m.graph.doc_string = "PRODUCE", "DOCSTR"
    p = tmp_path / "m.onnx"
    p.write_bytes(_damaged(m, old, new))
    r = run_cli(["inspect", str(p)], capsys)
    assert_one_paragraph_error(r, 2, field, "not valid UTF-8")


def test_in_memory_model_with_bytes_text_is_checked() -> None:
    m = onnx.ModelProto()
    m.ParseFromString(_damaged(_add(_bias()), b"add0", b"ad\xff0"))
    with pytest.raises(ModelLoadError, match="not valid UTF-8"):
        check_model(m, "the model")


def _external(tmp_path: Path) -> onnx.ModelProto:
    """The Add model saved with its bias in data.bin; returns the model without its data."""
    onnx.save(_add(_bias()), tmp_path / "m.onnx", save_as_external_data=True,
              location="data.bin", size_threshold=0)
    return onnx.load(tmp_path / "m.onnx", load_external_data=False)


def _set_location(m: onnx.ModelProto, key: str, value: str) -> None:
    entries = m.graph.initializer[0].external_data
    for e in entries:
        if e.key == key:
            e.value = value
            return
    entries.add(key=key, value=value)


def test_symlink_inside_the_model_folder_is_read(tmp_path: Path) -> None:
    m = _external(tmp_path)
    (tmp_path / "weights").mkdir()
    os.replace(tmp_path / "data.bin", tmp_path / "weights" / "data.bin")
    (tmp_path / "link.bin").symlink_to("weights/data.bin")
    _set_location(m, "location", "link.bin")
    onnx.save(m, tmp_path / "linked.onnx")
    (y,) = compile_model(tmp_path / "linked.onnx").run(None, {"x": np.zeros((2, 3),
                                                                               np.float32)})
    np.testing.assert_array_equal(y, np.tile(np.arange(3, dtype=np.float32), (2, 1)))


def test_symlink_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    m = _external(model_dir)
    os.replace(model_dir / "data.bin", tmp_path / "outside.bin")
    (model_dir / "data.bin").symlink_to(tmp_path / "outside.bin")
    onnx.save(m, model_dir / "m2.onnx")
    with pytest.raises(ModelLoadError, match="outside the model's folder"):
        load_onnx(model_dir / "m2.onnx")


@pytest.mark.parametrize("key,value,needle", [
    ("location", "data\0.bin", "NUL character"),
    ("offset", "100", "which has 12 bytes"),
    ("length", "13", "which has 12 bytes"),
    ("offset", "-4", "not a byte count"),
])
def test_bad_external_data_fields(tmp_path: Path, key: str, value: str, needle: str) -> None:
    m = _external(tmp_path)
    _set_location(m, key, value)
    onnx.save(m, tmp_path / "bad.onnx")
    with pytest.raises(ModelLoadError, match=needle):
        load_onnx(tmp_path / "bad.onnx")
