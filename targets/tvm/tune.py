"""Tuning the tvm target's kernels with TVM's MetaSchedule.

``tune(mod, target, trials, work_dir)`` searches schedules for every kernel of the lowered
module (``trials`` measured candidates over all of them), measuring on this machine or, with
an :class:`RpcTracker`, on boards registered with a TVM RPC tracker (the way TVM users tune on
farms of ARM boards: ``python -m tvm.exec.rpc_tracker`` on one machine, ``python -m
tvm.exec.rpc_server --tracker HOST:PORT --key KEY`` on each board). The records go to a JSON
database in ``work_dir``; :func:`compile_tuned` builds the module with the best schedule found
for each kernel (kernels without a record keep TVM's default schedule).

A work folder remembers how many trials it holds (``qnnc_tuning.json``): a later compile that
asks for no more reuses it without measuring again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ir.errors import QnncError
from targets.tvm.api import require_tvm

#: the estimate shown before tuning starts: per kernel (its design space, the first round) and
#: per trial (build, run, cost-model update), from two runs on a 2-core AMD EPYC (Zen 3):
#: one kernel with 8 trials took 75 s, seven kernels with 4 trials 122 s
SECONDS_PER_KERNEL = 13.0
SECONDS_PER_TRIAL = 8.0
#: MetaSchedule's builder gives up on a candidate after 30 s by default, which large kernels
#: exceed on a small machine (every candidate then fails); this is the limit used instead.
BUILD_TIMEOUT_S = 300.0
MARKER = "qnnc_tuning.json"

Progress = Callable[[int, int], None]  # (trials measured, trials asked for)


@dataclass(frozen=True)
class RpcTracker:
    """Where MetaSchedule measures: the TVM RPC tracker at host:port, boards under ``key``."""

    host: str
    port: int
    key: str

    @classmethod
    def parse(cls, text: str) -> RpcTracker:
        """``host:port:key``, e.g. ``127.0.0.1:9190:rk3588`` (the key may hold colons)."""
        parts = text.split(":", 2)
        if len(parts) != 3 or not all(parts) or not parts[1].isdigit() \
                or not 0 < int(parts[1]) < 65536:
            raise QnncError(f"--tune-rpc wants HOST:PORT:KEY (the TVM RPC tracker and the key "
                            f"its boards registered with), got {text!r}")
        return cls(parts[0], int(parts[1]), parts[2])


def estimate(kernels: int, trials: int) -> str:
    seconds = kernels * SECONDS_PER_KERNEL + trials * SECONDS_PER_TRIAL
    return f"about {seconds / 60:.0f} min" if seconds >= 90 else f"about {seconds:.0f} s"


def tuning_target(target: Any) -> Any:
    """``target`` with the ``num-cores`` MetaSchedule needs for a CPU (this machine's cores
    when the target does not say; a board's own count goes in the target JSON)."""
    tvm = require_tvm()
    spec = dict(target.export())
    if spec.get("kind") in ("llvm", "c") and not spec.get("num-cores"):
        spec["num-cores"] = os.cpu_count() or 1
    return tvm.target.Target(spec)


def trials_done(work_dir: Path) -> int:
    """Trials the tuning database in ``work_dir`` was made with (0: none)."""
    try:
        return int(json.loads((work_dir / MARKER).read_text())["trials"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def tune(mod: Any, target: Any, trials: int, work_dir: Path, *,
         rpc: RpcTracker | None = None, export: Callable[[Any], str] | None = None,
         progress: Progress | None = None, say: Callable[[str], None] = print) -> None:
    """Tune the kernels of ``mod`` for ``target`` with ``trials`` trials into ``work_dir``,
    unless it already holds at least that many. ``export`` writes a built candidate as a
    library the runner can load (needed for another architecture: see toolchains.py)."""
    if trials < 1:
        raise QnncError(f"--tune wants a positive number of trials, got {trials}")
    done = trials_done(work_dir)
    if done >= trials:
        say(f"tvm: reusing the tuning database in {work_dir} ({done} trials)")
        return
    require_tvm()
    from tvm.s_tir import meta_schedule as ms

    target = tuning_target(target)
    tasks = ms.relax_integration.extract_tasks(mod, target)
    where = f"on the boards of tracker {rpc.host}:{rpc.port} (key {rpc.key!r})" if rpc \
        else "on this machine"
    say(f"tvm: tuning {len(tasks)} kernels with MetaSchedule, {trials} trials measured {where}: "
        f"{estimate(len(tasks), trials)} on a 2-core x86 host ({SECONDS_PER_KERNEL:g} s per "
        f"kernel, {SECONDS_PER_TRIAL:g} s per trial)")
    work_dir.mkdir(parents=True, exist_ok=True)
    builder = ms.builder.LocalBuilder(timeout_sec=BUILD_TIMEOUT_S, f_export=export)
    runner: Any = "local"
    if rpc is not None:
        runner = ms.runner.RPCRunner(
            rpc_config=ms.runner.RPCConfig(tracker_host=rpc.host, tracker_port=rpc.port,
                                           tracker_key=rpc.key, session_timeout_sec=120),
            max_workers=1)
    callbacks = list(ms.measure_callback.MeasureCallback.create("default"))
    if progress is not None:
        callbacks.append(_progress_callback(progress, trials))
    start = time.monotonic()
    quiet = logging.getLogger("tvm.s_tir.meta_schedule")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # its per-iteration tables; qnnc reports progress itself
    try:
        ms.relax_integration.tune_relax(
            mod, {}, target, str(work_dir), max_trials_global=trials,
            num_trials_per_iter=min(64, trials), builder=builder, runner=runner,
            measure_callbacks=callbacks, seed=0)
    finally:
        quiet.setLevel(level)
    (work_dir / MARKER).write_text(json.dumps({"trials": trials}) + "\n")
    say(f"tvm: tuned in {time.monotonic() - start:.0f} s; database {work_dir}")


def compile_tuned(mod: Any, target: Any, work_dir: Path) -> Any:
    """The Relax executable of ``mod`` with the best schedule ``work_dir`` holds per kernel."""
    require_tvm()
    from tvm.s_tir import meta_schedule as ms

    db = ms.database.JSONDatabase(work_dir=str(work_dir))
    return ms.relax_integration.compile_relax(db, mod, tuning_target(target), None)


def _progress_callback(progress: Progress, total: int) -> Any:
    from tvm.ir.utils import derived_object
    from tvm.s_tir import meta_schedule as ms

    seen = [0]  # kept outside the object: TVM's wrapper does not keep its attributes

    @derived_object
    class Counted(ms.measure_callback.PyMeasureCallback):
        """Reports the trials measured so far after every batch."""

        def apply(self, task_scheduler: Any, task_id: int, measure_candidates: Any,
                  builder_results: Any, runner_results: Any) -> None:
            if measure_candidates:  # an exhausted search space measures empty batches
                seen[0] += len(measure_candidates)
                progress(min(seen[0], total), total)

    return Counted()
