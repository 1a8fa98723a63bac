"""A layer seen by the tiler: a five-dimensional loop nest over (n, m, oh, ow, c).

Every tiled op becomes the same shape of problem: n = batch, m = output channels (columns of a
matmul), oh/ow = output rows/columns (a matmul has oh = its rows and ow = 1), c = the reduction
(input channels per group, or K). Kernel taps are never split: a tile always holds whole
kh x kw windows. Pooling and elementwise ops are problems with c = 1 and no weights that run on
the vector unit; so are grouped convolutions whose groups are narrower than the channel block
(depthwise), which a matrix unit would mostly pad.

Footprints are in bytes and include the layout's padding: activation channels round up to the
profile's channel block (NC1HWC0's C0), matrix tiles to the MAC array's block.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from targets.profiles.schema import Profile

DIMS = ("n", "m", "oh", "ow", "c")
N, M, OH, OW, C = range(5)
Tile = tuple[int, int, int, int, int]


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def pad(a: int, b: int) -> int:
    return cdiv(a, b) * b


@lru_cache(maxsize=4096)
def groups_touched(m: int, per_group: int, tm: int) -> int:
    """The most groups one tile of ``tm`` output channels spans, over the tiles at multiples
    of ``tm`` (a tile that straddles a group boundary reads both groups' inputs)."""
    most = 0
    for m0 in range(0, m, tm):
        last = min(m0 + tm, m) - 1
        most = max(most, last // per_group - m0 // per_group + 1)
    return most


@dataclass(frozen=True)
class Problem:
    """One layer's loop nest and element sizes; built by :func:`targets.tiling.problem_of`."""

    name: str
    op: str
    unit: str  # "matrix" or "vector"
    sizes: Tile
    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    dilations: tuple[int, int] = (1, 1)
    in_hw: tuple[int, int] = (1, 1)  # unpadded input rows / columns
    in_channels: int = 0  # total input channels (compulsory bytes)
    m_per_group: int = 0  # 0: not grouped (every m reads every c)
    n_inputs: int = 1
    has_weights: bool = True
    weights_batched: bool = False
    in_bytes: int = 1
    w_bytes: int = 1
    out_bytes: int = 1
    acc_bytes: int = 4
    ops_per_output: int = 1  # vector ops per output element (pool window, depthwise taps)
    dtype: str = "i8"
    #: operands the chip's L2 holds between layers (their outermost moves cross the L2 link)
    resident: tuple[str, ...] = ()
    #: an element-wise layer run in this one's epilogue (targets/fusion.py): its vector ops
    #: per output element (0: none) and its other streamed operands, each the output's size
    epilogue_ops: int = 0
    epilogue_inputs: int = 0
    #: a vector problem on plain (unblocked) tensors: channels are not padded
    plain: bool = False

    def block(self, prof: Profile) -> int:
        """The channel padding of the layer's stored activations."""
        return 1 if self.plain else prof.layout.channel_block

    # -- geometry ---------------------------------------------------------------------
    def span(self, t: int, axis: int) -> int:
        """Input rows (axis 0) or columns (1) read by ``t`` output rows/columns, halo
        included, never more than the input has (padding is generated, not moved)."""
        k, s, d = self.kernel[axis], self.strides[axis], self.dilations[axis]
        e = (k - 1) * d + 1
        return min(self.in_hw[axis], t * min(s, e) + max(0, e - s))

    def in_chans(self, tm: int, tc: int) -> int:
        """Input channels a tile of ``tm`` output and ``tc`` reduction channels reads."""
        if self.unit == "vector" and not self.has_weights:
            return tm  # pooling / elementwise: channel in = channel out
        if self.m_per_group:
            return groups_touched(self.sizes[M], self.m_per_group, tm) * tc
        return tc

    @property
    def inputs_depend_on_m(self) -> bool:
        return bool(self.m_per_group) or (self.unit == "vector" and not self.has_weights)

    @property
    def macs(self) -> int:
        """Useful multiply-accumulates (vector problems: useful vector ops)."""
        n, m, oh, ow, c = self.sizes
        if self.unit == "vector":
            return n * m * oh * ow * self.ops_per_output
        return n * m * oh * ow * c * self.kernel[0] * self.kernel[1]

    # -- footprints (bytes of one tile, layout padding included) -----------------------
    def input_bytes(self, t: Tile, prof: Profile) -> int:
        cb = self.block(prof)
        ch = pad(self.in_chans(t[M], t[C]), cb)
        return (self.n_inputs * t[N] * ch * self.span(t[OH], 0) * self.span(t[OW], 1)
                * self.in_bytes)

    def weight_bytes(self, t: Tile, prof: Profile) -> int:
        if not self.has_weights:
            return 0
        taps = self.kernel[0] * self.kernel[1]
        nb = t[N] if self.weights_batched else 1
        if self.unit == "vector":
            return nb * t[M] * t[C] * taps * self.w_bytes
        _, k0, n0 = prof.matrix.block[self.dtype]
        return nb * pad(t[M], n0) * pad(t[C], k0) * taps * self.w_bytes

    def acc_tile_bytes(self, t: Tile, prof: Profile) -> int:
        if not self.acc_bytes:
            return 0
        if self.unit == "vector":
            return t[N] * t[M] * t[OH] * t[OW] * self.acc_bytes
        m0, _, n0 = prof.matrix.block[self.dtype]
        return pad(t[N] * t[OH] * t[OW], m0) * pad(t[M], n0) * self.acc_bytes

    def output_bytes(self, t: Tile, prof: Profile, elem: int | None = None) -> int:
        cb = self.block(prof)
        e = self.out_bytes if elem is None else elem
        return t[N] * pad(t[M], cb) * t[OH] * t[OW] * e

    def epilogue_bytes(self, t: Tile, prof: Profile) -> int:
        """One output tile of each operand the epilogue loads (8-bit, channels padded)."""
        return self.epilogue_inputs * self.output_bytes(t, prof, 1)

    # -- work ---------------------------------------------------------------------------
    def tile_work(self, t: Tile, prof: Profile) -> float:
        """Cycles of one core's compute unit for one level-1 tile (padded to the block)."""
        if self.unit == "vector":
            elems = t[N] * t[M] * t[OH] * t[OW] * self.ops_per_output
            return elems / prof.vector.elems_per_cycle(max(self.in_bytes, 1))
        m0, k0, n0 = prof.matrix.block[self.dtype]
        macs = (pad(t[N] * t[OH] * t[OW], m0) * pad(t[M], n0) * pad(t[C], k0)
                * self.kernel[0] * self.kernel[1])
        return macs / prof.matrix.macs_per_cycle[self.dtype]

    def epilogue_work(self, t: Tile, prof: Profile) -> float:
        """Cycles of the vector unit running the epilogue on one level-1 output tile (the
        whole box, padded channels included, as the generated code runs it)."""
        if not self.epilogue_ops:
            return 0.0
        elems = self.output_bytes(t, prof, 1) * self.epilogue_ops
        return elems / prof.vector.elems_per_cycle(1)

    def compulsory_bytes(self) -> int:
        """Each input, weight and output moved once, unpadded: the floor of off-chip traffic
        (operands held in the L2 need none)."""
        n, m, oh, ow, c = self.sizes
        cin = self.in_channels or self.in_chans(m, c)
        x = self.n_inputs * n * cin * self.span(oh, 0) * self.span(ow, 1) * self.in_bytes
        w = 0
        if self.has_weights:
            w = (n if self.weights_batched else 1) * m * c * self.kernel[0] * self.kernel[1]
            w *= self.w_bytes
        y = n * m * oh * ow * self.out_bytes
        e = 0 if "epilogue" in self.resident else self.epilogue_inputs * n * m * oh * ow
        return (0 if "inputs" in self.resident else x) + w + e + (
            0 if "outputs" in self.resident else y)

    def dims_of(self, operand: str) -> frozenset[int]:
        """The loop dims an operand's tile changes with (the others reuse it)."""
        if operand == "inputs":
            return frozenset((N, OH, OW, C) + ((M,) if self.inputs_depend_on_m else ()))
        if operand == "weights":
            return frozenset((M, C) + ((N,) if self.weights_batched else ()))
        return frozenset((N, M, OH, OW))  # outputs, and the epilogue's operands

    @property
    def operands(self) -> tuple[str, ...]:
        return ("inputs", "weights", "outputs") if self.has_weights else ("inputs", "outputs")
