"""The sanitizer build: a model's generated C under AddressSanitizer and UBSan, with guard
zones between the tensors of its arena (targets/c/guards.py).

It builds the standalone bundle's ``model_main`` (main.c reads and writes raw tensors) with
``-fsanitize=address,undefined -fno-sanitize-recover=all``, so any report ends the run with a
nonzero status, and runs it as a separate process (an ASan program cannot be loaded into an
uninstrumented Python). Tests use it to show the generated code of whole models is clean.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ir.errors import QnncError
from ir.graph import Graph
from targets.c.model import generate
from targets.host.build import CSRC, HostRenderer, find_cc
from targets.host.bundle import MAIN_C

SANITIZE_FLAGS = ("-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                  "-fno-sanitize-recover=all", "-std=c11")
#: ASan options of a run: reports are fatal, leaks are the driver's business
ASAN_OPTIONS = "detect_leaks=0:abort_on_error=0:halt_on_error=1"


class SanitizerReport(QnncError):
    """The sanitized build reported an error (the message holds the report)."""


class GuardedRenderer(HostRenderer):
    """Host C with 64 poisoned bytes after every arena tensor."""

    guard_bytes = 64


def build_sanitized(graph: Graph, folder: Path, *, guards: bool = True,
                    edit: dict[str, str] | None = None) -> Path:
    """Generate ``graph``'s C into ``folder`` and build ``model_main`` with the sanitizers
    (with guard zones unless ``guards`` is False). ``edit`` replaces text in model.c
    before it is compiled (a test injecting a bug). Returns the executable."""
    folder.mkdir(parents=True, exist_ok=True)
    src = generate(graph, GuardedRenderer() if guards else HostRenderer())
    for fname, data in src.files.items():
        if fname == "model.c" and edit:
            assert isinstance(data, str)
            for old, new in edit.items():
                if old not in data:
                    raise ValueError(f"edit: {old!r} is not in model.c")
                data = data.replace(old, new)
        p = folder / fname
        p.write_bytes(data) if isinstance(data, bytes) else p.write_text(data)
    for h in sorted(CSRC.glob("*.h")):
        shutil.copy(h, folder / h.name)
    (folder / "main.c").write_text(MAIN_C)
    cmd = [*find_cc().split(), *SANITIZE_FLAGS, "-I.", "-o", "model_main", "main.c",
           *src.c_files, "-lm"]
    p = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    if p.returncode != 0:
        raise QnncError(f"the sanitizer build failed: {' '.join(cmd)}\n{p.stderr[-4000:]}")
    return folder / "model_main"


def run_sanitized(exe: Path, graph: Graph, feeds: dict[str, np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """Run the sanitized ``model_main`` once; its outputs by name, or a SanitizerReport."""
    folder = exe.parent
    args = []
    for k, v in enumerate(graph.inputs):
        path = folder / f"in{k}.bin"
        np.ascontiguousarray(feeds[v.name], dtype=v.type.dtype.np).tofile(path)
        args.append(str(path))
    outs = [folder / f"out{k}.bin" for k in range(len(graph.outputs))]
    env = {**os.environ, "ASAN_OPTIONS": ASAN_OPTIONS,
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    p = subprocess.run([str(exe), *args, *map(str, outs)], cwd=folder, capture_output=True,
                       text=True, env=env)
    if p.returncode != 0 or "runtime error" in p.stderr or "Sanitizer" in p.stderr:
        raise SanitizerReport(f"{exe} exited with {p.returncode}:\n{p.stderr[-6000:]}")
    return {v.name: np.fromfile(path, dtype=v.type.dtype.np).reshape(v.type.shape)
            for v, path in zip(graph.outputs, outs)}
