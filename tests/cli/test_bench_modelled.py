"""`qnnc bench --target <accelerator>`: the modelled latency printed is the cost model's for the
model compiled for that chip (checked against model_cost on the compiled model's tile plans),
with the slowest layers in order, and it is the latency report.txt of the same compile states;
then the staged C that `qnnc run` executes is timed on this CPU, labelled as an emulation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler import api
from compiler.cli import main
from targets.cost import model_cost
from targets.profiles import BUILTIN_TARGETS, load_target
from targets.tiling import TilePlans

ACCELERATORS = [t for t in BUILTIN_TARGETS if t != "host"]
CHAIN = 14  # convolutions in the chain model: more than the ten layers bench lists



def _conv_chain(path: Path) -> Path:
    """x[1,3,16,16] through CHAIN 3x3 convolutions whose widths grow, so their costs differ."""
    rng = np.random.default_rng(0)
    nodes, inits, prev, c = [], [], "x", 3
    for i in range(CHAIN):
        m = 4 + 4 * i
        w = numpy_helper.from_array(rng.standard_normal((m, c, 3, 3)).astype(np.float32),
                                    f"w{i}")
        inits.append(w)
        out = "y" if i == CHAIN - 1 else f"t{i}"
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [out], name=f"conv{i}",
                                      pads=[1, 1, 1, 1]))
        prev, c = out, m
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 16, 16])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _bench(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    code = main(["bench", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _expected(model: Path, target: str) -> TilePlans:
    """The tile plans of ``model`` compiled for ``target`` with the fixture's calibration."""
    cm = api.compile_model(str(model), precision="int8", target=target,
                           calibration=str(model.parent / "calib.npz"))
    return cm.plans()


def _check(out: str, plans: TilePlans, target: str) -> None:
    """The printed totals are the cost model's, and the listed layers are the slowest ones."""
    prof = load_target(target)
    mc = model_cost(plans, prof)
    assert f"{target} staged C emulated on this CPU (not the chip's speed)" in out
    assert f"modelled on {target} ({len(plans)} layers staged on the chip" in out
    host = len(plans.untiled)
    assert f", {host} streamed around them; all in the totals)" in out
    assert ("\nnot tiled " in out) == (host > 0)  # and why they are not tiled
    cycles = re.search(r"latency  ([\d.]+) (ms|us|ns) modelled \((\d+) cycles", out)
    assert cycles is not None, out
    assert int(cycles[3]) == round(mc.cycles)
    scale = {"ms": 1e-3, "us": 1e-6, "ns": 1e-9}[cycles[2]]
    assert float(cycles[1]) * scale == pytest.approx(mc.seconds, rel=1e-3, abs=1e-12)
    util = re.search(r"= ([\d.]+)% utilisation", out)
    assert util is not None and float(util[1]) == pytest.approx(100 * mc.utilisation, abs=0.05)
    mb = re.search(r"off-chip ([\d.]+) MB vs compulsory ([\d.]+) MB", out)
    assert mb is not None
    assert float(mb[1]) == pytest.approx(mc.offchip_bytes / 1e6, abs=5e-4)
    assert float(mb[2]) == pytest.approx(mc.compulsory_bytes / 1e6, abs=5e-4)
    side = "memory" if mc.intensity < prof.int8_tops * 1e12 / prof.offchip.bandwidth \
        else "compute"
    assert f"; {side}-bound (intensity" in out
    table = out.split("layers by modelled time:\n")[1].split("\n\n")[0]  # then the timing
    rows = table.splitlines()[2:]
    every = [(p.node, p.cost) for p in plans] + list(plans.streams.items())  # all layers
    slowest = sorted(every, key=lambda kc: -kc[1].cycles)[:10]
    assert len(rows) == len(slowest)
    for i, (row, (key, cost)) in enumerate(zip(rows, slowest), start=1):
        rank, name, op = row.split()[:3]
        assert (int(rank), name, op) == (i, key, cost.op)
        assert row.rsplit("  ", 1)[-1].strip() == cost.bound


@pytest.mark.parametrize("target", ACCELERATORS)
def test_modelled_latency_is_the_cost_models(tiny: Path, target: str,
                                             capsys: pytest.CaptureFixture) -> None:
    calib = str(tiny.parent / "calib.npz")
    out = _bench([str(tiny), "--target", target, "--calib", calib, "--repeat", "1",
                  "--warmup", "0"], capsys)
    plans = _expected(tiny, target)
    assert any(p.op == "QConv" for p in plans)
    _check(out, plans, target)


def test_only_the_ten_slowest_layers_are_listed(tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    model = _conv_chain(tmp_path / "chain.onnx")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(1).standard_normal(
        (4, 1, 3, 16, 16)).astype(np.float32))
    out = _bench([str(model), "--target", "ascend910b", "--calib", str(tmp_path / "calib.npz"),
                  "--repeat", "1", "--warmup", "0"], capsys)
    plans = _expected(model, "ascend910b")
    assert sum(p.op == "QConv" for p in plans) == CHAIN
    assert "top 10 layers by modelled time:" in out
    _check(out, plans, "ascend910b")


def test_a_compiled_folder_states_what_its_report_states(tiny: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    """One modelled latency per model and chip: bench on the compiled folder, bench on the
    .onnx and the folder's report.txt and report.json agree to the cycle."""
    folder = tiny.parent / "built"
    calib = str(tiny.parent / "calib.npz")
    assert main(["compile", str(tiny), "-o", str(folder), "-q", "--target", "ascend310p",
                 "--calib", calib]) == 0
    capsys.readouterr()
    out = _bench([str(folder), "--repeat", "1", "--warmup", "0"], capsys)
    plans = api.load_compiled(folder).plans()
    _check(out, plans, "ascend310p")
    cycles = round(model_cost(plans, load_target("ascend310p")).cycles)
    assert f"({cycles} cycles)" in (folder / "report.txt").read_text()
    data = json.loads((folder / "report.json").read_text())
    assert round(data["model"]["cycles"]) == cycles
    fresh = _bench([str(tiny), "--target", "ascend310p", "--calib", calib, "--repeat", "1",
                    "--warmup", "0"], capsys)
    assert f"modelled ({cycles} cycles" in fresh


def test_a_folder_compiled_for_another_target_is_refused(tiny: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    folder = tiny.parent / "host_build"
    assert main(["compile", str(tiny), "-o", str(folder), "-q"]) == 0
    assert main(["bench", str(folder), "--target", "ascend310p"]) == 1
    err = capsys.readouterr().err
    assert "compiled for no target, not ascend310p" in err and "--target ascend310p" in err


def test_an_f32_model_on_an_accelerator_asks_for_calibration(tiny: Path,
                                                             capsys: pytest.CaptureFixture
                                                             ) -> None:
    assert main(["bench", str(tiny), "--target", "thinker2"]) != 0
    assert "--calib" in capsys.readouterr().err


def test_without_an_accelerator_target_bench_still_times(tiny: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    out = _bench([str(tiny), "--repeat", "2", "--warmup", "0"], capsys)
    assert "median" in out and "modelled" not in out


def test_unknown_target_is_a_usage_error(tiny: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", str(tiny), "--target", "tpu9000"]) == 1
    err = capsys.readouterr().err
    assert "unknown target 'tpu9000'" in err
    assert all(t in err for t in BUILTIN_TARGETS)


def test_help_shows_a_modelled_example(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert "qnnc bench model.onnx --target mlu370x8 --calib calib.npz" in out
    assert all(t in out for t in ACCELERATORS)


def test_json_modelled_figures_are_the_reports(tiny: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    import json

    from compiler.cli import main

    calib = str(tiny.parent / "calib.npz")
    assert main(["bench", str(tiny), "--target", "mlu370x8", "--calib", calib, "--repeat", "1",
                 "--warmup", "0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (modelled,) = data["modelled"]
    plans = _expected(tiny, "mlu370x8")
    assert [d["name"] for d in modelled["layers"]] == [p.node for p in plans]
    mc = model_cost(plans, load_target("mlu370x8"))
    assert modelled["model"]["cycles"] == pytest.approx(mc.cycles)

