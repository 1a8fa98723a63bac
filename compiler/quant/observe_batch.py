"""One calibration sample's small float32 tensors folded into their histograms in one C call.

Calibrating a small model (a decoder step, a VAD chunk) is bound by the cost of each tensor's
histogram update, not by its values: a 1x128 activation costs microseconds of Python calls
for a few hundred nanoseconds of binning. A :class:`SampleBatch`, made once per graph, says
which of the graph's outputs are folded together: after the interpreter has run a sample,
they are concatenated and :func:`native_hist.update_many_f32` gives each segment the update
:meth:`Histogram.update` would give it alone (extremes, then binning when the width holds
them); the few segments it does not count (a first batch, a wider range, NaN/inf) are
updated alone. Each histogram sees one tensor per sample, in sample order, so its counts and
extremes are the ones the per-tensor path gives, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from compiler.quant.native_hist import library, update_many_f32
from compiler.quant.observers import Histogram, Observer, _HistogramObserver
from ir.graph import Graph

#: tensors above this many elements are updated on their own (their binning costs more than
#: the call, and the copy into the batch would only add to it)
BATCH_MAX = 1 << 16
#: a sample's outputs are all kept until its batch is folded: only for graphs whose outputs
#: hold at most this many elements per sample
KEPT_MAX = 1 << 22

#: (node index, output index) of a value in the interpreter's per-node outputs
Where = tuple[int, int]


def _histogram(obs: Observer) -> Histogram | None:
    """The histogram an observer's update folds into, when the update is exactly that."""
    if isinstance(obs, _HistogramObserver) and \
            type(obs).update is _HistogramObserver.update:
        h = obs.hist
        return h if h.native else None
    return None


class SampleBatch:
    """Which outputs of ``graph`` one call folds (``picks``) and which are observed alone
    (``rest``: observed values of other types or sizes, with their names)."""

    def __init__(self, graph: Graph, observers: Mapping[str, Observer]) -> None:
        self.picks: list[Where] = []
        self.hists: list[Histogram] = []
        self.rest: list[tuple[int, int, str]] = []
        ends: list[int] = []
        for i, node in enumerate(graph.nodes):
            for j, v in enumerate(node.outputs):
                obs = observers.get(v.name)
                if obs is None:
                    continue
                h = _histogram(obs)
                size = v.type.size
                if h is not None and v.type.dtype.np == np.float32 and 0 < size <= BATCH_MAX:
                    self.picks.append((i, j))
                    self.hists.append(h)
                    ends.append((ends[-1] if ends else 0) + size)
                else:
                    self.rest.append((i, j, v.name))
        self.ends = np.array(ends, np.int64)
        self.pointers = np.array([h.counts.ctypes.data for h in self.hists], np.int64)
        self.extremes = np.empty(2 * len(ends), np.float64)
        self.status = np.empty(len(ends), np.int64)
        self.bins = self.hists[0].bins if self.hists else 0
        assert all(h.bins == self.bins for h in self.hists), "one calibrator, one bin count"

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "pointers"}

    def __setstate__(self, state: dict[str, object]) -> None:
        # a copy (of a whole calibrator) folds into its own histograms' counts: their
        # addresses anew, never the originals'
        self.__dict__.update(state)
        self.pointers = np.array([h.counts.ctypes.data for h in self.hists], np.int64)

    @classmethod
    def make(cls, graph: Graph, observers: Mapping[str, Observer]) -> SampleBatch | None:
        """The batch of ``graph``, or None where it would not pay or is not possible (no C
        library, nothing to batch, outputs too large to keep for a whole sample)."""
        if library() is None:
            return None
        if sum(v.type.size for n in graph.nodes for v in n.outputs) > KEPT_MAX:
            return None
        batch = cls(graph, observers)
        return batch if batch.picks else None

    def fold(self, outputs: Sequence[Sequence[np.ndarray]]) -> None:
        """Fold one sample's picked values (``outputs``: each node's outputs, in order) into
        their histograms."""
        arrays = [outputs[i][j] for i, j in self.picks]
        x = np.concatenate(arrays, axis=None)
        hists = self.hists
        for h in hists:  # batches another path deferred go first, in their order
            if h._ends:
                h.flush()
        widths = np.array([h.width for h in hists], np.float64)
        if not update_many_f32(x, self.ends, widths, self.bins, self.pointers,
                               self.extremes, self.status):
            for h, a in zip(hists, arrays):
                h.update(a)
            return
        ext = self.extremes.tolist()
        for k, (h, st) in enumerate(zip(hists, self.status.tolist())):
            if st != 1:  # not counted: the single update sets the width, grows or drops
                h.update(arrays[k])
                continue
            lo, hi = ext[2 * k], ext[2 * k + 1]
            if lo < h.min:
                h.min = lo
            if hi > h.max:
                h.max = hi
