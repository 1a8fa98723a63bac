"""End-to-end host target: compile_model(target="host") runs generated C that matches the
interpreter; the build cache, the standalone bundle, hostile names and build failures."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from compiler.api import compile_model, load_compiled, load_model
from compiler.errors import InputError, QnncError
from compiler.examples import build_example
from ir.build import make_node
from ir.graph import Graph
from ir.interpreter import run as interpret
from ir.types import DType, TensorType
from tests.codegen.harness import random_feeds


def _check_example(name: str, tmp_path: Path, rtol: float, atol: float, threads: int = 1
                   ) -> None:
    g = load_model(build_example(name))
    cm = compile_model(g, target="host", threads=threads, cache_dir=tmp_path / "cache",
                       werror=True)
    feeds = random_feeds(g, seed=7)
    want = interpret(g, feeds)
    got = cm.run(None, feeds)
    for out, w in zip(cm.output_names, got):
        np.testing.assert_allclose(w, want[out], rtol=rtol, atol=atol, err_msg=out)


def test_tiny_cnn(tmp_path: Path) -> None:
    _check_example("tiny_cnn", tmp_path, 1e-4, 1e-5)


def test_tiny_cnn_threads(tmp_path: Path, every_layer_threaded: None) -> None:
    _check_example("tiny_cnn", tmp_path, 1e-4, 1e-5, threads=2)


@pytest.mark.slow
def test_mobilenetv2(tmp_path: Path) -> None:
    # 52 convs deep: f32 accumulation order differs from numpy's, so a looser atol on logits
    _check_example("mobilenetv2", tmp_path, 1e-3, 1e-3)


@pytest.mark.slow
def test_resnet50(tmp_path: Path) -> None:
    _check_example("resnet50", tmp_path, 1e-3, 1e-5)


@pytest.mark.slow
def test_inception_v1(tmp_path: Path) -> None:
    # LRN (powf against numpy's power) and 57 convs: differences of a few 1e-6 on the
    # probabilities, so the default f32 tolerance still holds
    _check_example("inception_v1", tmp_path, 1e-4, 1e-5)


@pytest.mark.slow
def test_bert_encoder(tmp_path: Path) -> None:
    _check_example("bert_encoder", tmp_path, 1e-3, 1e-4)


def test_cache_hit_and_saved_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    g = load_model(build_example("tiny_cnn"))
    first = compile_model(g, target="host", cache_dir=tmp_path / "c", output_dir=tmp_path / "o")
    assert not first.build.cache_hit
    again = compile_model(g, target="host", cache_dir=tmp_path / "c")
    assert again.build.cache_hit
    assert again.build.seconds < 1.0 < first.build.seconds
    assert again.build.arena_bytes > 0 and again.build.weight_bytes > 0
    out = tmp_path / "o"
    for f in ("model.c", "model.h", "weights.c", "Makefile", "main.c", "qnnc_runtime.h"):
        assert (out / f).is_file(), f
    assert list(out.glob("*.pyx")) and list(out.glob("*.so"))
    x = random_feeds(g)
    reloaded = load_compiled(out)
    assert reloaded.build is not None
    np.testing.assert_array_equal(reloaded.run(None, x)[0], first.run(None, x)[0])
    # tiny_cnn has no layer worth sharing out: two threads build the one-thread module
    same = compile_model(g, target="host", threads=2, cache_dir=tmp_path / "c")
    assert same.build.cache_hit and same.build.folder == first.build.folder
    # where layers are shared out, a different thread count is a different build
    import targets.c.emitter

    monkeypatch.setattr(targets.c.emitter, "MIN_PARALLEL_NS", 0)
    monkeypatch.setattr(targets.c.emitter, "MIN_SHARED_NS", 0)
    other = compile_model(g, target="host", threads=2, cache_dir=tmp_path / "c")
    assert not other.build.cache_hit


def test_a_threaded_build_counts_its_runs_per_team(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """team_runs: how many runs of a multi-thread build its per-run choice gave the full team
    and one thread (its first runs try both in turn); a one-thread build has no team."""
    import targets.c.emitter

    g = load_model(build_example("tiny_cnn", seed=9173))  # weights of its own: a new module
    assert compile_model(g, target="host", cache_dir=tmp_path / "c").team_runs() is None
    monkeypatch.delenv("QNNC_ADAPTIVE_THREADS", raising=False)
    monkeypatch.setattr(targets.c.emitter, "MIN_PARALLEL_NS", 0)
    monkeypatch.setattr(targets.c.emitter, "MIN_SHARED_NS", 0)
    cm = compile_model(g, target="host", threads=2, cache_dir=tmp_path / "c")
    before = cm.team_runs()
    assert before == (0, 0)  # a fresh module
    x = random_feeds(g)
    for _ in range(20):
        cm.run(None, x)
    full, one = cm.team_runs()
    assert full + one == 20
    assert full >= 4 and one >= 3  # run 0 and the trials (runs 1-6) alternate


def test_session_checks_inputs(tmp_path: Path) -> None:
    g = load_model(build_example("tiny_cnn"))
    cm = compile_model(g, target="host", cache_dir=tmp_path / "c")
    sess = cm.build.load().Session()
    x = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(InputError, match="shape"):
        sess.run(None, {"input": np.zeros((1, 8, 8), np.float32)})
    with pytest.raises(InputError, match="dtype"):
        sess.run(None, {"input": x.astype(np.float64)})
    with pytest.raises(InputError, match="unknown input"):
        sess.run(None, {"input": x, "nope": x})
    with pytest.raises(InputError, match="unknown output"):
        sess.run(["nope"], {"input": x})
    (y,) = sess.run(["logits"], {"input": x})
    assert y.shape == (1, 10)


def test_bundle_builds_with_make(tmp_path: Path) -> None:
    g = load_model(build_example("tiny_cnn"))
    out = tmp_path / "model"
    cm = compile_model(g, target="host", cache_dir=tmp_path / "c", output_dir=out)
    subprocess.run(["make", "-s"], cwd=out, check=True, capture_output=True)
    x = random_feeds(g, seed=3)["input"]
    x.tofile(out / "in0.bin")
    subprocess.run(["./model_main", "in0.bin", "out0.bin"], cwd=out, check=True)
    y = np.fromfile(out / "out0.bin", dtype=np.float32).reshape(1, 10)
    np.testing.assert_array_equal(y, cm.run(None, {"input": x})[0])


def test_weight_blob_bundle(tmp_path: Path) -> None:
    """Large weights go to weights.bin (embedded with .incbin); make still builds it."""
    g = Graph("big")
    x = g.add_input("x", TensorType((2, 600), DType.f32))
    w = g.add_const(np.random.default_rng(0).standard_normal((600, 500)).astype(np.float32),
                    "w")
    g.outputs = list(make_node(g, "MatMul", [x, w], {}, name="mm").outputs)
    out = tmp_path / "o"
    cm = compile_model(g, target="host", cache_dir=tmp_path / "c", output_dir=out,
                       werror=True)
    assert (out / "weights.bin").stat().st_size >= 600 * 500 * 4
    feeds = random_feeds(g)
    np.testing.assert_allclose(cm.run(None, feeds)[0], interpret(g, feeds)["mm"],
                               rtol=1e-4, atol=1e-4)
    subprocess.run(["make", "-s"], cwd=out, check=True, capture_output=True)
    feeds["x"].tofile(out / "x.bin")
    subprocess.run(["./model_main", "x.bin", "y.bin"], cwd=out, check=True)
    np.testing.assert_array_equal(np.fromfile(out / "y.bin", np.float32).reshape(2, 500),
                                  cm.run(None, feeds)[0])


HOSTILE = ['*/ system("rm -rf /"); /*', "a\nb\r\n#include <x>", "ünï çødé ☃", "a.b", "a/b",
           "a-b", "", "x" * 500, "\\", "in0", "out0", "qnnc_run", "int"]


def test_hostile_names(tmp_path: Path) -> None:
    g = Graph('*/ evil "graph" \n')
    x = g.add_input('*/ system("rm -rf /"); /*', TensorType((2, 3), DType.f32))
    v = x
    for k, name in enumerate(HOSTILE):
        op = "Relu" if k % 2 else "Neg"
        (v,) = make_node(g, op, [v], {}, name=name, out_names=[name or "anon"]).outputs
    (w,) = make_node(g, "Add", [v, x], {}, name="a.b", out_names=["a/b\n*/"]).outputs
    g.outputs = [v, w]
    cm = compile_model(g, target="host", cache_dir=tmp_path / "c", werror=True,
                       output_dir=tmp_path / "o")
    src = (tmp_path / "o" / "model.c").read_text()
    assert src.isascii()
    # outside comments and string literals, nothing of the names survives but [A-Za-z0-9_]
    code = re.sub(r'"(\\.|[^"\\\n])*"', '""', re.sub(r"/\*.*?\*/", "", src, flags=re.S))
    assert "rm -rf" not in code and "system(" not in code and "#include <x>" not in code
    assert "/*" not in code and "*/" not in code
    feeds = {x.name: np.arange(6, dtype=np.float32).reshape(2, 3) - 2}
    want = interpret(g, feeds)
    for name, got in zip(cm.output_names, cm.run(None, feeds)):
        np.testing.assert_array_equal(got, want[name])


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    g = Graph("g")
    x = g.add_input("x", TensorType((4,), DType.f32))
    g.outputs = list(make_node(g, "CumSum", [x], {"axis": 0}, name="my_cumsum").outputs)
    with pytest.raises(QnncError, match="my_cumsum.*CumSum"):
        compile_model(g, target="host", cache_dir=tmp_path / "c", output_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_missing_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    g = load_model(build_example("tiny_cnn"))
    with pytest.raises(QnncError, match="install gcc"):
        compile_model(g, target="host", cache_dir=tmp_path / "c", output_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_failed_build(tmp_path: Path) -> None:
    g = load_model(build_example("tiny_cnn"))
    with pytest.raises(QnncError, match="failed.*no-such-flag"):
        compile_model(g, target="host", cache_dir=tmp_path / "c", output_dir=tmp_path / "o",
                      extra_cflags=["-fno-such-flag-qnnc"])
    assert not (tmp_path / "o").exists()
    assert not any((tmp_path / "c").iterdir())  # no half-built cache entry either


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_avx512_paths_compile(tmp_path: Path) -> None:
    """This machine may lack AVX-512; the generated C must still compile for it."""
    from targets.host.build import BuildOptions, build_c_library

    g = load_model(build_example("tiny_cnn"))
    lib = build_c_library(g, tmp_path / "avx512", BuildOptions(cpu="avx512vnni", werror=True))
    assert lib.is_file()
    lib = build_c_library(g, tmp_path / "generic", BuildOptions(cpu="generic", werror=True))
    assert lib.is_file()


def test_cli_compile_target_host(tmp_path: Path) -> None:
    from compiler.cli import main

    onnx_path = tmp_path / "tiny.onnx"
    import onnx

    onnx.save(build_example("tiny_cnn"), onnx_path)
    env_cache = tmp_path / "xdg"
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(env_cache)
    try:
        assert main(["compile", str(onnx_path), "-o", str(tmp_path / "out"), "--target", "host",
                     "-q"]) == 0
    finally:
        if old is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = old
    assert (tmp_path / "out" / "model.c").is_file()


def test_builds_load_with_qnnc_wait_settings_unless_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT when it loads: qnnc gives them its
    defaults first (passive after a spin), and leaves a user's own setting alone — a
    user's wait policy without a spin count keeps libgomp's spin for that policy."""
    from targets.host.build import DEFAULT_GOMP_SPINCOUNT, load_extension

    def load(name: str) -> None:
        with pytest.raises(Exception):  # noqa: B017 - no such file: the defaults come first
            load_extension(tmp_path / "missing.so", name)

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    load("qnnc_missing_for_policy_test")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert os.environ["GOMP_SPINCOUNT"] == DEFAULT_GOMP_SPINCOUNT
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    load("qnnc_missing_for_policy_test2")
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert "GOMP_SPINCOUNT" not in os.environ
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "0")
    load("qnnc_missing_for_policy_test3")
    assert (os.environ["OMP_WAIT_POLICY"], os.environ["GOMP_SPINCOUNT"]) == ("PASSIVE", "0")
