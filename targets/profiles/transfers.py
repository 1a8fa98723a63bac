"""The fixed cost of one DMA transfer, for the profiles' ``offchip.setup_bytes``.

Huawei's Ascend C best practices ("Transferring a Large Data Block at a Time", CANN 8.0
operator development guide) measure the bandwidth a single transfer between global memory
and the Unified Buffer reaches against its size, and state that it reaches the optimal
bandwidth from 16 KB on. Modelled as a fixed setup s per transfer, a transfer of b bytes
takes (b + s) / bandwidth; taking "optimal" as 90% of the link's bandwidth at 16 KB gives
s = 16 KiB / 9, about 1.8 KB. The guide shows the curve only as a figure, so the 90% reading
is an estimate; no other vendor publishes a figure, and the same estimate stands for them.
"""

from __future__ import annotations

#: the transfer size from which one transfer reaches the optimal bandwidth (Ascend C guide)
FULL_RATE_BYTES = 16 * 1024
#: the share of the link's bandwidth read as "optimal" at that size (an estimate)
FULL_RATE_EFFICIENCY = 0.9

SETUP_BYTES = round(FULL_RATE_BYTES * (1 - FULL_RATE_EFFICIENCY) / FULL_RATE_EFFICIENCY)


def setup_source(measured_on: str = "") -> str:
    """The source text of a profile's setup_bytes."""
    where = "" if not measured_on else f"; {measured_on}"
    return (f"estimate: Ascend C best practices, a transfer reaches the optimal bandwidth "
            f"from 16 KB; read as {FULL_RATE_EFFICIENCY:.0%} there, a fixed setup worth "
            f"{SETUP_BYTES} bytes per transfer (targets/profiles/transfers.py){where}")
