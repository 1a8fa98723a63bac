"""The machines the tvm target builds for: ``tvm`` (this host), ``tvm:<name>`` for a named
one, or ``tvm:<TVM target JSON>`` for any target TVM 0.27 takes.

===============  ====================================================================
name             TVM target
===============  ====================================================================
(none)           LLVM for this machine's CPU: built, loaded and run here
``aarch64``      LLVM, aarch64-linux-gnu, Cortex-A55 (ARMv8.2-A with dot product; the
                 code runs on every later core, A76 included)
``cortex-a76``   LLVM, aarch64-linux-gnu, tuned for the Cortex-A76
``riscv64``      LLVM, riscv64-linux-gnu, RV64GC
``cuda``         CUDA (PTX, sm_80 unless the JSON says otherwise), host code LLVM
``c``            C source (a bundle that builds with make against TVM's runtime)
===============  ====================================================================

A JSON target names its ``kind`` (``llvm``, ``c`` or ``cuda``); an LLVM target's
``mtriple`` decides the architecture the library is linked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ir.errors import QnncError
from targets.tvm.toolchains import ARCHES

_SLP_OFF = ["-vectorize-slp=false"]  # as targets/tvm/build.LLVM_OPTIONS (see there)
_AARCH64 = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "cl-opt": _SLP_OFF}
NAMED: dict[str, dict[str, Any]] = {
    "aarch64": {**_AARCH64, "mcpu": "cortex-a55"},
    "cortex-a76": {**_AARCH64, "mcpu": "cortex-a76"},
    "riscv64": {"kind": "llvm", "mtriple": "riscv64-linux-gnu", "mcpu": "generic-rv64",
                "mattr": ["+64bit", "+m", "+a", "+f", "+d", "+c"], "cl-opt": _SLP_OFF},
    "cuda": {"kind": "cuda", "arch": "sm_80", "host": {"kind": "llvm"}},
    "c": {"kind": "c"},
}
KINDS = ("llvm", "c", "cuda")


@dataclass(frozen=True)
class TvmTarget:
    """Where a tvm build runs: ``spec`` is the TVM target JSON (None: this host)."""

    name: str  # "host", a key of NAMED, or "json"
    spec: dict[str, Any] | None = field(default=None, hash=False, compare=True)

    @property
    def kind(self) -> str:
        return "llvm" if self.spec is None else str(self.spec["kind"])

    @property
    def arch(self) -> str | None:
        """The architecture an LLVM library is linked for (None: this host, or not LLVM)."""
        if self.spec is None or self.kind != "llvm" or "mtriple" not in self.spec:
            return None
        cpu = str(self.spec["mtriple"]).split("-")[0]
        return cpu if cpu in ARCHES else f"unknown ({self.spec['mtriple']})"

    @property
    def runs_here(self) -> bool:
        """Built, loaded and run on this machine (the host target)."""
        return self.spec is None

    @property
    def label(self) -> str:
        return "tvm" if self.spec is None else f"tvm:{self.name}" if self.name != "json" \
            else "tvm:" + json.dumps(self.spec, sort_keys=True)


def is_tvm(target: str | None) -> bool:
    return target is not None and (target == "tvm" or target.startswith("tvm:"))


def parse(target: str) -> TvmTarget:
    """``tvm``, ``tvm:<name>`` or ``tvm:<JSON>`` (see the module doc)."""
    if target == "tvm":
        return TvmTarget("host")
    rest = target.removeprefix("tvm:").strip()
    if rest in NAMED:
        return TvmTarget(rest, NAMED[rest])
    if not rest.startswith("{"):
        raise QnncError(f"unknown tvm target {rest!r}: give one of {', '.join(NAMED)}, or a "
                        'TVM target as JSON, e.g. tvm:{"kind": "llvm", "mtriple": '
                        '"aarch64-linux-gnu", "mcpu": "cortex-a72"}')
    try:
        spec = json.loads(rest)
    except ValueError as e:
        raise QnncError(f"the tvm target {rest!r} is not valid JSON: {e}") from None
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        raise QnncError(f"a tvm target JSON must be an object whose \"kind\" is one of "
                        f"{', '.join(KINDS)}; got {rest!r}")
    t = TvmTarget("json", spec)
    if t.arch is not None and t.arch.startswith("unknown"):
        raise QnncError(f"the tvm target's mtriple {spec['mtriple']!r} names an architecture "
                        f"qnnc cannot link for; it links for {', '.join(ARCHES)}")
    return t
