"""calibrate() over a small IR graph: a range for every float tensor, equal to the true extremes
for min/max, inside them for the clipping methods, bounded memory and progress reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compiler.errors import InputError, QnncError
from compiler.quant import METHODS, Calibrator, calibrate, quant_params
from ir import DType, Graph, TensorType, make_node
from ir.interpreter import run


def _graph() -> Graph:
    """x -> Conv(+bias) -> Relu -> Add(z) -> MatMul -> ArgMax (an i64 output, not observed)."""
    rng = np.random.default_rng(0)
    g = Graph("small")
    x = g.add_input("x", TensorType((1, 3, 8, 8), DType.f32))
    z = g.add_input("z", TensorType((1, 4, 8, 8), DType.f32))
    w = g.add_const(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = g.add_const(rng.standard_normal(4).astype(np.float32), "b")
    m = g.add_const(rng.standard_normal((8, 5)).astype(np.float32), "m")
    attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1]}
    conv = make_node(g, "Conv", [x, w, b], attrs, name="conv").outputs[0]
    relu = make_node(g, "Relu", [conv], name="relu").outputs[0]
    add = make_node(g, "Add", [relu, z], name="add").outputs[0]
    mm = make_node(g, "MatMul", [add, m], name="mm").outputs[0]
    arg = make_node(g, "ArgMax", [mm], {"axis": 3}, name="argmax").outputs[0]
    g.outputs = [mm, arg]
    return g


def _samples(n: int, seed: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32),
            "z": rng.uniform(-1, 2, (1, 4, 8, 8)).astype(np.float32),
        }
        for _ in range(n)
    ]


FLOAT_TENSORS = {"x", "z", "conv", "relu", "add", "mm"}


def _true_extremes(g: Graph, samples: list[dict[str, np.ndarray]]) -> dict[str, tuple]:
    seen: dict[str, list[np.ndarray]] = {}
    for s in samples:
        for name, value in run(g, s, keep=True).items():
            seen.setdefault(name, []).append(value)
    return {n: (min(float(v.min()) for v in vs), max(float(v.max()) for v in vs))
            for n, vs in seen.items()}


def test_minmax_gives_every_float_tensor_its_true_extremes() -> None:
    g, samples = _graph(), _samples(12)
    ranges = calibrate(g, samples, "minmax")
    assert set(ranges) == FLOAT_TENSORS  # no constants, no i64 ArgMax output
    truth = _true_extremes(g, samples)
    for name, (lo, hi) in ranges.items():
        tlo, thi = truth[name]
        assert (lo, hi) == (min(tlo, 0.0), max(thi, 0.0)), name
    assert ranges["relu"][0] == 0.0 and ranges["relu"][1] > 0


@pytest.mark.parametrize("method", METHODS)
def test_every_method_ranges_every_float_tensor_within_the_extremes(method: str) -> None:
    g, samples = _graph(), _samples(8)
    ranges = calibrate(g, samples, method, percentile=99.0)
    assert set(ranges) == FLOAT_TENSORS
    truth = _true_extremes(g, samples)
    for name, (lo, hi) in ranges.items():
        tlo, thi = truth[name]
        assert min(tlo, 0.0) <= lo <= 0.0 <= hi <= max(thi, 0.0), (method, name)
        assert hi - lo > 0, (method, name)
        for scheme in ("u8", "i8", "i8sym"):
            scale, _ = quant_params(lo, hi, scheme)
            assert np.isfinite(scale) and scale > 0
    if method == "percentile":  # 1% of the values clipped: strictly inside the extremes
        assert ranges["add"][1] < truth["add"][1] and ranges["add"][0] > truth["add"][0]
    # the graph output keeps its raw extremes whatever the method (raw_range_values)
    assert ranges["mm"] == (min(truth["mm"][0], 0.0), max(truth["mm"][1], 0.0)), method


def test_symmetric_calibration_changes_the_percentiles() -> None:
    g, samples = _graph(), _samples(4)
    asym = calibrate(g, samples, "percentile", percentile=99.0)
    sym = calibrate(g, samples, "percentile", percentile=99.0, symmetric=True)
    # z ~ U(-1, 2): the tails give about (-0.97, 1.97); 99% of |z| is about 1.94 on both sides
    assert asym["z"][0] == pytest.approx(-0.97, abs=0.05)
    zmin = min(float(s["z"].min()) for s in samples)
    assert sym["z"][0] == zmin  # -1.94 clamped to the observed minimum
    assert sym["z"][1] == pytest.approx(1.94, abs=0.05)


def test_progress_reports_each_sample() -> None:
    g, samples = _graph(), _samples(5)
    calls: list[tuple[int, int | None]] = []
    calibrate(g, samples, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 5) for k in range(1, 6)]
    calls.clear()
    calibrate(g, iter(samples), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, None) for k in range(1, 6)]


def test_memory_does_not_grow_with_the_number_of_samples() -> None:
    g = _graph()
    for method in METHODS:
        cal = Calibrator(g, method)
        sizes = []
        for k, s in enumerate(_samples(60, seed=2)):
            cal.feed({n: a * (1 + k / 4) for n, a in s.items()})  # ranges keep growing
            sizes.append(cal.state_nbytes())
        assert cal.samples == 60
        assert len(set(sizes)) == 1, (method, sizes[0], sizes[-1])
        assert sizes[0] < 2 * 6 * 2 * 2048 * 8 + 4096  # 6 tensors x two 2048-bin histograms


def test_data_from_an_npz_file(tmp_path: Path) -> None:
    g, samples = _graph(), _samples(6)
    np.savez(tmp_path / "c.npz", **{n: np.stack([s[n] for s in samples]) for n in ("x", "z")})
    assert calibrate(g, tmp_path / "c.npz", "minmax") == calibrate(g, samples, "minmax")


def test_errors() -> None:
    g = _graph()
    with pytest.raises(QnncError, match="unknown calibration method 'kl'"):
        calibrate(g, _samples(1), "kl")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no samples"):
        calibrate(g, [])
    bad = _samples(3)
    bad[2]["z"] = bad[2]["z"][..., :4]
    with pytest.raises(InputError, match="sample 2: input 'z' has shape"):
        calibrate(g, bad)


def test_a_failing_op_is_reported_as_an_input_error() -> None:
    g = Graph("lookup")
    idx = g.add_input("idx", TensorType((3,), DType.i64))
    table = g.add_const(np.arange(8, dtype=np.float32).reshape(4, 2), "table")
    g.outputs = make_node(g, "Gather", [table, idx], {"axis": 0}, name="rows").outputs
    assert calibrate(g, [{"idx": np.array([0, 3, 1])}]) == {"rows": (0.0, 7.0)}
    with pytest.raises(InputError, match="sample 1: running the float model failed"):
        calibrate(g, [{"idx": np.array([0, 3, 1])}, {"idx": np.array([0, 9, 1])}])


def test_constant_data_is_refused() -> None:
    """A lone all-zero sample, or samples in which every input is one value, would give
    ranges of a single point: an InputError (exit 4) naming the inputs and their value. One
    constant input next to a varying one is fine (a flag, an initial state)."""
    g = _graph()
    zero = {"x": np.zeros((1, 3, 8, 8), np.float32), "z": np.zeros((1, 4, 8, 8), np.float32)}
    for data in ([zero], [zero, zero],
                 [{k: np.full_like(v, 0.5) for k, v in zero.items()}] * 3):
        with pytest.raises(InputError, match="calibration data is constant") as e:
            calibrate(g, data)
        assert e.value.exit_code == 4 and "'x'" in str(e.value) and "'z'" in str(e.value)
    varied = [{"x": s["x"], "z": zero["z"]} for s in _samples(2)]
    assert calibrate(g, varied)["x"][1] > 0
