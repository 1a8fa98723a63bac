"""Every IR op, registered on import. One module per family of ops; see registry.py."""

from ir.ops import (  # noqa: F401  (registration side effects)
    binary,
    control,
    conv,
    elementwise,
    gather,
    layout,
    matmul,
    norm,
    pool,
    qconv,
    qelementwise,
    qpool,
    quant,
    reduce,
    resize,
    shape,
)
from ir.ops.registry import OPS, Attr, OpDef, OpError, get_op, register

__all__ = ["OPS", "Attr", "OpDef", "OpError", "get_op", "register"]
