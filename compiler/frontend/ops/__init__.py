"""ONNX op converters, one module per family; importing this registers them all."""

from compiler.frontend.ops import (  # noqa: F401  (registration side effects)
    binary,
    bitwise,
    conv,
    elementwise,
    gather,
    generate,
    indexing,
    matmul,
    matrix,
    norm,
    pool,
    qlinear,
    quant,
    reduce,
    resize,
    sequence,
    shape,
    signal,
)
