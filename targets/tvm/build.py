"""Building the tvm target for this host: lower (lower.py), compile with LLVM for this CPU,
export the library into a folder, and load it back as a session.

The folder holds ``model_tvm.so`` (the Relax VM executable with its kernels and constants)
and ``tvm_signature.json`` (the order, names, shapes and dtypes of main's inputs and
outputs), so a saved folder runs without the graph. The build result has the attributes
compiler/compiled.py reads of a host build (folder, module_path, module_name, ...), and
``load().Session(k)`` gives an object whose ``run(wanted_names, feeds)`` returns arrays.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import InputError, QnncError
from ir.graph import Graph
from targets.tvm.api import relax, require_tvm
from targets.tvm.checks import checked_nodes, failure
from targets.tvm.lower import lower

MODULE_FILE = "model_tvm.so"
MODULE_NAME = "model_tvm"
SIGNATURE_FILE = "tvm_signature.json"


#: LLVM options of every LLVM target qnnc builds: LLVM's SLP vectorizer breaks the module
#: on some of these kernels ("Instruction does not dominate all uses!", e.g. a float Gemm
#: 4x3 @ 3x9 scaled by alpha, on znver3; a known class of SLPVectorizer bugs), so it is off;
#: the loop vectorizer still runs
LLVM_OPTIONS = ("-vectorize-slp=false",)


def host_target() -> Any:
    """LLVM for this machine's CPU (TVM 0.27 takes targets as dicts, not strings)."""
    tvm = require_tvm()
    from tvm.target import codegen

    return tvm.target.Target({"kind": "llvm", "mcpu": codegen.llvm_get_system_cpu(),
                              "cl-opt": list(LLVM_OPTIONS)})


def compile_graph(graph: Graph) -> Any:
    """The Relax VM executable of ``graph`` for this host (in memory)."""
    tvm = require_tvm()
    return tvm.compile(lower(graph), target=host_target())


def signature(graph: Graph) -> dict[str, Any]:
    """The inputs and outputs of main, in order: name, shape, numpy dtype; and the nodes
    whose indices are checked at run time (checks.py), by node index."""

    def entry(v: Any) -> dict[str, Any]:
        return {"name": v.name, "shape": list(v.type.shape), "dtype": v.type.dtype.np.name}

    return {"inputs": [entry(v) for v in graph.inputs],
            "outputs": [entry(v) for v in graph.outputs],
            "checks": checked_nodes(graph)}


class TvmSession:
    """Runs main of a loaded executable; ``run`` has the host session's shape."""

    def __init__(self, executable: Any, sig: Mapping[str, Any]) -> None:
        tvm = require_tvm()
        self._tvm = tvm
        self._vm = relax.VirtualMachine(executable, tvm.cpu())
        self._inputs = list(sig["inputs"])
        self._outputs = [o["name"] for o in sig["outputs"]]
        self._checks = dict(sig.get("checks", {}))

    def run(self, wanted: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        args = []
        for entry in self._inputs:
            if entry["name"] not in feeds:
                raise InputError(f"input {entry['name']!r} was not given")
            a = np.asarray(feeds[entry["name"]], dtype=entry["dtype"], order="C")
            if list(a.shape) != entry["shape"]:
                raise InputError(f"input {entry['name']!r} has shape {list(a.shape)}, "
                                 f"the model expects {entry['shape']}")
            args.append(self._tvm.runtime.tensor(a))
        try:
            results = self._vm["main"](*args)
        except IndexError as e:  # an index check failed (checks.py)
            error = failure(e, self._checks)
            if error is None:
                raise
            raise error from None
        by_name = {n: results[i].numpy() for i, n in enumerate(self._outputs)}
        return [by_name[n] for n in wanted]


class TvmModule:
    """A loaded build: ``Session(profile_index)`` as the host module offers it."""

    def __init__(self, executable: Any, sig: Mapping[str, Any]) -> None:
        self._executable = executable
        self._sig = sig

    def Session(self, profile_index: int = 0) -> TvmSession:  # noqa: N802 - the host's name
        if profile_index != 0:
            raise QnncError("the tvm target builds one shape profile")
        return TvmSession(self._executable, self._sig)


@dataclass
class TvmBuild:
    """A tvm build in ``folder`` (the fields compiler/compiled.py reads of a host build)."""

    folder: Path
    module_path: Path
    module_name: str = MODULE_NAME
    cache_hit: bool = False
    seconds: float = 0.0
    arena_bytes: int = 0
    weight_bytes: int = 0
    layers: list[dict] = field(default_factory=list)

    def load(self) -> TvmModule:
        return load_module(self.folder)


def build_tvm(graph: Graph, folder: Path, executable: Any = None) -> TvmBuild:
    """Lower, compile and export ``graph`` into ``folder`` (created if needed), or export
    ``executable`` when given (a tuned build of the graph). Each file is written under a
    temporary name and renamed into place, so a reader never sees half a library."""
    start = time.perf_counter()
    if executable is None:
        executable = compile_graph(graph)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODULE_FILE
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        staged = Path(tmp)
        executable.export_library(str(staged / MODULE_FILE))
        (staged / SIGNATURE_FILE).write_text(json.dumps(signature(graph), indent=2) + "\n")
        os.replace(staged / MODULE_FILE, path)
        os.replace(staged / SIGNATURE_FILE, folder / SIGNATURE_FILE)
    weights = sum(int(v.data.nbytes) for v in graph.constants if v.data is not None)
    return TvmBuild(folder, path, seconds=time.perf_counter() - start, weight_bytes=weights)


def saved_build(folder: Path) -> TvmBuild:
    """The build saved in a compiled model's folder (QnncError if its files are missing)."""
    _check_files(folder)
    return TvmBuild(folder, folder / MODULE_FILE, cache_hit=True)


def load_module(folder: Path) -> TvmModule:
    """The build saved in ``folder`` by :func:`build_tvm`."""
    tvm = require_tvm()
    _check_files(folder)
    return TvmModule(tvm.runtime.load_module(str(folder / MODULE_FILE)),
                     json.loads((folder / SIGNATURE_FILE).read_text()))


def _check_files(folder: Path) -> None:
    if not (folder / MODULE_FILE).is_file() or not (folder / SIGNATURE_FILE).is_file():
        raise QnncError(f"{str(folder)!r} lacks {MODULE_FILE} or {SIGNATURE_FILE}; recompile")


def run_in_memory(graph: Graph, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Compile ``graph`` and run it once without writing a library (for tests): the outputs
    in graph order."""
    session = TvmSession(compile_graph(graph), signature(graph))
    return session.run([v.name for v in graph.outputs], feeds)
