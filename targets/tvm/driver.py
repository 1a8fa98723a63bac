"""One entry for every tvm target: parse the target, tune if asked, build or export.

The build goes into the build cache, in a folder named by a hash of the graph and the
target (``tvm-<hash>``); the tuning database of the same pair into ``tvm-tuning/<hash>``, so
a later compile of the same model for the same target reuses it (tune.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ir.errors import QnncError
from ir.graph import Graph
from targets.host.build import default_cache_dir, graph_digest
from targets.tvm.targets import TvmTarget, parse

log = logging.getLogger("qnnc.tvm")


def target_key(graph: Graph, target: TvmTarget) -> str:
    return hashlib.sha256(f"{graph_digest(graph)}|{target.label}".encode()).hexdigest()[:20]


def build_for(graph: Graph, target_text: str, *,
              cache_dir: str | os.PathLike[str] | None = None, tune: int = 0,
              tune_rpc: str | None = None,
              progress: Callable[[int, int], None] | None = None,
              say: Callable[[str], None] | None = None) -> Any:
    """Build ``graph`` for ``target_text`` (``tvm``, ``tvm:<name>``, ``tvm:<JSON>``): a
    TvmBuild that runs here, or an ExportedBuild for another machine."""
    from targets.tvm.build import build_tvm
    from targets.tvm.lower import check_supported

    target = parse(target_text)
    check_supported(graph)  # one error naming every op without a kernel, before any work
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = target_key(graph, target)
    executable = None
    if tune:
        executable = _tuned(graph, target, tune, tune_rpc, root / "tvm-tuning" / key,
                            progress, say or log.info)
    folder = root / f"tvm-{key}"
    if target.runs_here:
        return build_tvm(graph, folder, executable)
    from targets.tvm.export import export

    return export(graph, target, folder, executable)


def check(target_text: str, tune: int, tune_rpc: str | None) -> None:
    """The target and tuning flags' errors, raised before any calibration or build."""
    from targets.tvm.api import require_tvm
    from targets.tvm.tune import RpcTracker

    target = parse(target_text)
    if tune:
        if target.kind != "llvm":
            raise QnncError(f"tuning is for the CPU (LLVM) tvm targets; {target.label} builds "
                            "with TVM's default schedules: leave out --tune")
        if tune_rpc is not None:
            RpcTracker.parse(tune_rpc)
        elif not target.runs_here:
            raise QnncError(f"tuning for {target.label} measures on that hardware: give "
                            "--tune-rpc HOST:PORT:KEY, the TVM RPC tracker its boards "
                            "registered with (python -m tvm.exec.rpc_server --tracker "
                            "HOST:PORT --key KEY on each board)")
    require_tvm()


def _tuned(graph: Graph, target: TvmTarget, trials: int, rpc_text: str | None, work: Path,
           progress: Callable[[int, int], None] | None, say: Callable[[str], None]) -> Any:
    from targets.tvm.api import require_tvm
    from targets.tvm.build import host_target
    from targets.tvm.export import candidate_exporter
    from targets.tvm.lower import lower
    from targets.tvm.tune import RpcTracker, compile_tuned, tune

    check(target.label, trials, rpc_text)
    rpc = RpcTracker.parse(rpc_text) if rpc_text is not None else None
    tvm = require_tvm()
    tvm_target = host_target() if target.runs_here else tvm.target.Target(target.spec)
    mod = lower(graph)
    tune(mod, tvm_target, trials, work, rpc=rpc, export=candidate_exporter(target),
         progress=progress, say=say)
    return compile_tuned(mod, tvm_target, work)
