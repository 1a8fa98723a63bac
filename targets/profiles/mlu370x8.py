"""Cambricon MLU370-X8 (MLUarch03): 2 chips x 4 clusters x 4 MLU cores per card.

Figures from docs/targets.md: mlu-ops build scripts and the BANG C developer guide. Per core: NRAM
(activations, partial sums, vector data) and WRAM (weights); per cluster a shared SRAM that
stages tiles from the LPDDR5. The card is modelled as one device of 32 cores (the guide's
"4 clusters per chip" is read as per chip; that reading reproduces the published TOPS).
"""

from __future__ import annotations

from typing import Any

from targets.profiles.published import launch_estimate_us, launch_source
from targets.profiles.transfers import SETUP_BYTES, setup_source

KiB = 1024
_BANG = "BANG C developer guide (MLU370, arch 372)"
_OPS = "mlu-ops build scripts (arch 372)"

DATA: dict[str, Any] = {
    "name": "mlu370x8",
    "description": "Cambricon MLU370-X8: 32 MLU cores (2 chips x 4 clusters x 4) at 1.3 GHz",
    "int8_tops": {"value": 256.0, "source": "Cambricon MLU370-X8 product page: INT8 256 TOPS"},
    "rated_int8_tops": {"value": 128.0, "source": "product specification (128 is the published "
                        "INT16 figure)"},
    "clock_hz": {"value": 1.3e9, "source": f"{_BANG}: 1.3 GHz"},
    "cores": {"value": 32, "source": f"{_BANG}: 2 chips x 4 clusters x 4 MLU cores "
              "(assumed reading of an ambiguous passage)"},
    "launch_us": {"value": launch_estimate_us("mlu370x8", 1, 8),
                  "source": launch_source("mlu370x8", 1, 8)},
    "activation_dtype": {"value": "i8", "source": "assumed: BANG convolutions take int8 "
                         "activations with a scale (no u8 path documented)"},
    "matrix": {
        "macs_per_cycle": {
            "i8": {"value": 3072, "source": "derived: 256 TOPS / (2 x 32 cores x 1.3 GHz) = "
                   "3077, rounded to a multiple of the 64 lanes"},
            "i16": {"value": 1536, "source": "derived: 128 TOPS INT16 published, same way"},
            "f16": {"value": 1152, "source": "derived: 96 TFLOPS FP16 published, same way"},
        },
        "block": {
            "i8": {"value": [1, 64, 64], "source": f"{_OPS}: element counts divisible by 64 "
                   "(WRAM striped over 64 lanes)"},
            "i16": {"value": [1, 64, 64], "source": f"{_OPS}: 64-element alignment"},
            "f16": {"value": [1, 64, 64], "source": f"{_OPS}: 64-element alignment"},
        },
    },
    "vector": {
        "width_bytes": {"value": 128, "source": f"{_BANG}: NFU_ALIGN 128-byte rows"},
        "units": {"value": 1, "source": "assumed: one vector pipe per MLU core"},
    },
    "layout": {
        "activation": {"value": "NHWC", "source": f"{_BANG}: channels-last tensors"},
        "weight": {"value": "NHWC (64-lane stripes of output channels)",
                   "source": f"{_OPS}: WRAM striped over 64 lanes"},
        "channel_block": {"value": 64, "source": f"{_OPS}: 64-element aligned channel blocks"},
    },
    "offchip": {
        "name": "LPDDR5",
        "bytes": {"value": 48 * KiB**3, "source": "MLU370-X8 product page: 48 GB LPDDR5"},
        "bandwidth": {"value": 614.4e9, "source": "MLU370-X8 product page: 614.4 GB/s"},
        "setup_bytes": {"value": SETUP_BYTES,
                        "source": setup_source("assumed the same on the MLU370 (none published)")},
    },
    "buffers": [
        {"name": "NRAM", "roles": ["inputs", "outputs", "accumulators", "vector"], "level": 1,
         "bytes": {"value": 640 * KiB, "source": f"{_OPS}: NRAM 768 KB, about 640 KB usable"},
         "alignment": {"value": 128, "source": f"{_BANG}: NFU_ALIGN 128 B"},
         "double_buffered": {"value": True, "source": "assumed: kernels split NRAM into "
                             "ping/pong halves to overlap DMA with compute"},
         "fill_bytes_per_cycle": {"value": 128.0, "source": "assumed: one 128-byte row per "
                                  "cycle from SRAM (not published)"}},
        {"name": "WRAM", "roles": ["weights"], "level": 1,
         "bytes": {"value": 1024 * KiB, "source": f"{_OPS}: WRAM 1024 KB"},
         "alignment": {"value": 64, "source": f"{_OPS}: WRAM 64-byte alignment"},
         "double_buffered": {"value": False, "source": "assumed: weights stay resident and "
                             "are reloaded between tiles, not ping-ponged"},
         "fill_bytes_per_cycle": {"value": 128.0, "source": "assumed: as NRAM"}},
        {"name": "SRAM", "roles": ["inputs", "weights", "outputs"], "level": 2,
         "scope": "cluster",
         "bytes": {"value": 3968 * KiB, "source": f"{_OPS}: SRAM 4096 KB, 3968 usable"},
         "shared_by": {"value": 4, "source": f"{_BANG}: 4 MLU cores per cluster"},
         "alignment": {"value": 64, "source": f"{_OPS}: 64-byte alignment"},
         "double_buffered": {"value": True, "source": "assumed: the memory core fills one "
                             "half while the MLU cores read the other"}},
    ],
}
