"""Host CPU features and the compiler flags that target them.

Levels, best first: ``avx512vnni`` (AVX-512 with VNNI: vpdpbusd for INT8), ``avx2`` (AVX2 +
FMA), ``generic`` (plain C, the compiler's default ISA). ``native`` asks the compiler to
target the build machine (-march=native). Detection reads /proc/cpuinfo on Linux; anything
else (another OS, another architecture) is ``generic``.
"""

from __future__ import annotations

import platform
from pathlib import Path

from ir.errors import QnncError

CPU_LEVELS = ("generic", "avx2", "avx512vnni", "native")

_X86_FLAGS: dict[str, list[str]] = {
    "generic": [],
    "avx2": ["-mavx2", "-mfma"],
    "avx512vnni": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq",
                   "-mavx512vnni"],
    "native": ["-march=native"],
}


def is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The feature flags of the first CPU in /proc/cpuinfo (empty when unreadable)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def detect_level(cpuinfo: str | None = None) -> str:
    """The best level this machine runs: avx512vnni, avx2 or generic."""
    if cpuinfo is None and not is_x86_64():
        return "generic"
    flags = cpu_flags(cpuinfo)
    if {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= flags:
        return "avx512vnni"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "generic"


def resolve_level(cpu: str | None) -> str:
    """``cpu`` checked (None or "auto" means detect)."""
    if cpu in (None, "auto"):
        return detect_level()
    if cpu not in CPU_LEVELS:
        raise QnncError(f"unknown --cpu {cpu!r}; choose one of {', '.join(CPU_LEVELS)}, "
                        "or auto")
    if cpu != "generic" and cpu != "native" and not is_x86_64():
        raise QnncError(f"--cpu {cpu} is an x86-64 level, but this machine is "
                        f"{platform.machine()}; use generic or native")
    return cpu


def effective_level(cpu: str | None) -> str:
    """The instruction level a build for ``cpu`` has: :func:`resolve_level`, with ``native``
    read off this machine (``native`` builds with -march=native)."""
    level = resolve_level(cpu)
    return detect_level() if level == "native" else level


def arch_flags(level: str) -> list[str]:
    """Compiler flags for ``level`` (x86-64 only; other machines get none but native)."""
    if not is_x86_64():
        return ["-march=native"] if level == "native" else []
    return list(_X86_FLAGS[level])
