"""ONNX op converters, one module per family; importing this registers them all."""

from compiler.frontend.ops import (  # noqa: F401  (registration side effects)
    attention,
    binary,
    contrib,
    contrib_attention,
    conv,
    elementwise,
    gather,
    generate,
    linear_attention,
    matmul,
    norm,
    pool,
    qlinear,
    quant,
    reduce,
    resize,
    shape,
)
