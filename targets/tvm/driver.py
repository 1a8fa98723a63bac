"""One entry for every tvm target: parse the target, tune if asked, build or export.

The build goes into the build cache, in a folder named by a hash of the graph, the target,
the trials asked for, and the qnnc and TVM versions (``tvm-<hash>``): a later compile of the
same model for the same target reuses a finished build. The tuning database of the graph and
target goes to ``tvmtune-<hash>``, so a later compile reuses it too (tune.py). ``qnnc cache
clear`` removes both kinds.
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
from targets.tvm.api import require_tvm
from targets.tvm.build import SIGNATURE_FILE, build_tvm, saved_build
from targets.tvm.targets import TvmTarget, parse

log = logging.getLogger("qnnc.tvm")


def target_key(graph: Graph, target: TvmTarget, *extra: object) -> str:
    """20 hex digits naming the pair (and ``extra``) in the build cache."""
    text = "|".join(str(p) for p in (graph_digest(graph), target.label, *extra))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def build_for(graph: Graph, target_text: str, *,
              cache_dir: str | os.PathLike[str] | None = None, tune: int = 0,
              tune_rpc: str | None = None,
              progress: Callable[[int, int], None] | None = None,
              say: Callable[[str], None] | None = None) -> Any:
    """Build ``graph`` for ``target_text`` (``tvm``, ``tvm:<name>``, ``tvm:<JSON>``): a
    TvmBuild that runs here, or an ExportedBuild for another machine."""
    from targets.tvm.export import LOADER_FILE, export, exported_build
    from targets.tvm.lower import check_supported
    from targets.tvm.tune import trials_done

    target = parse(target_text)
    check_supported(graph)  # one error naming every op without a kernel, before any work
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    tvm = require_tvm()
    work = root / f"tvmtune-{target_key(graph, target)}"
    if tune and trials_done(work) < tune:
        _tuned(graph, target, tune, tune_rpc, work, progress, say or log.info)
    elif tune:
        (say or log.info)(f"tvm: reusing the tuning database in {work} "
                          f"({trials_done(work)} trials)")
    trials = trials_done(work) if tune else 0  # the database's, which the build is named by
    folder = root / f"tvm-{target_key(graph, target, trials, _version(), tvm.__version__)}"
    last = SIGNATURE_FILE if target.runs_here else LOADER_FILE  # each build renames it last
    if (folder / last).is_file():
        if target.runs_here:
            return saved_build(folder)
        return exported_build(folder, target, cache_hit=True)
    executable = _compile_tuned(graph, target, work) if trials else None
    if target.runs_here:
        return build_tvm(graph, folder, executable)
    return export(graph, target, folder, executable, work if trials else None)


def _version() -> str:
    """qnnc's version and a digest of the tvm target's own code, so a build made by other
    kernels is never reused."""
    from importlib import metadata

    try:
        version = metadata.version("qnnc")
    except metadata.PackageNotFoundError:
        version = "unknown"
    code = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        code.update(path.read_bytes())
    return f"{version}+{code.hexdigest()[:12]}"


def check(target_text: str, tune: int, tune_rpc: str | None) -> None:
    """The target and tuning flags' errors, raised before any calibration or build."""
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


def _tvm_target(target: TvmTarget) -> Any:
    from targets.tvm.build import host_target

    return host_target() if target.runs_here else require_tvm().target.Target(target.spec)


def _tuned(graph: Graph, target: TvmTarget, trials: int, rpc_text: str | None, work: Path,
           progress: Callable[[int, int], None] | None, say: Callable[[str], None]) -> None:
    from targets.tvm.export import candidate_exporter
    from targets.tvm.lower import lower
    from targets.tvm.tune import RpcTracker, tune

    check(target.label, trials, rpc_text)
    rpc = RpcTracker.parse(rpc_text) if rpc_text is not None else None
    tune(lower(graph), _tvm_target(target), trials, work, rpc=rpc,
         export=candidate_exporter(target), progress=progress, say=say)


def _compile_tuned(graph: Graph, target: TvmTarget, work: Path) -> Any:
    from targets.tvm.lower import lower
    from targets.tvm.tune import compile_tuned

    return compile_tuned(lower(graph), _tvm_target(target), work)
