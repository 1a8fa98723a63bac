"""Building the tvm target for a machine other than this host (targets.py names them).

- LLVM for another architecture (aarch64, riscv64): the library is linked with a cross C
  compiler (toolchains.py) into ``model_tvm.so``; ``run_model.py`` beside it runs the model
  on the board with TVM's runtime (``pip install apache-tvm`` there). Beside them,
  ``model_run``, a static program that runs the model without TVM's runtime or Python
  (standalone.py); where qemu-user is installed (``qemu-aarch64``, ``qemu-riscv64``), ``qnnc
  run`` and ``load_compiled(...).run()`` run that program here under emulation.
- CUDA: the kernels compiled with NVIDIA's ``nvcc`` (TVM calls it), the host side linked here;
  it runs where a CUDA GPU is (``run_model.py --cuda``), and ``qnnc run`` uses it when this
  machine has one.
- C: TVM's C source of every kernel and of the packed module (``model_tvm_lib.c``,
  ``model_tvm_devc.c``) with a Makefile that builds ``model_tvm.so`` against TVM's headers.

Every folder also holds ``tvm_signature.json`` (inputs and outputs: names, shapes, dtypes).
Files are written under temporary names and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import QnncError
from ir.graph import Graph
from targets.tvm import standalone
from targets.tvm.api import require_tvm
from targets.tvm.build import MODULE_FILE, SIGNATURE_FILE, TvmBuild, TvmModule, signature
from targets.tvm.emulate import emulator
from targets.tvm.lower import lower
from targets.tvm.targets import TvmTarget
from targets.tvm.toolchains import ARCHES, cross_compiler

LOADER_FILE = "run_model.py"
C_SOURCES = ("model_tvm_lib.c", "model_tvm_devc.c")

LOADER = '''"""Run the model in this folder with TVM's runtime (pip install apache-tvm):

    python run_model.py INPUT.npy ... [--cuda]

one .npy file per model input, in the order of tvm_signature.json; writes output0.npy, ...
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import tvm
from tvm import relax

here = Path(__file__).resolve().parent
sig = json.loads((here / "tvm_signature.json").read_text())
paths = [a for a in sys.argv[1:] if a != "--cuda"]
if len(paths) != len(sig["inputs"]):
    sys.exit(f"give {len(sig['inputs'])} input file(s): "
             + ", ".join(i["name"] for i in sig["inputs"]))
device = tvm.cuda(0) if "--cuda" in sys.argv else tvm.cpu(0)
vm = relax.VirtualMachine(tvm.runtime.load_module(str(here / "model_tvm.so")), device)
args = []
for path, entry in zip(paths, sig["inputs"]):
    a = np.load(path)
    if list(a.shape) != entry["shape"]:
        sys.exit(f"{path}: shape {list(a.shape)}, {entry['name']} wants {entry['shape']}")
    args.append(tvm.runtime.tensor(a.astype(entry["dtype"]), device))
try:
    results = vm["main"](*args)
except IndexError as e:  # an index fed to a Gather or ScatterND left its axis
    found = re.search(r"qnnc-check:(\\d+)", str(e))
    if found is None:
        raise
    name, op = sig["checks"][found.group(1)]
    sys.exit(f"node {name!r} ({op}): an index read from the input data is out of range")
for k, entry in enumerate(sig["outputs"]):
    np.save(f"output{k}.npy", results[k].numpy())
    print(f"output{k}.npy: {entry['name']} {entry['shape']} {entry['dtype']}")
'''

MAKEFILE = """# Builds model_tvm.so from TVM's C source of the model. TVM's headers come from the
# installed apache-tvm and apache-tvm-ffi packages unless TVM_INCLUDE is given.
PYTHON ?= python3
TVM_INCLUDE ?= $(shell $(PYTHON) -c "import os, tvm, tvm_ffi; \\
print(os.path.join(os.path.dirname(tvm.__file__), 'include'), \\
os.path.join(os.path.dirname(tvm_ffi.__file__), 'include'))")
CC ?= cc
CFLAGS ?= -O2

model_tvm.so: model_tvm_lib.c model_tvm_devc.c
\t$(CC) $(CFLAGS) -shared -fPIC $(addprefix -I,$(TVM_INCLUDE)) -o $@ $^

clean:
\trm -f model_tvm.so

.PHONY: clean
"""


class _Elsewhere:
    """The loaded form of a build that cannot run here: every run says where it runs."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def Session(self, profile_index: int = 0) -> _Elsewhere:  # noqa: N802 - the host's name
        return self

    def run(self, wanted: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        raise QnncError(self.reason)


class ExportedBuild(TvmBuild):
    """A tvm build for another machine: ``load()`` gives a module whose sessions say where
    the model runs instead of running it (CUDA runs here when a GPU is present)."""

    target_label: str = ""
    reason: str = ""

    def load(self) -> Any:
        emulated = emulator(self.folder)
        if emulated is not None:
            return emulated
        if self.target_label == "tvm:c" and (self.folder / MODULE_FILE).is_file():
            from targets.tvm.build import load_module  # built with make: a library for here

            return load_module(self.folder)
        if self.target_label.startswith("tvm:cuda") or '"kind": "cuda"' in self.target_label:
            tvm = require_tvm()
            if tvm.cuda(0).exist:
                from targets.tvm.build import load_module

                return load_module(self.folder)
        return _Elsewhere(self.reason)


def compile_for(mod: Any, target: TvmTarget) -> Any:
    """The Relax executable of ``mod`` (a lowered graph) for ``target`` (not this host)."""
    tvm = require_tvm()
    assert target.spec is not None
    tvm_target = tvm.target.Target(target.spec)
    if target.kind == "cuda":
        if shutil.which("nvcc") is None:
            raise QnncError("the tvm cuda target compiles its kernels with NVIDIA's nvcc, which "
                            "is not on the PATH: install the CUDA toolkit, or build for "
                            "another target")
        from tvm.s_tir import dlight

        with tvm_target:  # one thread block layout per kernel: TVM's default GPU schedule
            mod = dlight.ApplyDefaultSchedule(dlight.gpu.Fallback())(mod)
    return tvm.compile(mod, target=tvm_target)


def export(graph: Graph, target: TvmTarget, folder: Path, executable: Any = None,
           tuning: Path | None = None) -> ExportedBuild:
    """Compile ``graph`` for ``target`` (or take ``executable``, a build of it tuned with the
    database in ``tuning``) and write its files into ``folder``."""
    start = time.perf_counter()
    mod = lower(graph)
    if executable is None:
        executable = compile_for(mod, target)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        staged = Path(tmp)
        if target.kind == "c":
            names = _c_bundle(executable, staged)
        else:
            _library(executable, target, staged / MODULE_FILE)
            names = [MODULE_FILE]
        if target.kind == "llvm" and target.arch in ARCHES:
            assert target.spec is not None
            names += standalone.write(mod, require_tvm().target.Target(target.spec),
                                      target.arch, staged, tuning)
        (staged / SIGNATURE_FILE).write_text(json.dumps(signature(graph), indent=2) + "\n")
        (staged / LOADER_FILE).write_text(LOADER)
        for name in [*names, SIGNATURE_FILE, LOADER_FILE]:
            os.replace(staged / name, folder / name)
    weights = sum(int(v.data.nbytes) for v in graph.constants if v.data is not None)
    return exported_build(folder, target, seconds=time.perf_counter() - start,
                          weight_bytes=weights)


def exported_build(folder: Path, target: TvmTarget, **fields: Any) -> ExportedBuild:
    """The build of ``target`` whose files are in ``folder`` (just written, or saved with a
    compiled model)."""
    main = C_SOURCES[0] if target.kind == "c" else MODULE_FILE
    build = ExportedBuild(folder, folder / main, **fields)
    build.target_label, build.reason = target.label, elsewhere(target, folder)
    return build


def elsewhere(target: TvmTarget, folder: Path) -> str:
    """What running a build for ``target`` in ``folder`` takes."""
    if target.kind == "c":
        return (f"the model was built as C source for TVM ({target.label}): run `make` in "
                f"{str(folder)!r}, then load model_tvm.so with TVM's runtime (python "
                f"{LOADER_FILE} INPUT.npy ...)")
    cuda = target.kind == "cuda"
    where = "a CUDA GPU" if cuda else f"{target.arch} hardware"
    text = (f"the model was built for {target.label}, which runs on {where}: copy "
            f"{str(folder)!r} there and run `python {LOADER_FILE} INPUT.npy ..."
            f"{' --cuda' if cuda else ''}`")
    if (folder / standalone.PROGRAM).is_file():
        text += (f" (or `./{standalone.PROGRAM} INPUT.bin ...`, which needs neither TVM nor "
                 f"Python); to run it here under emulation, install qemu-user "
                 f"(qemu-{target.arch})")
    return text


def linker(arch: str) -> Any:
    """An ``export_library`` link function for ``arch`` (TVM's fcompile protocol)."""
    cc = cross_compiler(arch)

    def link(output: str, objects: list[str], options: list[str] | None = None) -> None:
        done = subprocess.run([*cc, "-shared", "-fPIC", "-o", output, *objects,
                               *(options or [])], capture_output=True, text=True)
        if done.returncode != 0:
            raise QnncError(f"linking the {arch} library with {' '.join(cc)} failed:\n"
                            f"{done.stderr[-2000:]}")

    link.output_format = "so"  # type: ignore[attr-defined]
    return link


def candidate_exporter(target: TvmTarget) -> Any:
    """For tuning: how MetaSchedule's builder writes a candidate the board can load (None:
    TVM's default, this host's C compiler)."""
    if target.arch is None:
        return None
    link = linker(target.arch)

    def export_candidate(module: Any) -> str:
        path = Path(tempfile.mkdtemp(prefix="qnnc-tune-")) / "candidate.so"
        module.export_library(str(path), fcompile=link)
        return str(path)

    return export_candidate


def _library(executable: Any, target: TvmTarget, path: Path) -> None:
    """Link the executable's objects into a shared library for the target's architecture
    (the host's C compiler for CUDA, whose host side is this machine's)."""
    if target.kind == "cuda" or target.arch is None:
        executable.export_library(str(path))
        return
    executable.export_library(str(path), fcompile=linker(target.arch))


def _c_bundle(executable: Any, folder: Path) -> list[str]:
    """TVM's C source of the model as C_SOURCES and a Makefile."""
    tar = folder / "model.tar"
    executable.export_library(str(tar))
    with tarfile.open(tar) as bundle:
        members = {m.name: m for m in bundle.getmembers()}
        if set(members) != {"lib0.c", "devc.c"}:
            raise QnncError(f"TVM's C export held {sorted(members)}, not lib0.c and devc.c; "
                            "this TVM version is not supported for the c target")
        for src, dst in zip(("lib0.c", "devc.c"), C_SOURCES):
            data = bundle.extractfile(members[src])
            assert data is not None
            (folder / dst).write_bytes(data.read())
    tar.unlink()
    (folder / "Makefile").write_text(MAKEFILE)
    return [*C_SOURCES, "Makefile"]


def load_c_build(folder: Path) -> TvmModule:
    """Build a C bundle's library with make and load it (this host)."""
    done = subprocess.run(["make", "-s", "-C", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        raise QnncError(f"make in {str(folder)!r} failed:\n{done.stderr[-2000:]}")
    tvm = require_tvm()
    return TvmModule(tvm.runtime.load_module(str(folder / MODULE_FILE)),
                     json.loads((folder / SIGNATURE_FILE).read_text()))
