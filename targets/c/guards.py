"""Guard zones for the sanitizer build: every arena byte that no live tensor owns is poisoned.

AddressSanitizer sees the arena as one global array, so a layer that writes past its output
into the next tensor of the arena goes unnoticed. In a build whose renderer asks for guard
zones (``Renderer.guard_bytes``), the memory plan leaves that many free bytes after every
arena buffer, and before each top-level layer ``qnnc_run`` calls ``qnnc_guard(step)``: it
unpoisons the arena, then poisons all of it except the bytes of the tensors alive during
that layer (its inputs, outputs, scratch, and whatever later layers still read). Alignment
padding and the guard zones after each tensor are therefore poisoned, and any access to
them is an ASan report naming the layer function. Bodies of control flow (If, Loop, Scan)
live in their node's scratch, which is open as a whole while the node runs.

Without ``-fsanitize=address`` the calls compile to nothing (``QNNC_ASAN`` unset).
"""

from __future__ import annotations

from targets.c.emitter import c_table
from targets.c.memory import MemoryPlan

#: the includes and macros model.c needs for guard zones (with or without ASan)
GUARD_PRELUDE = """\
#if defined(__SANITIZE_ADDRESS__)
#define QNNC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QNNC_ASAN 1
#endif
#endif
#ifdef QNNC_ASAN
#include <sanitizer/asan_interface.h>
#endif"""


def live_spans(plan: MemoryPlan, steps: int) -> list[list[tuple[int, int]]]:
    """Per top-level step, the arena byte ranges [lo, hi) of the tensors alive during it,
    sorted and merged."""
    bufs = [s for s in plan.storages() if s.kind == "arena"]
    out = []
    for i in range(steps):
        spans = sorted((s.offset, s.offset + s.nbytes) for s in bufs
                       if s.first <= i <= s.last and s.nbytes > 0)
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        out.append(merged)
    return out


def guard_c(plan: MemoryPlan, steps: int) -> str:
    """The tables of live spans per step and ``qnnc_guard(step)`` (step -1: open it all)."""
    spans = live_spans(plan, steps)
    starts, flat = [0], []
    for step in spans:
        for lo, hi in step:
            flat += [lo, hi]
        starts.append(len(flat) // 2)
    return "\n".join([
        GUARD_PRELUDE,
        "",
        "/* guard zones: the arena bytes of the tensors alive at each top-level step (pairs",
        " * lo, hi of qnnc_guard_spans from qnnc_guard_first[step] on); all others poisoned */",
        c_table("qnnc_guard_first", "int32_t", starts),
        c_table("qnnc_guard_spans", "int64_t", flat),
        "static void qnnc_guard(int step) {",
        "#ifdef QNNC_ASAN",
        "    ASAN_UNPOISON_MEMORY_REGION(qnnc_arena, QNNC_ARENA_BYTES);",
        "    if (step < 0) return;",
        "    int64_t at = 0;",
        "    for (int32_t j = qnnc_guard_first[step]; j < qnnc_guard_first[step + 1]; ++j) {",
        "        const int64_t lo = qnnc_guard_spans[2 * j], hi = qnnc_guard_spans[2 * j + 1];",
        "        if (lo > at) ASAN_POISON_MEMORY_REGION(qnnc_arena + at, (size_t)(lo - at));",
        "        at = hi;",
        "    }",
        "    if (at < QNNC_ARENA_BYTES)",
        "        ASAN_POISON_MEMORY_REGION(qnnc_arena + at, (size_t)(QNNC_ARENA_BYTES - at));",
        "#else",
        "    (void)step;",
        "#endif",
        "}",
        "",
    ])
