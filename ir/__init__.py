"""qnnc's intermediate representation: typed SSA graphs, the op registry, the text format,
the verifier and the reference interpreter."""

from ir import ops  # noqa: F401  (registers every op)
from ir.build import make_node
from ir.graph import Graph, Node, Value
from ir.types import DType, QuantParams, TensorType

__all__ = ["DType", "Graph", "Node", "QuantParams", "TensorType", "Value", "make_node"]
