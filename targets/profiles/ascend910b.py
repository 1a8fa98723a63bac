"""Huawei Ascend 910B2 (Da Vinci 220x): one AI core = one cube core (AIC) + two vector cores.

Figures from docs/targets.md: CANN's Ascend910B*.ini platform files and the Ascend C programming
guide. The cube path stages GM -> L1 -> L0A (inputs) / L0B (weights) -> cube -> L0C
(accumulators) -> GM; vector ops work in the vector cores' Unified Buffer.
"""

from __future__ import annotations

from typing import Any

from targets.profiles.published import launch_estimate_us, launch_source
from targets.profiles.transfers import SETUP_BYTES, setup_source

KiB = 1024
_INI = "CANN Ascend910B2.ini"
_GUIDE = "Ascend C programming guide (220x hardware constraints)"

DATA: dict[str, Any] = {
    "name": "ascend910b",
    "description": "Huawei Ascend 910B2: 24 Da Vinci cube cores at 1.8 GHz, HBM",
    "int8_tops": {"value": 707.8, "source": "derived: 24 cores x 1.8 GHz x 8192 MAC x 2 "
                  "(docs/targets.md estimate; third-party figure 560)"},
    "rated_int8_tops": {"value": 256.0, "source": "product specification"},
    "clock_hz": {"value": 1.8e9, "source": f"{_INI} (cube clock 1800 MHz)"},
    "cores": {"value": 24, "source": f"{_INI}: ai_core_cnt"},
    "launch_us": {"value": launch_estimate_us("ascend310p", 1, 64),
                  "source": "assumed: as the 310P3 (the same Da Vinci task scheduling); "
                  + launch_source("ascend310p", 1, 64)},
    "activation_dtype": {"value": "i8", "source": "assumed: the cube multiplies s8 x s8; "
                         "activations carry an offset instead of being u8"},
    "matrix": {
        "macs_per_cycle": {
            "i8": {"value": 8192, "source": "derived: INT8 cube tile 16x32x16 (2x the FP16 "
                   "rate, as the original 910 publishes)"},
            "f16": {"value": 4096, "source": f"{_INI}: cube_m_size etc., FP16 tile 16x16x16"},
        },
        "block": {
            "i8": {"value": [16, 32, 16], "source": f"{_GUIDE}: INT8 cube tile 16x32x16"},
            "f16": {"value": [16, 16, 16], "source": f"{_GUIDE}: FP16 cube tile 16x16x16"},
        },
    },
    "vector": {
        "width_bytes": {"value": 256, "source": "assumed: one vector repeat = 8 blocks of "
                        "32 B (not in docs/targets.md)"},
        "units": {"value": 2, "source": f"{_INI}: 2 vector cores per cube core"},
    },
    "layout": {
        "activation": {"value": "NC1HWC0", "source": _GUIDE},
        "weight": {"value": "FRACTAL_Z", "source": _GUIDE},
        "channel_block": {"value": 32, "source": f"{_GUIDE}: C0 = 32 for INT8"},
    },
    "offchip": {
        "name": "HBM",
        "bytes": {"value": 64 * KiB**3, "source": f"{_INI}: HBM 64 GiB"},
        "bandwidth": {"value": 1.6e12, "source": "estimate 1.5-1.6 TB/s (no official "
                      "datasheet figure; docs/targets.md)"},
        "setup_bytes": {"value": SETUP_BYTES, "source": setup_source('')},
    },
    "l2": {
        "name": "L2",
        "bytes": {"value": 192 * KiB**2, "source": f"{_INI}: L2 192 MiB"},
        "bandwidth": {"value": 0.0, "source": "not published; L2 hits are not modelled"},
    },
    "buffers": [
        {"name": "L0A", "roles": ["inputs"], "level": 1,
         "bytes": {"value": 64 * KiB, "source": f"{_INI}: l0_a_size"},
         "alignment": {"value": 512, "source": f"{_GUIDE}: one 512-byte fractal"},
         "double_buffered": {"value": True, "source": "assumed: Ascend C matmul kernels "
                             "ping-pong L0A halves"},
         "fill_bytes_per_cycle": {"value": 512.0, "source": "assumed: one INT8 fractal per "
                                  "cycle from L1 (not published)"}},
        {"name": "L0B", "roles": ["weights"], "level": 1,
         "bytes": {"value": 64 * KiB, "source": f"{_INI}: l0_b_size"},
         "alignment": {"value": 512, "source": f"{_GUIDE}: one 512-byte fractal"},
         "double_buffered": {"value": True, "source": "assumed: ping-pong, as L0A"},
         "fill_bytes_per_cycle": {"value": 512.0, "source": "assumed: as L0A"}},
        {"name": "L0C", "roles": ["accumulators"], "level": 1,
         "bytes": {"value": 128 * KiB, "source": f"{_INI}: l0_c_size"},
         "alignment": {"value": 1024, "source": "derived: one 16x16 int32 fractal"},
         "double_buffered": {"value": True, "source": "assumed: ping-pong so FixPipe drains "
                             "one half while the cube fills the other"}},
        {"name": "UB", "roles": ["vector"], "level": 1,
         "bytes": {"value": 192 * KiB, "source": f"{_INI}: ub_size (per vector core)"},
         "alignment": {"value": 32, "source": f"{_GUIDE}: UB 32-byte alignment"},
         "double_buffered": {"value": True, "source": "assumed: Ascend C TQue depth 2"}},
        {"name": "L1", "roles": ["inputs", "weights"], "level": 2,
         "bytes": {"value": 512 * KiB, "source": f"{_INI}: l1_size"},
         "alignment": {"value": 32, "source": f"{_GUIDE}: L1 32-byte alignment"},
         "double_buffered": {"value": True, "source": "assumed: MTE2 fills one half while "
                             "the cube reads the other"}},
    ],
}
