"""Per-target C for the accelerator profiles: kernels that stage every tile through static
arrays of exactly the chip's buffer sizes, in the chip's layouts and the tile order the tiler
chose, counting the bytes moved per buffer level and the MACs as they go. The code runs on the
host, so it is checked bit for bit against the reference interpreter, and its counters are
checked against the cost model: the model and the code describe one schedule.
"""
