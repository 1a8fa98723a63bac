"""Choosing the target a compile builds for and building its C: host C for this CPU, or the
staged C of an accelerator profile, which runs on this host too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compiler.compiled import qnnc_version
from compiler.errors import QnncError
from compiler.options import CompileOptions
from ir.graph import Graph
from targets.profiles import Profile, load_target
from targets.registry import target_names
from targets.tvm.targets import is_tvm


def accelerator_of(options: CompileOptions) -> Profile | None:
    """The accelerator profile the options name (None: the interpreter, host C or tvm)."""
    if options.target_file is not None:
        return load_target(Path(options.target_file))
    target = options.target
    if is_tvm(target):
        from targets.tvm.driver import check

        # a bad name, JSON or tuning flag fails here, before any calibration, as does a
        # missing TVM, which the build would only meet at the end
        check(str(target), options.tune, options.tune_rpc)
        return None
    if target is None or target == "host":
        return None
    if target not in target_names():
        raise QnncError(f"unknown target {target!r}; the targets are: "
                        f"{', '.join(target_names())} (or a profile file with --target-file)")
    return load_target(target)


def host_threads(graphs: list[Graph], threads: int) -> int:
    """``threads``, or 1 when no graph's layers worth sharing out among threads
    (targets/c/emitter.worth_threads) take MIN_SHARED_NS together on one thread: with none,
    every loop of such a build would run on one thread anyway, and with a few small ones
    two threads gain less than their forks, joins and wake-ups cost; OpenMP and the per-run
    choice of a team around them would only cost time."""
    from targets.c.emitter import MIN_SHARED_NS, shared_ns

    if threads > 1 and max((shared_ns(g) for g in graphs), default=0.0) < MIN_SHARED_NS:
        return 1
    return threads


def build(graph: Graph, options: CompileOptions, profile: Profile | None) -> Any:
    """Generate and build the C of ``graph`` for the options' target (None: no target, the
    model runs on the reference interpreter); a targets.host.build.BuildResult."""
    if profile is None and options.target is None:
        return None
    if profile is None and is_tvm(options.target):
        from targets.tvm.driver import build_for

        return build_for(graph, str(options.target), cache_dir=options.cache_dir,
                         tune=options.tune, tune_rpc=options.tune_rpc,
                         progress=options.tune_progress, say=options.tune_log)
    from targets.host.build import BuildOptions, build_host

    renderer = None
    threads = host_threads([graph], options.threads)
    if profile is not None:
        from targets.staged.renderer import StagedRenderer

        renderer, threads = StagedRenderer(profile), 1
    opts = BuildOptions(cpu=options.cpu, threads=threads, werror=options.werror,
                        extra_cflags=tuple(options.extra_cflags))
    return build_host(graph, opts, cache_dir=options.cache_dir, version=qnnc_version(),
                      renderer=renderer, progress=options.build_progress)


def build_profiles(graphs: list[Graph], titles: list[str], options: CompileOptions,
                   profile: Profile | None) -> Any:
    """One module for the graphs of several shape profiles (weights shared); None without a
    target (the interpreter runs each profile's graph)."""
    if profile is None and options.target is None:
        return None
    if profile is None and is_tvm(options.target):
        raise QnncError("the tvm targets build one input shape; compile each shape separately "
                        "(--input-shape with one shape)")
    from targets.host.build import BuildOptions, build_host

    threads = host_threads(graphs, options.threads) if profile is None else 1
    opts = BuildOptions(cpu=options.cpu, threads=threads, werror=options.werror,
                        extra_cflags=tuple(options.extra_cflags))

    def staged() -> Any:
        from targets.staged.renderer import StagedRenderer

        return StagedRenderer(profile)

    return build_host(graphs, opts, cache_dir=options.cache_dir, version=qnnc_version(),
                      renderer=None if profile is None else staged,
                      progress=options.build_progress, titles=titles)
