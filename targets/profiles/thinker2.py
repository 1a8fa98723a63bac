""""Thinker II": the specified 64-TOPS INT8 smart-city edge NPU.

No chip of that name is documented publicly (docs/targets.md), so apart from the specified 64 TOPS
every figure here is an assumption typical of edge vision NPUs, stated as such: four NPU
cores, each with an activation buffer, a weight buffer and an accumulator buffer, behind a
few MB of shared global buffer and LPDDR4X.
"""

from __future__ import annotations

from typing import Any

from targets.profiles.published import launch_estimate_us, launch_source
from targets.profiles.transfers import SETUP_BYTES, setup_source

KiB = 1024

DATA: dict[str, Any] = {
    "name": "thinker2",
    "description": "\"Thinker II\" smart-city edge NPU (rated 64 TOPS INT8; memory assumed)",
    "int8_tops": {"value": 64.0, "source": "product specification (no public datasheet)"},
    "rated_int8_tops": {"value": 64.0, "source": "product specification"},
    "clock_hz": {"value": 1.0e9, "source": "assumed: 1 GHz, typical of 12-16 nm edge NPUs"},
    "cores": {"value": 4, "source": "assumed: four NPU cores"},
    "launch_us": {"value": launch_estimate_us("ascend310p", 1, 64),
                  "source": "assumed: as the Ascend 310P3, the published edge NPU with "
                  "figures; " + launch_source("ascend310p", 1, 64)},
    "activation_dtype": {"value": "u8", "source": "assumed: vision activations after ReLU "
                         "are non-negative, so u8 keeps one more bit than i8"},
    "matrix": {
        "macs_per_cycle": {
            "i8": {"value": 8192, "source": "derived: 64 TOPS / (2 x 4 cores x 1 GHz) = "
                   "8000, rounded to the 8x32x32 array (65.5 TOPS modelled)"},
        },
        "block": {
            "i8": {"value": [8, 32, 32], "source": "assumed: 8 pixels x 32 input x 32 "
                   "output channels per cycle"},
        },
    },
    "vector": {
        "width_bytes": {"value": 64, "source": "assumed: 512-bit vector unit"},
        "units": {"value": 1, "source": "assumed"},
    },
    "layout": {
        "activation": {"value": "NC1HWC0", "source": "assumed: 32-channel blocks feed the "
                       "array's 32-wide reduction directly"},
        "weight": {"value": "OI32i32o (32x32 blocks)", "source": "assumed: matches the array"},
        "channel_block": {"value": 32, "source": "assumed: the array's reduction width"},
    },
    "offchip": {
        "name": "LPDDR4X",
        "bytes": {"value": 8 * KiB**3, "source": "assumed: 8 GiB"},
        "bandwidth": {"value": 34.1e9, "source": "assumed: 2 x 32-bit LPDDR4X-4266 "
                      "(docs/targets.md: tens of GB/s)"},
        "setup_bytes": {"value": SETUP_BYTES,
                        "source": setup_source("assumed the same on Thinker II (none published)")},
    },
    "buffers": [
        {"name": "ABUF", "roles": ["inputs", "outputs", "vector"], "level": 1,
         "bytes": {"value": 256 * KiB, "source": "assumed: per-core activation buffer"},
         "alignment": {"value": 32, "source": "assumed: one 32-channel block"},
         "double_buffered": {"value": True, "source": "assumed: ping-pong"},
         "fill_bytes_per_cycle": {"value": 64.0, "source": "assumed: 512-bit port to GBUF"}},
        {"name": "WBUF", "roles": ["weights"], "level": 1,
         "bytes": {"value": 128 * KiB, "source": "assumed: per-core weight buffer, smaller "
                   "than the activation buffer (docs/targets.md)"},
         "alignment": {"value": 32, "source": "assumed"},
         "double_buffered": {"value": True, "source": "assumed: ping-pong"},
         "fill_bytes_per_cycle": {"value": 64.0, "source": "assumed: 512-bit port to GBUF"}},
        {"name": "ACC", "roles": ["accumulators"], "level": 1,
         "bytes": {"value": 64 * KiB, "source": "assumed: int32 accumulator SRAM"},
         "alignment": {"value": 32, "source": "assumed"},
         "double_buffered": {"value": False, "source": "assumed: single accumulator bank"}},
        {"name": "GBUF", "roles": ["inputs", "weights", "outputs"], "level": 2,
         "scope": "chip",
         "bytes": {"value": 4096 * KiB, "source": "assumed: a few MB of global buffer "
                   "(docs/targets.md)"},
         "shared_by": {"value": 4, "source": "assumed: shared by the four cores"},
         "alignment": {"value": 64, "source": "assumed"},
         "double_buffered": {"value": True, "source": "assumed: ping-pong"}},
    ],
}
