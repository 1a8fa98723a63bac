"""A compiled host model is safe to share and to rebuild: many threads calling run() on one
loaded model get bit-exact results, and compiling the same model twice (cold caches) writes
byte-identical files, the built extension included."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from compiler.api import compile_model, load_model
from compiler.examples import build_example
from targets.host.build import BuildOptions, build_host
from tests.codegen.harness import random_feeds


def test_many_threads_share_one_model_bit_exact(tmp_path: Path) -> None:
    model = build_example("tiny_cnn")
    g = load_model(model)
    cm = compile_model(model, precision="int8", target="host", cache_dir=tmp_path,
                       calibration=[random_feeds(g, seed=s) for s in range(2)])
    feeds = [random_feeds(g, seed=10 + k) for k in range(8)]
    want = [cm.run(None, f) for f in feeds]  # one thread first

    def worker(k: int) -> int:
        for r in range(25):
            j = (k + r) % len(feeds)
            got = cm.run(None, feeds[j])
            for a, b in zip(got, want[j]):
                np.testing.assert_array_equal(a, b)
        return k

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(worker, range(8))) == list(range(8))


def test_recompiling_writes_byte_identical_files(tmp_path: Path) -> None:
    g = load_model(build_example("tiny_cnn"))
    a = build_host(g, BuildOptions(cpu="generic"), cache_dir=tmp_path / "a")
    b = build_host(g, BuildOptions(cpu="generic"), cache_dir=tmp_path / "b")
    assert not a.cache_hit and not b.cache_hit
    files = sorted(p.name for p in a.folder.iterdir())
    assert files == sorted(p.name for p in b.folder.iterdir())
    assert a.module_path.name in files and "model.c" in files
    for name in files:
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes(), name
