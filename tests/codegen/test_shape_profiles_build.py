"""Models compiled for several shape profiles, end to end: one folder and one module whose
weights are stored once, run() picking the profile, calibration over mixed shapes, the
standalone bundle, an accelerator's per-profile tiles, counters and report, and the errors."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import compiler
from compiler.errors import ConversionError, InputError
from targets.host.cpu import detect_level

WIDTHS = (8, 16)


def _conv_model(path: Path) -> Path:
    """x[N,3,H,W] -> Conv 3x3 -> Relu -> GlobalAveragePool -> Flatten -> Gemm: a net whose
    image size is symbolic, with trained-looking (fixed-seed) weights."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(8) * 0.1).astype(np.float32)
    fc = (rng.standard_normal((4, 8)) * 0.5).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1),
    ]
    g = helper.make_graph(
        nodes, "symbolic_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (b, "b"), (fc, "fc"))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, path)
    return path


def _image(w: int, seed: int, h: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, h, w)).astype(np.float32)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _conv_model(tmp_path_factory.mktemp("prof") / "net.onnx")


@pytest.fixture(scope="module")
def calib() -> list[dict[str, np.ndarray]]:
    # widths of both profiles and one in between: calibration runs each at its own shape
    return [{"x": _image(w, s)} for s, w in enumerate((8, 12, 16, 8, 16))]


SPEC = "x=1x3x8x8|16"


def test_f32_profiles_match_onnxruntime(model: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    for target in (None, "host"):
        cm = compiler.compile_model(model, input_shapes=SPEC, target=target)
        assert [p["x"] for p in cm.profiles] == [(1, 3, 8, 8), (1, 3, 8, 16)]
        for k, w in enumerate(WIDTHS):
            x = _image(w, 10 + k)
            (got,) = cm.run(None, {"x": x})
            assert cm.last_profile == k
            np.testing.assert_allclose(got, sess.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_int8_profiles_bit_exact_and_weights_stored_once(model: Path, calib: list,
                                                         tmp_path: Path) -> None:
    # the same weight codes for both (the host's default on an AVX2 CPU: paired)
    interp = compiler.compile_model(model, input_shapes=SPEC, calibration=calib,
                                    weight_range="paired")
    host = compiler.compile_model(model, input_shapes=SPEC, calibration=calib, target="host",
                                  output_dir=tmp_path / "q", weight_range="paired")
    for k, w in enumerate(WIDTHS):
        x = _image(w, 20 + k)
        np.testing.assert_array_equal(host.run(None, {"x": x})[0], interp.run(None, {"x": x})[0])
    # one calibration for every profile: the same weight codes and activation scales
    a, b = (v.graph for v in host.variants)
    conv_a = next(n for n in a.nodes if n.name == "conv")
    conv_b = next(n for n in b.nodes if n.name == "conv")
    assert conv_a.outputs[0].type.quant == conv_b.outputs[0].type.quant
    assert np.array_equal(conv_a.inputs[1].data, conv_b.inputs[1].data)
    # weights stored once: no array depends on the shape
    arrays = re.findall(r"const \w+ (w_\w+)\[", (tmp_path / "q" / "weights.c").read_text())
    # (the batch-1 fully connected layer on AVX-512 VNNI: int8 quads, else int16 pairs)
    fc = "w_fc_packed_u8s8" if detect_level() == "avx512vnni" else "w_fc_packed"
    assert sorted(arrays) == ["w_conv_bias_zp", "w_conv_packed_u8s8", "w_fc_bias_zp", fc]
    # the folder: one IR per profile, one blob file, a manifest listing the profiles
    folder = tmp_path / "q"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [p["shapes"]["x"] for p in manifest["profiles"]] == [[1, 3, 8, 8], [1, 3, 8, 16]]
    assert (folder / "profile_0.ir").is_file() and (folder / "profile_1.ir").is_file()
    again = compiler.load_compiled(folder)
    x = _image(16, 30)
    np.testing.assert_array_equal(again.run(None, {"x": x})[0], host.run(None, {"x": x})[0])


def test_unknown_shape_is_refused_unless_padding_was_asked(model: Path, calib: list) -> None:
    cm = compiler.compile_model(model, input_shapes=SPEC, calibration=calib)
    with pytest.raises(InputError, match=r"match none of the model's 2 shape profiles "
                                         r"\(x=1x3x8x8; x=1x3x8x16\)"):
        cm.run(None, {"x": _image(12, 0)})
    padded = compiler.compile_model(model, input_shapes=SPEC, calibration=calib,
                                    pad_to_profile=True)
    x = _image(12, 1)
    (got,) = padded.run(None, {"x": x})
    assert padded.last_profile == 1
    wide = np.zeros((1, 3, 8, 16), np.float32)
    wide[..., :12] = x
    np.testing.assert_array_equal(got, padded.run(None, {"x": wide})[0])


def test_calibration_folder_of_mixed_shapes(model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "calib"
    folder.mkdir()
    for k, w in enumerate((8, 10, 16)):
        np.save(folder / f"s{k}.npy", _image(w, k))
    cm = compiler.compile_model(model, input_shapes=SPEC, calibration=folder)
    assert len(cm.variants) == 2
    np.save(folder / "s3.npy", np.zeros((1, 4, 8, 8), np.float32))  # 4 channels: not allowed
    with pytest.raises(InputError, match=r"s3.npy.*does not allow"):
        compiler.compile_model(model, input_shapes=SPEC, calibration=folder)


def test_profile_contradicting_the_model(model: Path) -> None:
    with pytest.raises(ConversionError, match="fixes dimension 1"):
        compiler.compile_model(model, input_shapes="x=1x4x8x8|16")


def test_cli_compile_run_and_bundle(model: Path, calib: list, tmp_path: Path) -> None:
    np.savez(tmp_path / "c.npz", x=np.stack([c["x"] for c in calib if c["x"].shape[3] == 8]))
    out = tmp_path / "b"
    r = subprocess.run(["qnnc", "compile", str(model), "-o", str(out), "--input-shape", SPEC,
                        "--calib", str(tmp_path / "c.npz"), "--target", "host", "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    np.save(tmp_path / "x.npy", _image(12, 3))
    r = subprocess.run(["qnnc", "run", str(out), "--input", str(tmp_path / "x.npy")],
                       capture_output=True, text=True)
    assert r.returncode == 4 and "x=1x3x8x8; x=1x3x8x16" in r.stderr
    assert "Traceback" not in r.stderr
    x = _image(16, 4)
    np.save(tmp_path / "x16.npy", x)
    r = subprocess.run(["qnnc", "run", str(out), "--input", str(tmp_path / "x16.npy"),
                        "--output", str(tmp_path / "y.npz")], capture_output=True, text=True)
    assert r.returncode == 0 and "shape profile 1" in r.stdout, r.stderr
    y = np.load(tmp_path / "y.npz")["y"]
    # the standalone bundle: make, then main -p 1 gives the module's bytes
    subprocess.run(["make", "-s", "model_main"], cwd=out, check=True, capture_output=True)
    x.tofile(tmp_path / "in.bin")
    subprocess.run([str(out / "model_main"), "-p", "1", str(tmp_path / "in.bin"),
                    str(tmp_path / "out.bin")], check=True)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out.bin", np.float32).reshape(y.shape),
                                  y)


def test_accelerator_profiles_have_their_own_tiles_counters_and_report(
        model: Path, calib: list, tmp_path: Path) -> None:
    from targets.staged.plans import modelled_counters

    cm = compiler.compile_model(model, input_shapes=SPEC, calibration=calib,
                                target="ascend910b", output_dir=tmp_path / "a")
    interp = compiler.compile_model(model, input_shapes=SPEC, calibration=calib)
    for k, w in enumerate(WIDTHS):
        v = cm.variants[k]
        x = _image(w, 40 + k)
        v.reset_counters()
        np.testing.assert_array_equal(cm.run(None, {"x": x})[0], interp.run(None, {"x": x})[0])
        counters = v.counters()
        plans = v.plans()
        assert plans and all({c: n for c, n in counters[p.node].items() if n}
                             == modelled_counters(p) for p in plans)
    macs = [sum(p.problem.macs for p in v.plans()) for v in cm.variants]
    assert macs[0] < macs[1]  # each profile is tiled for its own shape
    text = (tmp_path / "a" / "report.txt").read_text()
    assert "shape profile 0: x=1x3x8x8" in text and "shape profile 1: x=1x3x8x16" in text
    data = json.loads((tmp_path / "a" / "report.json").read_text())
    assert [p["shapes"] for p in data["profiles"]] == ["x=1x3x8x8", "x=1x3x8x16"]


def test_inspect_shows_symbolic_dims(model: Path) -> None:
    r = subprocess.run(["qnnc", "inspect", str(model)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "x: float[N,3,H,W]" in r.stdout and "--input-shape x=1x3x<H>x<W>" in r.stdout
    r = subprocess.run(["qnnc", "inspect", str(model), "--input-shape", SPEC],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "x=1x3x8x16" in r.stdout


def test_cli_errors_name_the_profile_problem(model: Path, tmp_path: Path) -> None:
    def qnnc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["qnnc", *args], capture_output=True, text=True)

    r = qnnc("compile", str(model), "-o", str(tmp_path / "o"), "--input-shape",
             "x=1x4x8x8|16")
    assert r.returncode == 3 and "fixes dimension 1" in r.stderr and "Traceback" not in r.stderr
    folder = tmp_path / "mixed"
    folder.mkdir()
    np.save(folder / "a.npy", _image(8, 0))
    np.save(folder / "b.npy", np.zeros((1, 3, 8), np.float32))
    r = qnnc("compile", str(model), "-o", str(tmp_path / "o"), "--input-shape", SPEC,
             "--calib", str(folder))
    assert r.returncode == 4 and "b.npy" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()
