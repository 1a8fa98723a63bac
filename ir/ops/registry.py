"""The op registry: each op's attributes, type inference and reference semantics, in one place.

An op is declared once, as a small class decorated with :func:`register`::

    @register
    class Relu:
        \"\"\"y = max(x, 0)\"\"\"
        operands = ("x",)
        attrs: dict[str, Attr] = {}
        quantized = qforms.lut       # traits: see below
        tiled = "eltwise"

        @staticmethod
        def infer(ins: list[TensorType | None], a: Attrs) -> list[TensorType]:
            return [ins[0].with_shape(ins[0].shape)]

        @staticmethod
        def compute(ins: list[np.ndarray | None], a: Attrs) -> list[np.ndarray]:
            return [np.maximum(ins[0], 0).astype(ins[0].dtype)]

``operands`` names the inputs in order (``"b?"``: optional, may be omitted or None;
``"values*"``: the rest, any number); passes read them by name (``node.w``), never by
position. ``infer`` maps input types to output types and raises :class:`OpError` on invalid
inputs; ``compute`` is the numpy reference that the interpreter runs and that every code
generator must agree with.

Traits, declared on the op and read from the registry by everything that needs them:

- ``moves_data``: the op only moves or copies elements (Reshape, Concat, Gather, ...): it
  costs no arithmetic.
- ``rearranges``: its one result holds each element of its first operand exactly once, in
  another order or shape (Reshape, Transpose, Identity): calibration lets the two share an
  observer (compiler/quant/same_values.py).
- ``stacks``: how calibration may run samples stacked along axis 0 through it
  (compiler/quant/sample_stack.py): ``"together"``, computed on the stack, each sample's
  result bit for bit what it gets alone (Conv, Relu, MaxPool: no sum changes its order with
  the batch; Quantize, QConv, QLinear, Dequantize: exact integer sums, per-element
  boundaries); ``"alone"``, computed sample by sample (Gemm, MatMul: BLAS takes another kernel
  for another row count); ``"view"``, the operand's elements in the same order, reshaped
  (Reshape). None: a graph with the op runs its samples one at a time.
- ``flops``: how its work counts, ``(node) -> (MACs, FLOPs)`` (see ir/ops/cost.py); default
  one FLOP per output element, none for ops that move data.
- ``quantized``: its quantised form, ``(ctx, node) -> None`` (see ir/qforms.py), which the
  calibration quantiser and the QDQ lowering both apply; None: it stays float.
- ``clamp``: for an activation a producing layer can absorb (Relu, Clip), its clamp bounds in
  the producer's output codes, ``(node, dtype, scale, zero_point) -> (lo, hi)``.
- ``tiled``: the kind of tiling problem it is on an accelerator (conv, matmul, pool, eltwise),
  and ``staged``: whether the accelerator code generators stage it through the chip's buffers
  (the integer kernels), rather than running it as host C.
- ``counted``: for an op whose output extent depends on the data (NonZero, Unique, ...),
  ``(attrs) -> [axis or None per output but the last]``: each output has a static upper-bound
  shape, the last output is an i64 scalar holding the true extent of the listed axis at run
  time (see ir/ops/dynamic.py and docs/architecture.md "Data-dependent shapes").
- ``domain``: for an op whose meaning stops at some operand values (an index outside its
  axis), ``(consts, types, attrs) -> problem or None``, ``consts`` holding the operands
  that are constants (None for the others): the compiler rejects a node whose constants
  prove it out of its domain (ir/domain.py; docs/architecture.md "Defined meaning").

Frontend, passes, interpreter, quantiser, tiling, printer and code generators all key on this
registry; no op is described twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.types import TensorType

Attrs = Mapping[str, Any]
InferFn = Callable[[list[TensorType | None], Attrs], list[TensorType]]
ComputeFn = Callable[[list[np.ndarray | None], Attrs], list[np.ndarray]]
if TYPE_CHECKING:
    from ir.graph import Node
FlopsFn = Callable[["Node"], tuple[int, int]]
QuantFn = Callable[[Any, "Node"], None]
ClampFn = Callable[["Node", Any, float, int], tuple[int, int]]
DomainFn = Callable[[list[np.ndarray | None], list[TensorType | None], Mapping[str, Any]],
                    "str | None"]
TILED_KINDS = ("conv", "matmul", "pool", "eltwise")
STACK_KINDS = ("together", "alone", "view")


def _stacks(name: str, kind: str | None) -> str | None:
    if kind is not None and kind not in STACK_KINDS:
        raise ValueError(f"op {name!r}: stacks must be one of {STACK_KINDS}, got {kind!r}")
    return kind


class OpError(ValueError):
    """An op was given inputs or attributes it cannot accept."""


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

_KINDS = ("int", "float", "str", "bool", "ints", "floats", "strs")



@dataclass(frozen=True)
class Attr:
    """An attribute's kind (int, float, str, bool, ints, floats, strs), default and meaning."""

    kind: str
    default: Any = REQUIRED
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown attribute kind {self.kind!r}")

    def coerce(self, value: Any, where: str, key: str = "") -> Any:
        """Check ``value`` against the kind and return it in canonical Python form; an
        error names ``where`` (and ``.key`` when given)."""
        k = self.kind
        try:
            if k == "int":
                if isinstance(value, bool) or int(value) != value:
                    raise TypeError
                return int(value)
            if k == "float":
                return float(value)
            if k == "bool":
                if value not in (0, 1, True, False):
                    raise TypeError
                return bool(value)
            if k == "str":
                if not isinstance(value, str):
                    raise TypeError
                return value
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise TypeError
            items = list(value)
            if k == "ints":
                if any(isinstance(v, bool) or int(v) != v for v in items):
                    raise TypeError
                return [int(v) for v in items]
            if k == "floats":
                return [float(v) for v in items]
            if not all(isinstance(v, str) for v in items):
                raise TypeError
            return list(items)
        except (TypeError, ValueError):
            at = f"{where}.{key}" if key else where
            raise OpError(f"{at}: expected {k}, got {value!r}") from None


@dataclass(frozen=True)
class OpDef:
    """Everything the compiler knows about one IR op."""

    name: str
    doc: str
    attrs: Mapping[str, Attr]
    operands: tuple[str, ...]  # names in order; the last repeats when ``variadic``
    min_inputs: int
    max_inputs: int  # -1: variadic
    num_outputs: int  # -1: decided by infer
    infer: InferFn
    compute: ComputeFn
    # quantised ops read their operands' quant params, which live in the types: their
    # compute takes (ins, attrs, in_types, out_types); call it through ``evaluate``
    typed: bool = False
    # traits (module docstring)
    moves_data: bool = False
    rearranges: bool = False
    stacks: str | None = None
    flops: FlopsFn | None = None
    quantized: QuantFn | None = None
    clamp: ClampFn | None = None
    tiled: str | None = None
    staged: bool = False
    counted: Callable[[Attrs], list[int | None]] | None = None
    domain: DomainFn | None = None
    # region ops (If, Loop, Scan; ir/ops/control.py) own graph bodies, named here in order;
    # their infer and compute also receive the node's bodies (``regions``)
    regions: tuple[str, ...] = ()
    #: the attribute names it accepts (its own and the annotations)
    _known: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_known", frozenset(self.attrs) | frozenset(ANNOTATIONS))

    @property
    def variadic(self) -> bool:
        return self.max_inputs < 0

    def operand_index(self, name: str) -> int:
        """The position of operand ``name`` (for a variadic one, where it starts)."""
        try:
            return self.operands.index(name)
        except ValueError:
            raise AttributeError(f"{self.name} has no operand {name!r}; its operands are "
                                 f"{', '.join(self.operands) or 'none'}") from None

    def infer_types(
        self, in_types: list[TensorType | None], attrs: Attrs, regions: Sequence[Any] = ()
    ) -> list[TensorType]:
        """The output types; a region op also checks its bodies against its operands."""
        self.check_storage_types(in_types)
        if self.regions:
            if len(regions) != len(self.regions):
                raise OpError(f"{self.name}: needs {len(self.regions)} region(s) "
                              f"({', '.join(self.regions)}), got {len(regions)}")
            return self.infer(in_types, attrs, list(regions))  # type: ignore[call-arg]
        if regions:
            raise OpError(f"{self.name}: takes no regions, got {len(regions)}")
        return self.infer(in_types, attrs)

    def evaluate(
        self,
        ins: list[np.ndarray | None],
        attrs: Attrs,
        in_types: list[TensorType | None],
        out_types: list[TensorType],
        regions: Sequence[Any] = (),
    ) -> list[np.ndarray]:
        """Run the reference semantics; typed ops also receive the node's types, region
        ops their bodies."""
        if self.regions:
            return self.compute(ins, attrs, list(regions))  # type: ignore[call-arg]
        if self.typed:
            return self.compute(ins, attrs, in_types, out_types)  # type: ignore[call-arg]
        return self.compute(ins, attrs)

    def normalize_attrs(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults, coerce kinds and reject unknown or missing attributes.

        Annotations (:data:`ANNOTATIONS`) are accepted on every op and kept only when given:
        they record target decisions (storage layout, tiles) and never change the values an
        op computes."""
        if not attrs.keys() <= self._known:
            unknown = set(attrs) - self._known
            raise OpError(f"{self.name}: unknown attribute(s) {sorted(unknown)}")
        out: dict[str, Any] = {}
        for key, spec in self.attrs.items():
            if key in attrs and attrs[key] is not None:
                out[key] = spec.coerce(attrs[key], self.name, key)
            elif spec.default is REQUIRED:
                raise OpError(f"{self.name}: attribute {key!r} is required")
            else:
                d = spec.default
                out[key] = list(d) if isinstance(d, (list, tuple)) else d
        for key, spec in ANNOTATIONS.items():
            if key not in self.attrs and attrs.get(key) is not None:
                out[key] = spec.coerce(attrs[key], self.name, key)
        return out

    def check_storage_types(self, types: Sequence[TensorType | None]) -> None:
        """Storage-only element types (float8, float4, int4, int2) reach only ops that
        convert them (Cast, QuantizeLinear, DequantizeLinear) or move them."""
        if self.moves_data or self.name in STORAGE_TYPE_OPS:
            return
        for t in types:
            if t is not None and t.dtype.is_storage_only:
                raise OpError(
                    f"{self.name}: element type {t.dtype.value} only holds data; convert it "
                    f"with Cast or DequantizeLinear first")

    def check_arity(self, n: int) -> None:
        hi = self.max_inputs
        if n < self.min_inputs or (hi >= 0 and n > hi):
            want = f"{self.min_inputs}" if hi == self.min_inputs else (
                f"{self.min_inputs}..{'*' if hi < 0 else hi}"
            )
            raise OpError(f"{self.name}: takes {want} inputs, got {n}")


OPS: dict[str, OpDef] = {}

#: ops that convert storage-only element types (DType.is_storage_only) besides data movement
STORAGE_TYPE_OPS = frozenset({"Cast", "QuantizeLinear", "DequantizeLinear"})

#: Attributes any node may carry, set by target passes. They describe how a target runs the
#: node, not what it computes: the interpreter ignores them.
ANNOTATIONS: dict[str, Attr] = {
    "layout": Attr("str", "", "storage layout of the outputs (see targets/layouts.py); "
                   "absent = plain row-major"),
    "weight_layout": Attr("str", "", "storage layout of the constant weight operand"),
    "tile": Attr("ints", [], "tile sizes (n, m, oh, ow, c) per buffer level, innermost first"),
    "tile_order": Attr("strs", [], "loop order per level (outer to inner), innermost first"),
    "tile_target": Attr("str", "", "the target the tiles were chosen for"),
    "l2": Attr("strs", [], "operands (inputs, epilogue, outputs) the chip's L2 holds between "
               "layers instead of off-chip memory (pass keep-in-l2)"),
    "epilogue": Attr("str", "", "on a staged product: the operand of the element-wise layer "
                     "after it that its result feeds; that layer runs in this one's output "
                     "stage (pass fuse-eltwise)"),
    "fused": Attr("str", "", "'epilogue': this element-wise layer runs in the output stage of "
                  "the layer before it, which computes its operand (pass fuse-eltwise)"),
}


def parse_operands(op: str, spec: Sequence[str]) -> tuple[tuple[str, ...], int, int]:
    """(names, min inputs, max inputs or -1) of an ``operands`` declaration."""
    names, lo, hi, optional = [], 0, 0, False
    for k, item in enumerate(spec):
        base = item.rstrip("?*")
        if not base.isidentifier() or base.startswith("_") or base in _NODE_FIELDS:
            raise ValueError(f"op {op!r}: operand name {item!r} is not usable")
        names.append(base)
        if item.endswith("*"):
            if k != len(spec) - 1:
                raise ValueError(f"op {op!r}: only the last operand may repeat")
            return tuple(names), lo + 1 if not optional else lo, -1
        if item.endswith("?"):
            optional = True
        elif optional:
            raise ValueError(f"op {op!r}: required operand {item!r} after an optional one")
        else:
            lo += 1
        hi += 1
    return tuple(names), lo, hi


#: attributes of ir.graph.Node, which operand names must not shadow
_NODE_FIELDS = frozenset({"op", "inputs", "outputs", "attrs", "name", "sources", "regions"})


def register(cls: type) -> type:
    """Class decorator: turn a small op declaration into an :class:`OpDef` in :data:`OPS`."""
    name = getattr(cls, "name", cls.__name__)
    if name in OPS:
        raise ValueError(f"op {name!r} is registered twice")
    names, lo, hi = parse_operands(name, getattr(cls, "operands", ("x",)))
    lo = getattr(cls, "min_inputs", lo)  # e.g. If: a variadic operand that may be empty
    tiled = getattr(cls, "tiled", None)
    if tiled is not None and tiled not in TILED_KINDS:
        raise ValueError(f"op {name!r}: tiled must be one of {TILED_KINDS}, got {tiled!r}")

    OPS[name] = OpDef(
        name=name,
        doc=(cls.__doc__ or "").strip(),
        attrs=dict(getattr(cls, "attrs", {})),
        operands=names,
        min_inputs=lo,
        max_inputs=hi,
        num_outputs=getattr(cls, "outputs", 1),
        infer=cls.infer,
        compute=cls.compute,
        typed=getattr(cls, "typed", False),
        moves_data=getattr(cls, "moves_data", False),
        rearranges=getattr(cls, "rearranges", False),
        stacks=_stacks(name, getattr(cls, "stacks", None)),
        flops=getattr(cls, "flops", None),
        quantized=getattr(cls, "quantized", None),
        clamp=getattr(cls, "clamp", None),
        tiled=tiled,
        staged=getattr(cls, "staged", False),
        counted=getattr(cls, "counted", None),
        domain=getattr(cls, "domain", None),
        regions=tuple(getattr(cls, "regions", ())),
    )
    return cls


def get_op(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise OpError(f"unknown op {name!r}") from None


def require(cond: bool, msg: str) -> None:
    """Raise :class:`OpError` with ``msg`` unless ``cond`` holds (for use in ``infer``)."""
    if not cond:
        raise OpError(msg)
