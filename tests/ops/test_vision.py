"""Vision ops imported from one-node ONNX models and run on the interpreter, against
onnx.reference (onnxruntime for MaxRoiPool, which the reference lacks, and MaxUnpool, where
they differ); f32 rtol 1e-4, atol 1e-5."""

from __future__ import annotations

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

from tests.ops.test_conv import check, model_of, rand, run_qnnc

RNG = np.random.default_rng(11)


def grid(*shape: int) -> np.ndarray:
    return RNG.uniform(-1.4, 1.4, shape).astype(np.float32)


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_grid_sample_2d(mode: str, padding_mode: str, align_corners: int) -> None:
    check("GridSample", {"x": rand(2, 3, 5, 4), "g": grid(2, 3, 6, 2)}, {}, opset=20,
          mode=mode, padding_mode=padding_mode, align_corners=align_corners)


@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_grid_sample_3d(mode: str) -> None:
    check("GridSample", {"x": rand(1, 2, 3, 4, 5), "g": grid(1, 2, 3, 2, 3)}, {}, opset=20,
          mode=mode, padding_mode="reflection")


def test_grid_sample_opset16_names() -> None:
    """bicubic (opset 16) is opset 20's cubic (onnx.reference knows only the new names)."""
    feeds = {"x": rand(1, 2, 4, 4), "g": grid(1, 3, 3, 2)}
    old = model_of("GridSample", feeds, {}, opset=16, mode="bicubic", padding_mode="border")
    graph, got = run_qnnc(old, feeds)
    assert graph.nodes[0].attrs["mode"] == "cubic"
    new = model_of("GridSample", feeds, {}, opset=20, mode="cubic", padding_mode="border")
    np.testing.assert_allclose(got[0], ReferenceEvaluator(new).run(None, feeds)[0],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [[2, 3, 4, 5], [2, 1, 3, 2, 4]])
@pytest.mark.parametrize("align_corners", [0, 1])
def test_affine_grid(size: list[int], align_corners: int) -> None:
    nsp = len(size) - 2
    check("AffineGrid", {"theta": rand(2, nsp, nsp + 1)},
          {"size": np.array(size, np.int64)}, opset=20, align_corners=align_corners)


ROIS = np.array([[0.5, 1.0, 6.2, 5.5], [2.0, 0.0, 3.0, 2.5], [-2.0, 1.0, 9.0, 12.0],
                 [3.0, 3.0, 3.2, 3.1]], np.float32)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("ctm", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_roi_align(mode: str, ctm: str, sampling_ratio: int) -> None:
    check("RoiAlign", {"x": rand(2, 3, 8, 7), "rois": ROIS},
          {"b": np.array([1, 0, 1, 0], np.int64)}, opset=16, mode=mode,
          coordinate_transformation_mode=ctm, sampling_ratio=sampling_ratio,
          output_height=3, output_width=2, spatial_scale=0.9)


def test_max_roi_pool_matches_onnxruntime() -> None:
    rois = np.array([[1, 0.4, 1.2, 5.6, 4.4], [0, 2.0, 2.0, 2.0, 3.0], [1, -1, 0, 20, 3]],
                    np.float32)
    check("MaxRoiPool", {"x": rand(2, 3, 6, 7)}, {"rois": rois}, oracle="ort",
          pooled_shape=[2, 3], spatial_scale=0.7)


@pytest.mark.parametrize("with_shape", [False, True])
def test_max_unpool_matches_onnxruntime(with_shape: bool) -> None:
    # indices a 2x2/2 MaxPool of a (1, 2, 4, 5) or (1, 2, 4, 4) input gives (flat into it)
    idx = np.array([[[[6, 8], [11, 18]], [[20, 27], [36, 33]]]] if with_shape else
                   [[[[5, 2], [8, 15]], [[16, 19], [29, 26]]]], np.int64)
    consts = {"i": idx, **({"s": np.array([1, 2, 4, 5], np.int64)} if with_shape else {})}
    check("MaxUnpool", {"x": rand(1, 2, 2, 2)}, consts, oracle="ort", opset=11,
          kernel_shape=[2, 2], strides=[2, 2])


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("group,offset_group", [(1, 1), (2, 2), (1, 2)])
def test_deform_conv(with_mask: bool, group: int, offset_group: int) -> None:
    x, w, b = rand(1, 4, 5, 6), rand(6, 4 // group, 2, 3), rand(6)
    oh, ow = 5, 3  # pads [1, 0, 0, 1], strides [1, 2]
    consts = {"w": w, "off": rand(1, offset_group * 12, oh, ow) * 1.5, "b": b}
    if with_mask:
        consts["mask"] = RNG.random((1, offset_group * 6, oh, ow)).astype(np.float32)
    check("DeformConv", {"x": x}, consts, opset=19, group=group, offset_group=offset_group,
          pads=[1, 0, 0, 1], strides=[1, 2])


@pytest.mark.parametrize("activation", ["none", "swish"])
@pytest.mark.parametrize("with_state", [False, True])
def test_causal_conv_with_state(activation: str, with_state: bool) -> None:
    x, w, b = rand(2, 3, 4), rand(3, 1, 3), rand(3)
    consts = {"w": w, "b": b, **({"past": rand(2, 3, 2)} if with_state else {})}
    graph = check("CausalConvWithState", {"x": x}, consts, n_out=2, opset=27,
                  activation=activation)
    assert graph.nodes[0].attrs["activation"] == ("silu" if activation == "swish" else "none")


def test_causal_conv_with_state_output_only() -> None:
    """A model that does not use present_state still imports (the IR op has both)."""
    feeds = {"x": rand(1, 2, 5)}
    model = model_of("CausalConvWithState", feeds, {"w": rand(2, 1, 3)}, opset=27)
    _, got = run_qnnc(model, feeds)
    np.testing.assert_allclose(got[0], ReferenceEvaluator(model).run(None, feeds)[0],
                               rtol=1e-4, atol=1e-5)
