"""The host CPU, one core: where generated code runs and is measured.

``DATA`` is the assumed Zen 4 core of this project's machines with the measured ceilings from
docs/targets.md (457 GOPS INT8 with AVX-512 VNNI, 116 GFLOP/s FP32, one core). :func:`detected`
replaces what this machine can tell about itself (SIMD level from /proc/cpuinfo, cache sizes
from sysfs), marking each replaced figure "detected"; what it cannot tell stays assumed.
Caches are not double-buffered: hardware prefetch is not modelled, so transfers add to compute.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

KiB = 1024
_MEAS = "measured on this project's machines (AMD EPYC Zen 4, one core)"

DATA: dict[str, Any] = {
    "name": "host",
    "description": "host CPU, one core (Zen 4 with AVX-512 VNNI assumed)",
    "int8_tops": {"value": 0.457, "source": f"{_MEAS}: 457 GOPS INT8 with VNNI"},
    "clock_hz": {"value": 3.57e9, "source": "derived: 457 GOPS / (2 x 64 VNNI MACs per "
                 "cycle); 116 GFLOP/s / (2 x 16 FP32 FMAs) gives 3.6 GHz too"},
    "cores": {"value": 1, "source": "the measured ceilings are per core"},
    "activation_dtype": {"value": "u8", "source": "docs/targets.md: vpdpbusd multiplies u8 x s8"},
    "matrix": {
        "macs_per_cycle": {
            "i8": {"value": 64, "source": "derived: one 512-bit vpdpbusd (16 lanes x 4) per "
                   "cycle; reproduces the measured 457 GOPS"},
            "f32": {"value": 16, "source": "derived: one 512-bit FMA per cycle; reproduces "
                    "the measured 116 GFLOP/s"},
        },
        "block": {
            "i8": {"value": [1, 4, 16], "source": "derived: vpdpbusd adds groups of 4 u8 x s8 "
                   "products into 16 int32 lanes"},
            "f32": {"value": [1, 1, 16], "source": "derived: 16 f32 lanes"},
        },
    },
    "vector": {
        "width_bytes": {"value": 64, "source": "assumed: AVX-512 (Zen 4)"},
        "units": {"value": 1, "source": "assumed"},
    },
    "layout": {
        "activation": {"value": "NHWC", "source": "assumed: channels-last so the reduction "
                       "runs along contiguous channels"},
        "weight": {"value": "OHWI (16 outputs x 4 inputs blocks)", "source": "derived: the "
                   "vpdpbusd block"},
        "channel_block": {"value": 4, "source": "derived: vpdpbusd groups of 4 channels"},
    },
    "offchip": {
        "name": "DDR5",
        "bytes": {"value": 64 * KiB**3, "source": "assumed: 64 GiB"},
        "bandwidth": {"value": 30e9, "source": "assumed: what one Zen 4 core streams from "
                      "DDR5 (about 30 GB/s)"},
    },
    "l2": {
        "name": "L3",
        "bytes": {"value": 32 * KiB**2, "source": "assumed: 32 MiB L3 per CCD (Zen 4)"},
        "bandwidth": {"value": 0.0, "source": "L3 hits are not modelled"},
    },
    "buffers": [
        {"name": "L1D", "roles": ["inputs", "weights", "outputs", "accumulators", "vector"],
         "level": 1,
         "bytes": {"value": 32 * KiB, "source": "assumed: Zen 4 L1D 32 KB"},
         "alignment": {"value": 64, "source": "cache line 64 B"},
         "double_buffered": {"value": False, "source": "a cache: no ping-pong"},
         "fill_bytes_per_cycle": {"value": 32.0, "source": "assumed: 32 B/cycle from L2 "
                                  "(Zen-class cores)"}},
        {"name": "L2", "roles": ["inputs", "weights", "outputs", "accumulators"], "level": 2,
         "bytes": {"value": 1024 * KiB, "source": "assumed: Zen 4 L2 1 MB per core"},
         "alignment": {"value": 64, "source": "cache line 64 B"},
         "double_buffered": {"value": False, "source": "a cache: no ping-pong"}},
    ],
}


def _sysfs_cache(level: int, kind: str, root: Path) -> int | None:
    """Size in bytes of this CPU's cache of ``level`` and ``kind`` (Data/Unified), if known."""
    for d in sorted(root.glob("index*")):
        try:
            lv = int((d / "level").read_text())
            ty = (d / "type").read_text().strip()
            size = (d / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        if lv == level and ty == kind and size[:-1].isdigit():
            mult = {"K": KiB, "M": KiB**2}.get(size[-1].upper(), 1)
            return int(size[:-1]) * mult
    return None


def detected(level: str | None = None,
             cache_root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> dict[str, Any]:
    """DATA with this machine's SIMD level and cache sizes where they can be read."""
    from targets.host.cpu import detect_level

    data = copy.deepcopy(DATA)
    lvl = level or detect_level()
    if lvl == "avx2":
        src = "detected: AVX2 without AVX-512 VNNI"
        data["description"] = "host CPU, one core (AVX2 detected)"
        data["matrix"]["macs_per_cycle"]["i8"] = {
            "value": 32, "source": f"{src}; assumed: vpmaddubsw + vpmaddwd do half of "
            "vpdpbusd's work per cycle"}
        data["matrix"]["macs_per_cycle"]["f32"] = {
            "value": 16, "source": f"{src}; derived: two 256-bit FMAs per cycle"}
        data["matrix"]["block"]["i8"] = {"value": [1, 4, 8], "source": f"{src}: 8 int32 lanes"}
        data["matrix"]["block"]["f32"] = {"value": [1, 1, 8], "source": f"{src}: 8 f32 lanes"}
        data["vector"]["width_bytes"] = {"value": 32, "source": src}
        data["int8_tops"] = {"value": 2 * 32 * 3.57e9 / 1e12,
                             "source": "derived: 2 x 32 MACs x 3.57 GHz (the measured 457 "
                             "GOPS needs VNNI)"}
    elif lvl == "generic":
        data["description"] = "host CPU, one core (no x86 SIMD detected)"
        data["matrix"]["macs_per_cycle"] = {"i8": {"value": 4, "source": "assumed: scalar C"}}
        data["matrix"]["block"] = {"i8": {"value": [1, 1, 1], "source": "scalar C"}}
        data["vector"]["width_bytes"] = {"value": 16, "source": "assumed: 128-bit SIMD"}
        data["int8_tops"] = {"value": 2 * 4 * 3.57e9 / 1e12,
                             "source": "derived: 2 x 4 MACs x 3.57 GHz (assumed clock)"}
    for buf, lv, kind in (("L1D", 1, "Data"), ("L2", 2, "Unified")):
        size = _sysfs_cache(lv, kind, cache_root)
        if size:
            b = next(b for b in data["buffers"] if b["name"] == buf)
            b["bytes"] = {"value": size, "source": f"detected: sysfs cache index (L{lv} "
                          f"{kind})"}
    l3 = _sysfs_cache(3, "Unified", cache_root)
    if l3:
        data["l2"]["bytes"] = {"value": l3, "source": "detected: sysfs cache index (L3)"}
    return data
