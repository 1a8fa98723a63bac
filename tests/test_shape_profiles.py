"""The shape-profile syntax (compiler/shape_profiles.py): what each spelling expands to, and
the errors for specs that contradict the model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.errors import ConversionError, InputError, QnncError
from compiler.shape_profiles import InputSig, expand, pick, profile_text

IMG = [InputSig("x", "f32", ("N", 3, "H", "W"))]
PAIR = [InputSig("a", "f32", (1, "seq", 8)), InputSig("b", "f32", (1, "seq", 8))]
OPEN = [InputSig("x", "f32", (None, 3, None, None))]


def test_one_shape_is_one_profile() -> None:
    assert expand("x=1x3x32x32", IMG) == [{"x": (1, 3, 32, 32)}]
    assert expand({"x": (1, 3, 32, 32)}, IMG) == [{"x": (1, 3, 32, 32)}]
    assert expand(None, IMG) == []


def test_alternatives_per_dimension_and_whole_shapes() -> None:
    want = [{"x": (1, 3, 48, w)} for w in (160, 320, 640)]
    assert expand("x=1x3x48x160|320|640", IMG) == want
    assert expand({"x": (1, 3, 48, [160, 320, 640])}, IMG) == want
    assert expand({"x": [(1, 3, 48, 160), (1, 3, 48, 320), (1, 3, 48, 640)]}, IMG) == want
    two = expand("x=1x3x640x640,1x3x960x960", OPEN)
    assert two == [{"x": (1, 3, 640, 640)}, {"x": (1, 3, 960, 960)}]


def test_ranges_and_named_dimensions() -> None:
    assert [p["a"][1] for p in expand("seq=16..128:*2", PAIR)] == [16, 32, 64, 128]
    assert [p["b"][1] for p in expand("seq=16..64:+16", PAIR)] == [16, 32, 48, 64]
    assert expand({"seq": [1, 8]}, PAIR) == [{"a": (1, 1, 8), "b": (1, 1, 8)},
                                             {"a": (1, 8, 8), "b": (1, 8, 8)}]


def test_shared_dimension_keeps_consistent_combinations() -> None:
    got = expand(["a=1x4|8x8", "b=1x4|8x8"], PAIR)
    assert got == [{"a": (1, 4, 8), "b": (1, 4, 8)}, {"a": (1, 8, 8), "b": (1, 8, 8)}]
    with pytest.raises(ConversionError, match="shared by several inputs"):
        expand("a=1x4x8,b=1x8x8", PAIR)


def test_alternatives_one_by_one() -> None:
    got = expand("x=1x3x32x32;x=2x3x64x48", IMG)
    assert got == [{"x": (1, 3, 32, 32)}, {"x": (2, 3, 64, 48)}]
    assert expand([{"x": (1, 3, 8, 8)}, {"x": (1, 3, 16, 16)}], IMG) == [
        {"x": (1, 3, 8, 8)}, {"x": (1, 3, 16, 16)}]


def test_old_comma_spelling_of_one_shape() -> None:
    assert expand("x=1,3,224,224", IMG) == [{"x": (1, 3, 224, 224)}]


@pytest.mark.parametrize("spec, err, match", [
    ("x=1x4x32x32", ConversionError, "fixes dimension 1"),
    ("x=1x3x32", ConversionError, "rank 3"),
    ("y=1x3x32x32", ConversionError, "neither an input"),
    ("x=1x3x32x0", QnncError, "not a size"),
    ("x=1x3x32x64..16", QnncError, "must go up"),
    ("x=1x3x32xW", QnncError, "not a size"),
    ("x=1x3x32x32,x=1x3x8x8", QnncError, "twice"),
    ("x=1x3x1..100x1..100", QnncError, "more than 64 profiles"),
])
def test_bad_specs(spec: str, err: type[Exception], match: str) -> None:
    with pytest.raises(err, match=match):
        expand(spec, IMG)


def test_a_dimension_left_open_is_named_with_a_suggestion() -> None:
    sig = [PAIR[0], InputSig("c", "f32", (1, "other", 8))]
    with pytest.raises(ConversionError, match=r"--input-shape c=1x<other>x8"):
        expand("a=1x4x8", sig)


def test_pick_exact_padded_and_refused() -> None:
    profiles = expand("x=1x3x48x160|320|640", IMG)
    assert pick(profiles, {"x": (1, 3, 48, 320)}, pad=False) == (1, False)
    assert pick(profiles, {"x": (1, 3, 48, 200)}, pad=True) == (1, True)
    assert pick(profiles, {"x": (1, 3, 48, 161)}, pad=True) == (1, True)
    with pytest.raises(InputError, match="match none of the model's 3 shape profiles") as e:
        pick(profiles, {"x": (1, 3, 48, 200)}, pad=False)
    assert "x=1x3x48x160; x=1x3x48x320; x=1x3x48x640" in str(e.value)
    with pytest.raises(InputError, match="no profile is at least as large"):
        pick(profiles, {"x": (1, 3, 48, 700)}, pad=True)


@given(st.lists(st.integers(1, 64), min_size=1, max_size=5, unique=True),
       st.lists(st.integers(1, 9), min_size=1, max_size=3, unique=True))
def test_product_of_dimension_lists(widths: list[int], heights: list[int]) -> None:
    spec = f"x=1x3x{'|'.join(map(str, heights))}x{'|'.join(map(str, widths))}"
    got = expand(spec, IMG)
    assert got == [{"x": (1, 3, h, w)} for h in heights for w in widths]
    for k, prof in enumerate(got):  # every profile is found by its own shape
        assert pick(got, prof, pad=False) == (k, False)
        assert expand(profile_text(prof), IMG) == [prof]


def test_question_mark_dims_are_unknown_not_one_name() -> None:
    from onnx import TensorProto, helper

    from compiler.shape_profiles import signature

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, "?", "?"])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    sig = signature(helper.make_model(g))
    assert sig[0].dims == (None, 3, None, None)
    assert expand({"x": (1, 3, 48, 192)}, sig) == [{"x": (1, 3, 48, 192)}]
