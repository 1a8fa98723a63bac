"""manifest.json records how a model was quantised: its precision and, when qnnc calibrated
it, the method and the calibration samples' count and sha256 — the same hash for the same
samples whichever form they were given in, another for other samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx

from compiler import api
from compiler.examples import build_example


def _model(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.onnx"
    onnx.save(build_example("tiny_cnn"), p)
    return p


def test_manifest_records_precision_and_calibration(tmp_path: Path) -> None:
    m = _model(tmp_path)
    x = np.random.default_rng(0).standard_normal((6, 1, 1, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "c.npz", input=x)
    api.compile_model(str(m), calibration=str(tmp_path / "c.npz"), output_dir=tmp_path / "a")
    api.compile_model(str(m), calibration=[{"input": s} for s in x],
                      calib_method="minmax", output_dir=tmp_path / "b")
    api.compile_model(str(m), calibration=[{"input": s} for s in x[:5]],
                      output_dir=tmp_path / "c")
    api.compile_model(str(m), output_dir=tmp_path / "f")
    man = {k: json.loads((tmp_path / k / "manifest.json").read_text()) for k in "abcf"}
    assert man["a"]["precision"] == "int8" and man["f"]["precision"] == "f32"
    assert "calibration" not in man["f"]
    a, b, c = (man[k]["calibration"] for k in "abc")
    assert (a["method"], a["samples"]) == ("auto", 6) and b["method"] == "minmax"
    assert a["chosen"] in ("percentile", "entropy") and "chosen" not in b
    assert a["samples_sha256"] == b["samples_sha256"]  # the same samples, another form
    assert c["samples"] == 5 and c["samples_sha256"] != a["samples_sha256"]
    assert api.load_compiled(tmp_path / "a").calibration == a


def test_shape_profiles_record_it_too(tmp_path: Path) -> None:
    from compiler.examples import build_example as build

    proto = build("tiny_cnn")
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "n"
    m = tmp_path / "sym.onnx"
    onnx.save(proto, m)
    rng = np.random.default_rng(1)
    samples = [{"input": rng.standard_normal((n, 1, 8, 8)).astype(np.float32)}
               for n in (1, 2, 1, 2)]
    cm = api.compile_model(str(m), input_shapes="input=1|2x1x8x8", calibration=samples,
                           output_dir=tmp_path / "p")
    man = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert man["precision"] == "int8" and man["calibration"]["samples"] == 4
    assert api.load_compiled(tmp_path / "p").calibration == cm.calibration
