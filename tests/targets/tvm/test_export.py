"""The tvm target for other machines: target names and JSON, cross-built libraries for
aarch64 and riscv64 (the ELF's machine and the model's kernel symbols checked, since no board
runs them here), the C source bundle built with make and run bit-exact, CUDA where nvcc is."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ir.errors import QnncError
from targets.tvm.targets import NAMED, TvmTarget, is_tvm, parse

TVM = importlib.util.find_spec("tvm") is not None
needs_tvm = pytest.mark.skipif(not TVM, reason="needs Apache TVM (pip install 'qnnc[tvm]')")


def test_target_names() -> None:
    assert parse("tvm") == TvmTarget("host") and parse("tvm").runs_here
    a = parse("tvm:aarch64")
    assert (a.kind, a.arch, a.runs_here) == ("llvm", "aarch64", False)
    assert parse("tvm:riscv64").arch == "riscv64" and parse("tvm:c").kind == "c"
    assert parse("tvm:cuda").kind == "cuda" and parse("tvm:cuda").arch is None
    own = parse('tvm:{"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}')
    assert own.arch == "aarch64" and own.label.startswith('tvm:{"kind": "llvm"')
    assert is_tvm("tvm") and is_tvm("tvm:c") and not is_tvm("host") and not is_tvm(None)
    assert set(NAMED) >= {"aarch64", "riscv64", "cuda", "c"}


@pytest.mark.parametrize("text, message", [
    ("tvm:mips", "unknown tvm target 'mips'"),
    ("tvm:{kind: llvm}", "not valid JSON"),
    ('tvm:{"kind": "vulkan"}', 'whose "kind" is one of llvm, c, cuda'),
    ('tvm:["llvm"]', "unknown tvm target"),
    ('tvm:{"mtriple": "aarch64-linux-gnu"}', 'whose "kind" is one of'),
    ('tvm:{"kind": "llvm", "mtriple": "mips-linux-gnu"}', "cannot link for"),
])
def test_bad_targets_are_named(text: str, message: str) -> None:
    with pytest.raises(QnncError, match=message):
        parse(text)


@pytest.fixture(scope="module")
def int8_graph():  # noqa: ANN201 - ir.graph.Graph, imported lazily
    """The tiny CNN quantised, its outputs the integer logits (the Dequantize dropped), so
    every output can be compared exactly."""
    from compiler.api import compile_model
    from compiler.examples import build_example
    from ir.verifier import verify

    model = build_example("tiny_cnn")
    name = model.graph.input[0].name
    rng = np.random.default_rng(0)
    calib = [{name: rng.standard_normal((1, 1, 8, 8)).astype(np.float32)} for _ in range(8)]
    g = compile_model(model, precision="int8", calibration=calib).graph
    last = next(n for n in g.nodes if n.op == "Dequantize" and n.outputs[0] in g.outputs)
    g.outputs = [last.operand("x") if last.operand("x") is not None else last.inputs[0]]
    g.nodes.remove(last)
    verify(g)
    return g, name, rng.standard_normal((1, 1, 8, 8)).astype(np.float32)


@needs_tvm
@pytest.mark.parametrize("arch", ["aarch64", "riscv64"])
def test_cross_built_library(int8_graph, arch: str, tmp_path: Path) -> None:  # noqa: ANN001
    pytest.importorskip("ziglang", reason="cross-linking needs ziglang (in 'qnnc[tvm]')")
    from targets.tvm.export import export
    from targets.tvm.toolchains import elf_info

    g, _, _ = int8_graph
    build = export(g, parse(f"tvm:{arch}"), tmp_path)
    info = elf_info(tmp_path / "model_tvm.so")
    assert info.arch == arch
    kernels = {s for s in info.symbols if s.startswith("__tvm_ffi_k")}
    assert len(kernels) == len(g.nodes)  # one kernel per node, named after it
    assert "__tvm_ffi__library_bin" in info.symbols  # the packed Relax VM program
    sig = json.loads((tmp_path / "tvm_signature.json").read_text())
    assert [i["name"] for i in sig["inputs"]] == [v.name for v in g.inputs]
    compile((tmp_path / "run_model.py").read_text(), "run_model.py", "exec")  # valid Python
    with pytest.raises(QnncError, match=f"runs on {arch} hardware.*run_model.py"):
        build.load().Session(0).run([], {})


@needs_tvm
@pytest.mark.skipif(shutil.which("make") is None or shutil.which("cc") is None,
                    reason="needs make and a C compiler")
def test_c_bundle_builds_with_make_and_runs_exactly(int8_graph, tmp_path: Path) -> None:  # noqa: ANN001
    from ir.interpreter import run
    from targets.tvm.export import export, load_c_build

    g, name, x = int8_graph
    export(g, parse("tvm:c"), tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"Makefile", "model_tvm_lib.c",
                                                    "model_tvm_devc.c"}
    got = load_c_build(tmp_path).Session(0).run([g.outputs[0].name], {name: x})[0]
    want = run(g, {name: x})[g.outputs[0].name]
    assert got.dtype == want.dtype and got.dtype.kind in "iu"
    np.testing.assert_array_equal(got, want)


@needs_tvm
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs NVIDIA's nvcc (CUDA toolkit)")
def test_cuda_build(int8_graph, tmp_path: Path) -> None:  # noqa: ANN001
    from targets.tvm.api import require_tvm
    from targets.tvm.export import export

    g, name, x = int8_graph
    build = export(g, parse("tvm:cuda"), tmp_path)
    assert (tmp_path / "model_tvm.so").stat().st_size > 0
    if not require_tvm().cuda(0).exist:
        with pytest.raises(QnncError, match="runs on a CUDA GPU"):
            build.load().Session(0).run([], {})
        pytest.skip("built; no CUDA GPU on this machine to run it")
    from ir.interpreter import run

    got = build.load().Session(0).run([g.outputs[0].name], {name: x})[0]
    np.testing.assert_array_equal(got, run(g, {name: x})[g.outputs[0].name])


@needs_tvm
def test_a_second_compile_reuses_the_build(int8_graph, tmp_path: Path) -> None:  # noqa: ANN001
    from compiler.api import compile_model
    from targets.host.cache import cache_info, clear_cache

    g, name, x = int8_graph
    first = compile_model(g, target="tvm:c", cache_dir=tmp_path)
    second = compile_model(g, target="tvm:c", cache_dir=tmp_path)
    assert not first.build.cache_hit and second.build.cache_hit
    assert first.build.folder == second.build.folder
    host = compile_model(g, target="tvm", cache_dir=tmp_path)  # another target: its own
    assert host.build.folder != first.build.folder and not host.build.cache_hit
    assert cache_info(tmp_path).builds == 2
    assert clear_cache(tmp_path).builds == 2 and cache_info(tmp_path).builds == 0
