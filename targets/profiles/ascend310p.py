"""Huawei Ascend 310P3: the inference sibling of the 910B, 8 AI cores (cube and vector in one
core) with LPDDR4X. Figures from docs/targets.md (CANN's Ascend310P3.ini)."""

from __future__ import annotations

from typing import Any

from targets.profiles.published import launch_estimate_us, launch_source
from targets.profiles.transfers import SETUP_BYTES, setup_source

KiB = 1024
_INI = "CANN Ascend310P3.ini"
_GUIDE = "Ascend C programming guide"

DATA: dict[str, Any] = {
    "name": "ascend310p",
    "description": "Huawei Ascend 310P3: 8 Da Vinci AI cores at 1.06 GHz, LPDDR4X",
    "int8_tops": {"value": 140.0, "source": "docs/targets.md: about 140 TOPS INT8 per chip"},
    "clock_hz": {"value": 1.06e9, "source": f"{_INI}: 1.06 GHz"},
    "cores": {"value": 8, "source": f"{_INI}: ai_core_cnt 8"},
    "launch_us": {"value": launch_estimate_us("ascend310p", 1, 64),
                  "source": launch_source("ascend310p", 1, 64)},
    "activation_dtype": {"value": "i8", "source": "assumed: as the 910B (s8 x s8 cube)"},
    "matrix": {
        "macs_per_cycle": {
            "i8": {"value": 8192, "source": "derived: 16x32x16 INT8 cube; 8 x 1.06 GHz x "
                   "8192 x 2 = 139 TOPS, matching the published 140"},
            "f16": {"value": 4096, "source": "derived: 16x16x16 FP16 cube"},
        },
        "block": {
            "i8": {"value": [16, 32, 16], "source": f"{_GUIDE}: INT8 cube tile"},
            "f16": {"value": [16, 16, 16], "source": f"{_GUIDE}: FP16 cube tile"},
        },
    },
    "vector": {
        "width_bytes": {"value": 256, "source": "assumed: one vector repeat = 8 x 32 B"},
        "units": {"value": 1, "source": "assumed: 310P AI cores are not split into AIC/AIV"},
    },
    "layout": {
        "activation": {"value": "NC1HWC0", "source": _GUIDE},
        "weight": {"value": "FRACTAL_Z", "source": _GUIDE},
        "channel_block": {"value": 32, "source": f"{_GUIDE}: C0 = 32 for INT8"},
    },
    "offchip": {
        "name": "LPDDR4X",
        "bytes": {"value": 24 * KiB**3, "source": "assumed: 24 GiB card (not in docs/targets.md)"},
        "bandwidth": {"value": 204e9, "source": "docs/targets.md: about 204 GB/s per chip"},
        "setup_bytes": {"value": SETUP_BYTES, "source": setup_source('')},
    },
    "l2": {
        "name": "L2",
        "bytes": {"value": 16 * KiB**2, "source": f"{_INI}: L2 16 MiB"},
        "bandwidth": {"value": 0.0, "source": "not published; L2 hits are not modelled"},
    },
    "buffers": [
        {"name": "L0A", "roles": ["inputs"], "level": 1,
         "bytes": {"value": 64 * KiB, "source": f"{_INI}: l0_a_size"},
         "alignment": {"value": 512, "source": "one 512-byte fractal"},
         "double_buffered": {"value": True, "source": "assumed: ping-pong"},
         "fill_bytes_per_cycle": {"value": 512.0, "source": "assumed: one fractal per cycle"}},
        {"name": "L0B", "roles": ["weights"], "level": 1,
         "bytes": {"value": 64 * KiB, "source": f"{_INI}: l0_b_size"},
         "alignment": {"value": 512, "source": "one 512-byte fractal"},
         "double_buffered": {"value": True, "source": "assumed: ping-pong"},
         "fill_bytes_per_cycle": {"value": 512.0, "source": "assumed: one fractal per cycle"}},
        {"name": "L0C", "roles": ["accumulators"], "level": 1,
         "bytes": {"value": 256 * KiB, "source": f"{_INI}: l0_c_size"},
         "alignment": {"value": 1024, "source": "derived: one 16x16 int32 fractal"},
         "double_buffered": {"value": True, "source": "assumed: ping-pong"}},
        {"name": "UB", "roles": ["vector"], "level": 1,
         "bytes": {"value": 256 * KiB, "source": f"{_INI}: ub_size"},
         "alignment": {"value": 32, "source": "32-byte blocks"},
         "double_buffered": {"value": True, "source": "assumed: TQue depth 2"}},
        {"name": "L1", "roles": ["inputs", "weights"], "level": 2,
         "bytes": {"value": 1024 * KiB, "source": f"{_INI}: l1_size 1 MB"},
         "alignment": {"value": 32, "source": "32-byte blocks"},
         "double_buffered": {"value": True, "source": "assumed: ping-pong"}},
    ],
}
