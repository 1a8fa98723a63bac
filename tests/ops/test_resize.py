"""Resize (every ONNX form), Upsample, DepthToSpace and SpaceToDepth against onnx.reference
(onnxruntime for the forms the reference cannot run), plus the canonical IR they import to."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from compiler.errors import ConversionError
from compiler.frontend.importer import import_model
from tests.ops.test_conv import check, model_of, rand, run_qnnc

F32 = np.float32


def resize(x: np.ndarray, scales: list[float] | None = None, sizes: list[int] | None = None,
           roi: list[float] | None = None, opset: int = 19, oracle: str = "reference",
           **attrs: Any) -> None:
    consts = {
        "roi": None if roi is None else np.array(roi, F32),
        "scales": None if scales is None else np.array(scales, F32),
        "sizes": None if sizes is None else np.array(sizes, np.int64),
    }
    check("Resize", {"x": x}, consts, opset=opset, oracle=oracle, **attrs)


COORDS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
          "asymmetric"]


@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"])
@pytest.mark.parametrize("scales", [[1, 1, 2.5, 1.5], [1, 1, 0.6, 0.75]])
def test_nearest(coord: str, nearest_mode: str, scales: list[float]) -> None:
    resize(rand(1, 2, 5, 6), scales=scales, mode="nearest",
           coordinate_transformation_mode=coord, nearest_mode=nearest_mode)


@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("sizes", [[2, 3, 9, 4], [2, 3, 3, 11], [2, 3, 1, 5]])
def test_linear_and_cubic(coord: str, mode: str, sizes: list[int]) -> None:
    resize(rand(2, 3, 6, 7), sizes=sizes, mode=mode, coordinate_transformation_mode=coord)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [[1, 1, 0.4, 0.7], [1, 1, 1.6, 0.3]])
def test_antialias(mode: str, scales: list[float]) -> None:
    resize(rand(1, 2, 10, 11), scales=scales, mode=mode, antialias=1)


@pytest.mark.parametrize("scales", [[1, 1, 0.7, 1.8], [1, 1, 2.0, 0.5]])
def test_cubic_exclude_outside(scales: list[float]) -> None:
    resize(rand(1, 1, 6, 6), scales=scales, mode="cubic", cubic_coeff_a=-0.5,
           exclude_outside=1)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_tf_crop_and_resize(mode: str) -> None:
    resize(rand(1, 1, 7, 8), sizes=[1, 1, 4, 5], roi=[0, 0, -0.2, 0.3, 1, 1, 0.6, 1.3],
           mode=mode, coordinate_transformation_mode="tf_crop_and_resize",
           extrapolation_value=7.5)


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
@pytest.mark.parametrize("axes", [[2, 3], [3, 2], [1, 3]])
def test_sizes_with_axes_and_aspect_policy(policy: str, axes: list[int]) -> None:
    resize(rand(1, 4, 6, 5), sizes=[9, 3], mode="nearest", axes=axes,
           keep_aspect_ratio_policy=policy)


def test_negative_axes_mean_the_same_axes() -> None:
    x = rand(1, 4, 6, 5)
    graphs = [import_model(model_of("Resize", {"x": x}, {
        "roi": None, "scales": None, "sizes": np.array([9, 3], np.int64)}, axes=axes))
        for axes in ([-1, 1], [3, -3])]
    assert graphs[0] == graphs[1]
    assert graphs[0].outputs[0].type.shape == (1, 3, 6, 9)


def test_scales_with_axes() -> None:
    resize(rand(1, 2, 4, 5), scales=[1.5, 2.0], axes=[3, 2], mode="linear")


def test_opset_11_form_with_empty_roi_and_scales() -> None:
    x = rand(1, 2, 4, 4)
    check("Resize", {"x": x}, {"roi": np.array([], F32), "scales": np.array([], F32),
                               "sizes": np.array([1, 2, 7, 3], np.int64)},
          opset=11, mode="linear")


def test_opset_10_nearest_rounds_like_upsample() -> None:
    x = rand(1, 1, 4, 6)
    check("Resize", {"x": x}, {"scales": np.array([1, 1, 2.0, 1.5], F32)}, opset=10,
          oracle="onnxruntime")  # onnx.reference only runs opset >= 11 Resize
    check("Resize", {"x": x}, {"scales": np.array([1, 1, 0.5, 0.7], F32)}, opset=10,
          oracle="onnxruntime")
    check("Resize", {"x": x}, {"scales": np.array([1, 1, 1.5, 0.5], F32)}, opset=10,
          oracle="onnxruntime", mode="linear")


def test_resize_integer_input() -> None:
    x = np.random.default_rng(2).integers(0, 256, (1, 1, 4, 5)).astype(np.uint8)
    resize(x, scales=[1, 1, 1.75, 0.8], mode="linear")


def test_upsample_opset9_and_opset7() -> None:
    x = rand(1, 2, 3, 4)
    check("Upsample", {"x": x}, {"scales": np.array([1, 1, 2, 3], F32)}, opset=9)
    model = model_of("Upsample", {"x": x}, {}, opset=7, scales=[1.0, 1.0, 3.0, 2.0])
    (got,) = run_qnnc(model, {"x": x})[1]
    np.testing.assert_array_equal(got, x.repeat(3, axis=2).repeat(2, axis=3))


def test_upsample_linear() -> None:
    check("Upsample", {"x": rand(1, 2, 3, 4)}, {"scales": np.array([1, 1, 2.5, 2], F32)},
          opset=9, mode="linear", oracle="onnxruntime")


def test_resize_ir_is_canonical() -> None:
    model = model_of("Resize", {"x": rand(1, 1, 4, 4)},
                     {"roi": None, "scales": np.array([2, 1.5], F32)}, axes=[2, 3],
                     mode="nearest", cubic_coeff_a=-0.5, exclude_outside=1)
    (node,) = import_model(model).nodes
    assert node.attrs["sizes"] == [1, 1, 8, 6]
    assert node.attrs["scales"] == [1.0, 1.0, 2.0, 1.5]
    # attributes nearest mode never reads stay at their defaults
    assert node.attrs["cubic_coeff_a"] == -0.75 and node.attrs["exclude_outside"] is False
    assert node.attrs["roi"] == []


def test_runtime_scales_are_rejected() -> None:
    x = rand(1, 1, 2, 2)
    model = model_of("Resize", {"x": x, "roi": np.zeros(8, F32),
                                "scales": np.array([1, 1, 2, 2], F32)}, {})
    with pytest.raises(ConversionError, match="known at compile time"):
        import_model(model)


@pytest.mark.parametrize("op", ["DepthToSpace", "SpaceToDepth"])
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("blocksize", [2, 3])
def test_block_rearrangement(op: str, mode: str, blocksize: int) -> None:
    shape = (2, 36, 2, 3) if op == "DepthToSpace" else (2, 2, 6, 12)
    check(op, {"x": rand(*shape)}, {}, opset=13 if op == "DepthToSpace" else 28,
          mode=mode, blocksize=blocksize)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_space_to_depth_inverts_depth_to_space(mode: str) -> None:
    x = rand(1, 8, 3, 5)
    up = model_of("DepthToSpace", {"x": x}, {}, blocksize=2, mode=mode, opset=28)
    (y,) = run_qnnc(up, {"x": x})[1]
    down = model_of("SpaceToDepth", {"y": y}, {}, blocksize=2, mode=mode, opset=28)
    (back,) = run_qnnc(down, {"y": y})[1]
    np.testing.assert_array_equal(back, x)
