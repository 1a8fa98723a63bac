"""Weight ranges (CompileOptions.weight_range): the IR-text before/after of "paired" and
"int7" on a small convolution, and properties of ir.qmath.quantize_weights on random
weights — "paired" always passes the u8 x s8 kernel's pair rule, and its squared error is
never above that of the coarsest level it tries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import golden
from compiler.api import compile_model
from compiler.errors import QnncError
from compiler.examples import build_example
from compiler.options import CompileOptions
from compiler.quant.quantize import QuantConfig, quantize_graph
from ir import qmath
from ir.text import parse_graph, print_graph
from ir.verifier import verify
from targets.c.q8_gemm import quads_fit

CASE = Path(__file__).with_name("cases") / "weight_range.ir"
BEFORE, *CHECKS = CASE.read_text().split("// CHECK ")
RANGES = {"x": (-2.0, 2.0), "y": (-4.0, 4.0)}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.split(":")[0])
def test_weight_range_before_after(check: str) -> None:
    name, after = check.split(":\n", 1)
    q = quantize_graph(parse_graph(BEFORE), RANGES,
                       QuantConfig(bias_correction=False, weight_range=name))
    verify(q)
    want = "\n".join(ln for ln in after.splitlines() if not ln.startswith("//"))
    assert print_graph(q).strip() == want.strip()


def test_unknown_weight_range_is_refused() -> None:
    with pytest.raises(ValueError, match="weight range 'int6'"):
        qmath.quantize_weights(np.ones((2, 3), np.float32), weight_range="int6")


def _error(w: np.ndarray, codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    rows = w.reshape(w.shape[0], -1).astype(np.float64)
    s = np.broadcast_to(scales.astype(np.float64), (rows.shape[0],)).reshape(-1, 1)
    return ((codes.reshape(rows.shape) * s - rows) ** 2).sum(axis=1)


shapes = st.tuples(st.integers(1, 9), st.integers(1, 40))


@settings(max_examples=60, deadline=None)
@given(shapes, st.booleans(), st.integers(0, 2**32 - 1), st.sampled_from([0.05, 1.0, 3.0]))
def test_paired_codes_fit_the_pair_rule(shape: tuple[int, int], per_channel: bool, seed: int,
                                        tail: float) -> None:
    rng = np.random.default_rng(seed)
    # heavy tails (tail > 1) make large same-sign pairs common
    w = (rng.standard_normal(shape) * np.exp(tail * rng.standard_normal(shape))
         ).astype(np.float32)
    codes, scales = qmath.quantize_weights(w, per_channel, None, "paired")
    assert codes.dtype == np.int8 and codes.shape == w.shape
    assert quads_fit(codes.reshape(shape[0], -1))
    assert np.abs(codes).max() <= 127
    # never worse than the coarsest level tried (which needs no pair moved)
    coarse = qmath.PAIRED_LEVELS[-1]
    amax = np.abs(w).max(axis=1) if per_channel and shape[0] > 1 else np.abs(w).max()
    s = np.maximum(np.float32(amax / coarse), np.float32(qmath.MIN_SCALE)).astype(np.float32)
    s = np.atleast_1d(s)
    c = np.clip(np.rint(w / s.reshape(-1, 1)) if s.size > 1 else np.rint(w / s[0]),
                -127, 127)
    got, ref = _error(w, codes, scales), _error(w, c, s)
    # the quantiser compares errors computed in float32: equal within its resolution
    slack = 1e-6 * (w.astype(np.float64) ** 2).sum(axis=1)
    if per_channel and shape[0] > 1:
        assert (got <= ref + slack).all()
    else:
        assert got.sum() <= ref.sum() + slack.sum()


@settings(max_examples=30, deadline=None)
@given(shapes, st.booleans(), st.integers(0, 2**32 - 1))
def test_int7_codes_stay_within_63(shape: tuple[int, int], per_channel: bool,
                                   seed: int) -> None:
    w = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    codes, scales = qmath.quantize_weights(w, per_channel, None, "int7")
    assert np.abs(codes).max() <= 63 and quads_fit(codes.reshape(shape[0], -1))
    # the largest weight of each channel (or of the tensor) lands on 63
    top = np.abs(codes).max(axis=1) if per_channel and shape[0] > 1 else np.abs(codes).max()
    assert (np.asarray(top)[np.asarray(np.abs(w).max(axis=1) if per_channel and shape[0] > 1
                                       else np.abs(w).max()) > 1e-6] == 63).all()


def test_pair_bounded_moves_only_pairs_past_the_limit() -> None:
    codes = np.array([[127, 5, 60, 70, -100, -100, 3, -127, 127]], np.int8)
    got = qmath.pair_bounded(codes, codes.astype(np.float64))
    assert got.tolist() == [[125, 3, 59, 69, -64, -64, 3, -127, 127]]


# -- the default: "auto" ---------------------------------------------------------------------
@pytest.mark.parametrize(("target", "cpu", "want"), [
    ("host", "avx2", "paired"), ("host", "avx512vnni", "int8"), ("host", "generic", "int8"),
    (None, "avx2", "int8"), ("ascend910b", "avx2", "int8"), ("tvm", "avx2", "int8"),
])
def test_auto_is_paired_only_for_avx2_host_code(target: str | None, cpu: str,
                                                want: str) -> None:
    opts = CompileOptions(target=target, cpu=cpu)
    assert opts.weight_range == "auto" and opts.resolved_weight_range() == want
    assert CompileOptions(target=target, cpu=cpu, weight_range="int7"
                          ).resolved_weight_range() == "int7"


def test_the_manifest_and_golden_sets_record_the_weight_range(tmp_path: Path) -> None:
    """A compiled folder says which weight codes it has; a golden set stores "auto" as it
    resolved on the recording machine, so another machine replays the same codes."""
    model = build_example("tiny_cnn")
    calib = {"input": np.random.default_rng(0).standard_normal((4, 1, 1, 8, 8),
                                                               ).astype(np.float32)}
    for weight_range in ("int7", "auto"):
        cm = compile_model(model, calibration=calib, weight_range=weight_range)
        assert cm.calibration is not None
        assert cm.calibration["weight_range"] == ("int7" if weight_range == "int7" else "int8")
    m = tmp_path / "m.onnx"
    onnx.save(model, m)
    opts = golden.GoldenOptions(precision="int8", cpu="avx2", weight_range="auto")
    golden.record_set(m, tmp_path / "g", ["interp", "host"],
                      lambda cm: {"input": np.ones((1, 1, 8, 8), np.float32)}, opts,
                      calibration=calib)
    assert opts.weight_range == "paired"
    stored = [json.loads(p.read_text()) for p in (tmp_path / "g").rglob("manifest.json")]
    assert any(s.get("options", {}).get("weight_range") == "paired" for s in stored)


def test_auto_yields_to_a_pipeline_that_names_its_weight_range() -> None:
    from compiler.pipeline import effective_pipeline

    def quantize_range(**kw: object) -> str:
        passes = effective_pipeline(CompileOptions(precision="int8", cpu="avx2", **kw), None)
        return next(p for p in passes if p.name == "quantize").weight_range  # type: ignore

    text = "fold-constants,quantize{weight-range=int7}"
    assert quantize_range(target="host") == "paired"
    assert quantize_range(target="host", pipeline=text) == "int7"
    with pytest.raises(QnncError, match="give one"):
        quantize_range(target="host", weight_range="paired", pipeline=text)


def test_a_bad_weight_range_is_a_clear_error() -> None:
    with pytest.raises(QnncError, match="weight_range must be one of"):
        compile_model(build_example("tiny_cnn"), weight_range="int4")
