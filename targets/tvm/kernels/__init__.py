"""The kernel families of the tvm target; importing this package registers every builder
(targets/tvm/registry.py)."""

from targets.tvm.kernels import (
    batchnorm,
    float_elementwise,
    float_nn,
    float_pool,
    floating,
    indexing,
    logic,
    movement,
    pool,
    qconv,
    qelementwise,
    qlinear,
    qrecurrent,
    quant,
    reduce,
    resize,
)

__all__ = ["batchnorm", "float_elementwise", "float_nn", "float_pool", "floating", "indexing",
           "logic", "movement", "pool", "qconv", "qelementwise", "qlinear", "qrecurrent", "quant",
           "reduce", "resize"]
