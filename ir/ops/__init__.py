"""Every IR op, registered on import. One module per family of ops; see registry.py."""

from ir.ops import (  # noqa: F401  (registration side effects)
    binary,
    bitwise,
    control,
    conv,
    dynamic,
    elementwise,
    gather,
    indexing,
    layout,
    loss,
    matmul,
    matrix,
    norm,
    pool,
    qconv,
    qelementwise,
    qpool,
    qrecurrent,
    quant,
    recurrent,
    reduce,
    resize,
    shape,
    signal,
    vision,
)
from ir.ops.registry import OPS, Attr, OpDef, OpError, get_op, register

__all__ = ["OPS", "Attr", "OpDef", "OpError", "get_op", "register"]
