"""The tvm target for other machines: target names and JSON, cross-built libraries and
standalone programs for aarch64 and riscv64 (the ELF's machine and the model's kernel
symbols checked; the program run bit-exact under qemu-user where it is installed), the C
source bundle built with make and run bit-exact, CUDA where nvcc is."""

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


#: the exported targets by architecture: x86_64 (given as JSON) runs directly on x86_64 CI
EXPORTED = {"aarch64": "tvm:aarch64", "riscv64": "tvm:riscv64",
            "x86_64": 'tvm:{"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "x86-64"}'}


@pytest.fixture(scope="module", params=list(EXPORTED))
def cross_build(request: pytest.FixtureRequest, int8_graph,  # noqa: ANN001
                tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - ExportedBuild
    """The tiny CNN exported for ``arch`` (library, loader, standalone program)."""
    if not TVM:
        pytest.skip("needs Apache TVM (pip install 'qnnc[tvm]')")
    pytest.importorskip("ziglang", reason="cross-linking needs ziglang (in 'qnnc[tvm]')")
    from targets.tvm.export import export

    arch = request.param
    folder = tmp_path_factory.mktemp(arch)
    return arch, folder, export(int8_graph[0], parse(EXPORTED[arch]), folder)


def test_cross_built_library(int8_graph, cross_build,  # noqa: ANN001
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The library and the standalone program are ELF files of the architecture with the
    model's kernels; without qemu-user a run says where the model runs."""
    from targets.tvm import emulate
    from targets.tvm.toolchains import elf_info

    g, _, _ = int8_graph
    arch, folder, build = cross_build
    info = elf_info(folder / "model_tvm.so")
    assert info.arch == arch
    kernels = {s for s in info.symbols if s.startswith("__tvm_ffi_k")}
    assert len(kernels) == len(g.nodes)  # one kernel per node, named after it
    assert "__tvm_ffi__library_bin" in info.symbols  # the packed Relax VM program
    assert elf_info(folder / "model_run").arch == arch
    assert (folder / "model_run").stat().st_mode & 0o100  # executable
    sig = json.loads((folder / "tvm_signature.json").read_text())
    assert [i["name"] for i in sig["inputs"]] == [v.name for v in g.inputs]
    compile((folder / "run_model.py").read_text(), "run_model.py", "exec")  # valid Python
    monkeypatch.setattr(emulate, "launcher", lambda arch: None)
    with pytest.raises(QnncError, match=f"runs on {arch} hardware.*run_model.py.*model_run"
                                        ".*qemu-user"):
        build.load().Session(0).run([], {})


def test_cross_built_program_runs_exactly(int8_graph, cross_build) -> None:  # noqa: ANN001
    """The standalone program, the board's machine code, run here by qemu-user (or
    directly, for this machine's architecture): the interpreter's integer logits exactly,
    for several inputs."""
    from ir.interpreter import run
    from targets.tvm.emulate import launcher

    arch = cross_build[0]
    if launcher(arch) is None:
        pytest.skip(f"qemu-{arch} is not installed (apt-get install qemu-user): the program's "
                    "ELF is checked, not run")
    g, name, x = int8_graph
    session = cross_build[2].load().Session(0)
    out = g.outputs[0].name
    for k in range(3):
        feed = {name: x * (k + 1)}
        np.testing.assert_array_equal(session.run([out], feed)[0], run(g, feed)[out])


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


@needs_tvm
def test_standalone_program_stops_on_an_index_out_of_range(tmp_path: Path) -> None:
    """A Gather of fed indices in the standalone program (this machine's architecture, run
    directly): in-range indices (negative ones too) as the interpreter gives them, one out
    of range stops the run with the interpreter's error naming the node."""
    pytest.importorskip("ziglang", reason="linking needs ziglang (in 'qnnc[tvm]')")
    from ir.errors import InputError
    from ir.interpreter import run
    from targets.tvm.emulate import launcher
    from targets.tvm.export import export
    from tests.targets.tvm.harness import one_node

    arch = "x86_64"
    if launcher(arch) is None:
        pytest.skip("this machine is not x86_64")
    x = (np.arange(12, dtype=np.float32).reshape(4, 3), None, False)
    g = one_node("Gather", [x, (np.array([0, 1, 2], np.int32), None, False)], axis=0)
    session = export(g, parse(EXPORTED[arch]), tmp_path).load().Session(0)
    out = g.outputs[0].name
    good = {"x0": x[0], "x1": np.array([3, -4, 0], np.int32)}
    np.testing.assert_array_equal(session.run([out], good)[0], run(g, good)[out])
    with pytest.raises(InputError, match=r"node 'Gather/node 0' \(Gather\)"):
        session.run([out], {"x0": x[0], "x1": np.array([0, 4, 1], np.int32)})


@needs_tvm
def test_a_program_that_cannot_be_linked_leaves_the_library_and_says_how(
        int8_graph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
        caplog: pytest.LogCaptureFixture) -> None:
    """A static link that fails (here: a compiler that always fails) costs the program only:
    the library, its loader and the program's sources are written, and a warning names the
    command that links them."""
    pytest.importorskip("ziglang", reason="cross-linking needs ziglang (in 'qnnc[tvm]')")
    from targets.tvm import standalone
    from targets.tvm.export import export

    monkeypatch.setattr(standalone, "static_compiler", lambda arch: ["false"])
    with caplog.at_level("WARNING", logger="qnnc.tvm"):
        export(int8_graph[0], parse("tvm:riscv64"), tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"model_tvm.so", "run_model.py", "run_model.c", "kernels.o", "weights.S"} <= names
    assert "model_run" not in names
    assert "cc -O2 -static -o model_run run_model.c weights.S kernels.o -lm" in caplog.text
