"""ONNX op converters, one module per family; importing this registers them all."""

from compiler.frontend.ops import (  # noqa: F401  (registration side effects)
    binary,
    control,
    conv,
    elementwise,
    gather,
    generate,
    matmul,
    norm,
    pool,
    qlinear,
    quant,
    reduce,
    resize,
    shape,
)
