"""qnnc's intermediate representation: typed SSA graphs, the op registry, the text format,
the verifier and the reference interpreter."""

from ir.blas_kernels import pin as _pin_blas

_pin_blas()  # before numpy loads: one float product for every AVX2 CPU (ir/blas_kernels.py)

from ir import ops  # noqa: E402, F401  (registers every op)
from ir.build import make_node  # noqa: E402
from ir.graph import Graph, Node, Value  # noqa: E402
from ir.types import DType, QuantParams, TensorType  # noqa: E402

__all__ = ["DType", "Graph", "Node", "QuantParams", "TensorType", "Value", "make_node"]
