"""The kernel families of the tvm target; importing this package registers every builder
(targets/tvm/registry.py)."""

from targets.tvm.kernels import floating, movement, pool, qconv, qelementwise, qlinear, quant

__all__ = ["floating", "movement", "pool", "qconv", "qelementwise", "qlinear", "quant"]
