"""Calibration: run the float graph on sample data and decide every float tensor's range.

The reference interpreter runs each sample and hands every node's outputs to ``observe``; one
bounded-memory observer per float tensor (graph inputs and node results) folds them in and the
samples are dropped, so memory does not grow with the data set. Constants (weights, biases)
are not observed: their values are known, and the quantiser derives their (per-channel)
parameters from the data itself. A small network whose every op says how it stacks runs up
to 64 samples at once (compiler/quant/sample_stack.py), each sample's tensors the ones it
gets alone, observed in sample order: the same states.

Whatever the method, the model's outputs — and the logits a final Sigmoid, Softmax or Tanh
squashes into one — keep their raw observed range (:func:`raw_range_values`): their extremes
are the signal (the winning logit of a classifier or a language model, a detector's most
confident box), and a method that clips rare values saturates exactly those. On the trained
llama example this alone takes greedy INT8 tokens equal to f32 from 28/96 to 60/96 with
percentile calibration. So do the state inputs a recurrent model's caller feeds back (a
float input shaped like a float output): on the two trained Silero VAD models, 8 clips, the
share of chunks whose speech decision agrees with f32 went from 0.937 to 0.952 and from
0.955 to 0.971 with percentile calibration.

Example::

    ranges = calibrate(graph, "calib.npz", method="entropy")
    scale, zero_point = quant_params(*ranges["conv1"], "u8")
"""

from __future__ import annotations

import copy
import hashlib
import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from compiler.errors import InputError, QnncError
from compiler.quant.calib_data import calibration_data
from compiler.quant.observe_batch import SampleBatch
from compiler.quant.observe_thread import ObserveThread
from compiler.quant.observers import (
    DEFAULT_PERCENTILE,
    Observer,
    PercentileObserver,
    make_observer,
)
from compiler.quant.range_choice import KEEP_SAMPLES, candidates, choose, entropy_ranges
from compiler.quant.same_values import rearranged
from compiler.quant.sample_stack import StackPlan
from compiler.quant.weight_memo import WeightMemo
from ir.graph import Graph, Node
from ir.interpreter import InterpreterError, Schedule, run
from ir.qforms import input_means, passes_codes_on

Method = Literal["minmax", "percentile", "entropy", "mse", "layerwise", "auto"]
#: ``layerwise`` picks one of the other four per tensor (compiler/quant/range_choice.py);
#: ``auto`` picks percentile or entropy for the whole model (compiler/quant/method_choice.py)
METHODS: tuple[Method, ...] = ("minmax", "percentile", "entropy", "mse", "layerwise", "auto")
#: the method compile uses unless told otherwise: the most accurate across the trained models
DEFAULT_METHOD: Method = "auto"
#: ``auto`` scores its candidates on the first calibration samples: as many as hold this
#: many input values (one image), at most AUTO_KEEP (small inputs: VAD chunks, tokens)
AUTO_KEEP, AUTO_KEEP_VALUES = 4, 1 << 14
#: ``auto``'s entropy candidate: searched on the histogram folded to this many bins, every
#: this many thresholds first (range_choice.entropy_range; on the llama example's 136 tensors
#: 0.04 s, and 0.05 s for layerwise's search of all 2048 bins, every 16th first, since the
#: divergences come from prefix sums: the folding was chosen when the search cost 0.7 s)
AUTO_ENTROPY_BINS, AUTO_ENTROPY_STRIDE = 512, 4
Range = tuple[float, float]
Progress = Callable[[int, int | None], None]
#: float elements per sample above which a graph's tensors are observed on a second thread
THREADED_ELEMENTS = 1 << 20
#: interpreter schedules a calibrator keeps (one per graph, i.e. per shape of the samples)
SCHEDULES_KEPT = 4


#: ops that squash the logits feeding them into a model output (the logits keep their range)
SQUASHING_OPS = frozenset({"Sigmoid", "Softmax", "LogSoftmax", "Tanh"})


def raw_range_values(graph: Graph) -> set[str]:
    """Names of the tensors calibrated to their raw (min, max) whatever the method: the
    graph's outputs, the input of a Sigmoid/Softmax/LogSoftmax/Tanh that produces one (and,
    back through ops that pass codes on, such as a YOLO head's Reshape and Transpose, the
    tensor whose codes they carry), and
    every float input shaped like a float output — a recurrent state the caller feeds back
    (Silero VAD's ``state`` in, ``stateN`` out), which then enters with the range it left
    with instead of being clipped on every call."""
    outs = {id(v) for v in graph.outputs}
    names = {v.name for v in graph.outputs}
    out_shapes = {tuple(v.type.shape) for v in graph.outputs if v.type.dtype.is_float}
    names |= {v.name for v in graph.inputs
              if v.type.dtype.is_float and tuple(v.type.shape) in out_shapes}
    for n in graph.nodes:
        if n.op in SQUASHING_OPS and any(id(v) in outs for v in n.outputs):
            x = n.first_operand()
            if x is not None and not x.is_const:
                names.add(x.name)
    # through ops that pass their input's codes on (Reshape, Transpose, ...): their result
    # carries the parameters of the tensor they read, so that tensor keeps the raw range
    # (a YOLO head: Conv -> Reshape -> Transpose -> Sigmoid)
    producers = graph.producers()
    todo = [v for n in graph.nodes for v in n.outputs if v.name in names]
    while todo:
        p = producers.get(id(todo.pop()))
        x = p.first_operand() if p is not None and passes_codes_on(p.op) else None
        if x is not None and not x.is_const and x.name not in names:
            names.add(x.name)
            todo.append(x)
    return names


#: (node index, output index, name) of the values whose channel sums a batched run keeps
Means = list[tuple[int, int, str]]


class Calibrator:
    """One observer per non-constant float value of ``graph``; :meth:`feed` runs a sample.

    ``symmetric`` says how the ranges will be quantised (i8 symmetric vs affine u8/i8): it
    changes which range the entropy and MSE methods consider best, and which percentiles
    the percentile method takes (see :mod:`compiler.quant.observers`).
    """

    def __init__(
        self,
        graph: Graph,
        method: Method = "minmax",
        *,
        percentile: float = DEFAULT_PERCENTILE,
        symmetric: bool = False,
        bins: int = 2048,
    ) -> None:
        if method not in METHODS:
            raise QnncError(
                f"unknown calibration method {method!r}; choose one of {', '.join(METHODS)}"
            )
        self.graph = graph
        self.method = method
        if method in ("layerwise", "auto"):  # histograms to derive other ranges from
            method = "percentile"
        self._method, self._percentile = method, percentile
        self._symmetric, self._bins = symmetric, bins
        values = list(graph.inputs) + [v for n in graph.nodes for v in n.outputs]
        self.observers: dict[str, Observer] = {
            v.name: make_observer(method, percentile=percentile, symmetric=symmetric, bins=bins)
            for v in values
            if v.type.dtype.is_float and not v.is_const
        }
        #: rearranged tensors (same_values) -> the tensor whose observer they share; they
        #: are never observed themselves
        self._shared: dict[str, str] = {}
        self.samples = 0
        self._digest = hashlib.sha256()  # of the samples as fed, recorded with the model
        #: (graph, feeds) of the first samples, which ``layerwise`` and ``auto`` score their
        #: candidates on
        self.kept: list[tuple[Graph, Mapping[str, np.ndarray]]] = []
        #: tensor -> the method whose range ``layerwise`` chose
        self.choices: dict[str, str] = {}
        self._kept_values = 0  # input values of the kept samples
        #: ``auto``: the graph's outputs on each kept sample that :meth:`feed` ran
        self.kept_outputs: list[dict[str, np.ndarray]] = []
        self._chosen: dict[str, tuple[float, float]] | None = None
        #: observe on a second thread when this is above 1 (results are the same either way)
        self.threads = min(os.cpu_count() or 1, 2)
        self._sizes: dict[int, int] = {}
        self._schedules: list[tuple[Schedule, SampleBatch | None, Means]] = []
        self._stack: StackPlan | bool | None = None  # None: not looked at yet
        self.raw = raw_range_values(graph)
        # per-channel sums of the inputs of layers with weights, for bias correction: E[x_c]
        # is what weight rounding error multiplies (channels on axis 1 for a convolution, on
        # the last axis for MatMul and Gemm: _mean_inputs)
        self._sums: dict[str, np.ndarray] = {}
        self._counts: dict[str, int] = {}
        # and their per-channel extremes where features are last (2-D/3-D), for smoothing
        self._lows: dict[str, np.ndarray] = {}
        self._highs: dict[str, np.ndarray] = {}
        self._mean_of = _mean_inputs(graph, {})
        self._share(graph, set(self.observers))

    def feed(self, feeds: Mapping[str, np.ndarray], graph: Graph | None = None) -> None:
        """Run one sample through the graph (or ``graph``, another shape of the same model
        that :meth:`adopt` has taken in), observing every float tensor it computes."""
        g = graph or self.graph
        kept = len(self.kept)
        self._take_inputs(feeds, g)
        plan, batch, means = self._schedule(g)
        if self._threaded(g):  # the histograms fold on a second thread while layers run
            with ObserveThread(self.observe) as worker:
                result = run(g, feeds, observe=lambda node, outs: [
                    worker.put(v.name, a) for v, a in zip(node.outputs, outs)], schedule=plan)
        elif batch is None:
            result = run(g, feeds, observe=self._observe, schedule=plan)
        else:
            result = self._run_batched(g, feeds, plan, batch, means)
        self._took(kept, result)

    def stack_size(self) -> int:
        """How many samples :meth:`feed_stack` runs at once; 1 where the graph runs each
        alone (compiler/quant/sample_stack.py; graphs big enough to observe on a second
        thread gain nothing from stacking)."""
        if self._stack is None:
            plan = None if self._threaded(self.graph) else StackPlan.make(self.graph)
            self._stack = plan if plan is not None and plan.size > 1 else False
        return self._stack.size if self._stack else 1

    def feed_stack(self, samples: Sequence[Mapping[str, np.ndarray]]) -> bool:
        """Run up to :meth:`stack_size` samples of the graph as one stack and observe each
        sample's tensors in sample order, as :meth:`feed` would one by one (the same
        observer states). False, with nothing observed, when the graph does not stack or
        the stack fails (bad samples): the caller then feeds them one by one."""
        if len(samples) < 2 or self.stack_size() < len(samples) or not self._stack:
            return False
        try:
            runs = self._stack.run(samples)
        except Exception:  # noqa: BLE001 - fed alone, the failing sample is named
            return False
        g = self.graph
        _, batch, means = self._schedule(g)
        for feeds, (outs, result) in zip(samples, runs):
            kept = len(self.kept)
            self._take_inputs(feeds, g)
            if batch is None:
                for node, o in zip(g.nodes, outs):
                    self._observe(node, o)
            else:
                self._take_batch(outs, batch, means)
            self._took(kept, {k: a.copy() for k, a in result.items()})
        return True

    def _take_inputs(self, feeds: Mapping[str, np.ndarray], g: Graph) -> None:
        """A sample's first steps: kept (when wanted), recorded and its inputs observed."""
        self.keep(feeds, g)
        for v in g.inputs:
            a = np.ascontiguousarray(feeds[v.name])
            self._digest.update(f"{v.name} {a.dtype.str} {list(a.shape)}\n".encode())
            self._digest.update(a)  # its buffer: no copy
            self.observe(v.name, a)

    def _took(self, kept: int, result: dict[str, np.ndarray]) -> None:
        """A sample's last step: f32's outputs on it when it was kept, for auto's scores."""
        if self.method == "auto" and len(self.kept) > kept:
            self.kept_outputs.append(result)
        self.samples += 1

    def _run_batched(self, g: Graph, feeds: Mapping[str, np.ndarray], plan: Schedule,
                     batch: SampleBatch, means: Means) -> dict[str, np.ndarray]:
        """One sample whose small float32 tensors fold into their histograms in one call
        after the run (the same counts as one update each: observe_batch); its outputs."""
        outs: list[list[np.ndarray]] = []
        result = run(g, feeds, observe=lambda node, o: outs.append(o), schedule=plan)
        self._take_batch(outs, batch, means)
        return result

    def _take_batch(self, outs: list[list[np.ndarray]], batch: SampleBatch,
                    means: Means) -> None:
        batch.fold(outs)
        for i, j, name in batch.rest:
            self.observe(name, outs[i][j])
        for i, j, name in means:
            self._accumulate(name, outs[i][j])

    def keep(self, feeds: Mapping[str, np.ndarray], graph: Graph | None = None) -> None:
        """Keep a copy of one sample for the ``layerwise`` or ``auto`` choice, while fewer
        than KEEP_SAMPLES are kept (``auto``: AUTO_KEEP, or AUTO_KEEP_VALUES input values);
        :meth:`feed` does this, and callers that run the graph themselves and only
        :meth:`observe` call it too."""
        wanted = {"layerwise": KEEP_SAMPLES, "auto": AUTO_KEEP}.get(self.method, 0)
        if self.method == "auto" and self._kept_values >= AUTO_KEEP_VALUES:
            return
        if len(self.kept) < wanted:
            self._kept_values += sum(int(np.size(a)) for a in feeds.values())
            self.kept.append((graph or self.graph, {k: np.array(a) for k, a in feeds.items()}))

    def _schedule(self, g: Graph) -> tuple[Schedule, SampleBatch | None, Means]:
        """The interpreter's schedule of ``g`` and its sample batch, made once for its
        samples (a few graphs, the shapes seen last, are kept: each holds its graph)."""
        for k, made in enumerate(self._schedules):
            if made[0].graph is g:
                self._schedules.insert(0, self._schedules.pop(k))
                return made
        own = {k: obs for k, obs in self.observers.items() if k not in self._shared}
        batch = SampleBatch.make(g, own)
        # the batched values whose channel sums are kept, and the rearranged ones (no
        # observer of their own, so neither batched nor observed alone)
        picked = set(batch.picks) if batch is not None else set()
        means = [(i, j, v.name) for i, n in enumerate(g.nodes) for j, v in enumerate(n.outputs)
                 if v.name in self._mean_of and ((i, j) in picked or v.name in self._shared)]
        made = Schedule(g), batch, means
        self._schedules = [made, *self._schedules[:SCHEDULES_KEPT - 1]]
        return made

    def _share(self, graph: Graph, fresh: set[str]) -> None:
        """Let ``graph``'s rearranged tensors share their source's observer where both
        observers are ``fresh`` (nothing observed yet: the same states from here on). A
        tensor that shares one but is not that rearrangement in ``graph`` (another shape
        profile computes it otherwise, or computes only one of the two) takes a copy of it,
        the state its own observer would have reached, and is observed on its own from
        then on."""
        found = rearranged(graph)
        seen = {v.name for v in graph.inputs} | {v.name for n in graph.nodes for v in n.outputs}
        for name, src in list(self._shared.items()):
            if (name in seen or src in seen) and found.get(name) != src:
                self.observers[name] = copy.deepcopy(self.observers[name])
                del self._shared[name]
                self._schedules = []  # their batches leave it out
        for name, src in found.items():
            if name in fresh and src in fresh and name not in self._shared:
                self.observers[name] = self.observers[src]
                self._shared[name] = src

    def _threaded(self, g: Graph) -> bool:
        """Whether ``g``'s samples are observed on a second thread: on a machine with more
        than one core, for graphs whose float tensors per sample are large enough that the
        overlap pays for the hand-over (small ones are bound by Python, not by binning)."""
        if self.threads <= 1:
            return False
        if id(g) not in self._sizes:
            self._sizes[id(g)] = sum(v.type.size for n in g.nodes for v in n.outputs
                                     if v.name in self.observers and v.name not in self._shared)
        return self._sizes[id(g)] >= THREADED_ELEMENTS

    def adopt(self, graph: Graph) -> None:
        """Observe ``graph``'s tensors too: the same model imported at another shape, whose
        tensors share names (and so observers) with the first."""
        fresh = set()
        for v in list(graph.inputs) + [v for n in graph.nodes for v in n.outputs]:
            if v.type.dtype.is_float and not v.is_const and v.name not in self.observers:
                self.observers[v.name] = make_observer(
                    self._method, percentile=self._percentile, symmetric=self._symmetric,
                    bins=self._bins)
                fresh.add(v.name)
        self.raw |= raw_range_values(graph)
        self._mean_of = _mean_inputs(graph, self._mean_of)
        self._share(graph, fresh)

    def _observe(self, node: Node, outputs: list[np.ndarray]) -> None:
        for v, array in zip(node.outputs, outputs):
            self.observe(v.name, array)

    def observe(self, name: str, array: np.ndarray) -> None:
        """Take one computed tensor into account (for callers that run the graph
        themselves, e.g. to feed several calibrators from one run, and observe every
        tensor: a rearranged one only adds its channel sums, its source's observation
        covering its values)."""
        obs = self.observers.get(name)
        if obs is not None and name not in self._shared:
            obs.update(array)
        self._accumulate(name, array)

    def _accumulate(self, name: str, array: np.ndarray) -> None:
        last = self._mean_of.get(name)
        if last is None or array.ndim < 2:
            return
        a = np.ascontiguousarray(array)  # summed in float64 without a float64 copy
        if not last:  # [N, C, spatial...]: a convolution's channels
            sums = a.reshape(a.shape[0], a.shape[1], -1).sum(axis=2, dtype=np.float64
                                                              ).sum(axis=0)
            count = a.size // a.shape[1]
        elif a.ndim == 2 or a.ndim == 3:  # [.., K]: features on the last axis
            rows = a.reshape(-1, a.shape[-1])
            sums = rows.sum(axis=0, dtype=np.float64)
            count = a.size // a.shape[-1]
            lo, hi = rows.min(axis=0), rows.max(axis=0)
            if name in self._lows:
                lo, hi = np.minimum(lo, self._lows[name]), np.maximum(hi, self._highs[name])
            self._lows[name], self._highs[name] = lo, hi
        else:  # [..., K] of a batched MatMul: summed over every other axis
            rows = a.reshape(-1, a.shape[-1])
            sums = rows.sum(axis=0, dtype=np.float64)
            count = a.size // a.shape[-1]
        self._sums[name] = self._sums.get(name, 0.0) + sums
        self._counts[name] = self._counts.get(name, 0) + count

    def channel_means(self) -> dict[str, np.ndarray]:
        """Per-channel means of the inputs of layers whose quantised form corrects its bias
        with them (qforms.input_means: axis 1 of a convolution's input at any rank, the
        last axis of a MatMul's or Gemm's)."""
        return {k: (v / self._counts[k]).astype(np.float32) for k, v in self._sums.items()}

    def channel_ranges(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-channel (min, max) of the 2-D/3-D inputs of the layers :meth:`channel_means`
        covers (features on the last axis), for compiler.quant.smooth."""
        return {k: (lo, self._highs[k]) for k, lo in self._lows.items()}

    def check_spread(self, inputs: list[str]) -> None:
        """Refuse data in which every float model input held one single value (a constant
        image, a lone all-zero sample): every range would be derived from that one point
        and the INT8 model would be useless on real data."""
        seen = {n: self.observers[n].seen() for n in inputs if n in self.observers}
        if seen and all(lo == hi for lo, hi in seen.values()):
            values = ", ".join(f"{n!r} = {lo:g}" for n, (lo, _) in seen.items())
            raise InputError(
                f"calibration data is constant: over its {self.samples} sample(s) every "
                f"element of every float input held one value ({values}); ranges drawn "
                "from it would quantise real inputs to nothing. Give representative samples "
                "(a few hundred typical inputs)")

    def ranges(self) -> dict[str, tuple[float, float]]:
        """value name -> (lo, hi) with lo <= 0 <= hi, in graph order: the method's choice,
        or the raw extremes for :func:`raw_range_values`."""
        chosen: dict[int, tuple[float, float]] = {}  # a shared observer chooses once
        ranges: dict[str, tuple[float, float]] = {}
        for name, obs in self.observers.items():
            if name in self.raw:
                ranges[name] = obs.extremes()
                continue
            if id(obs) not in chosen:
                chosen[id(obs)] = obs.range()
            ranges[name] = chosen[id(obs)]
        if self.method != "layerwise":
            return ranges
        if self._chosen is None:
            options = {name: candidates(obs.hist, self._percentile)
                       for name, obs in self.observers.items()
                       if name not in self.raw and isinstance(obs, PercentileObserver)}
            self.choices = choose(self.kept, options)
            self._chosen = {name: options[name][m] for name, m in self.choices.items()}
            self.kept = []  # the samples are not needed any more
        return {**ranges, **self._chosen}

    def alternatives(self) -> dict[str, dict[str, Range]]:
        """For ``auto``: each candidate method's ranges of every tensor (percentile's are
        :meth:`ranges`; entropy's differ where a tensor's histogram gives an entropy range,
        the raw-range tensors keeping their extremes in both); {} for the other methods."""
        if self.method != "auto":
            return {}
        base = self.ranges()
        entropy = dict(base)
        names = [name for name, obs in self.observers.items()
                 if name not in self.raw and isinstance(obs, PercentileObserver)]
        unique = {id(self.observers[n]): self.observers[n] for n in names}  # shared ones once
        found = dict(zip(unique, entropy_ranges(
            [obs.hist for obs in unique.values()],  # type: ignore[attr-defined]
            AUTO_ENTROPY_BINS, AUTO_ENTROPY_STRIDE)))
        entropy.update((n, rng) for n in names
                       if (rng := found[id(self.observers[n])]) is not None)
        return {"percentile": base, "entropy": entropy}

    def calibration(self) -> Calibration:
        """What the samples fed so far taught (``auto``'s choice still to be made:
        compiler.quant.method_choice.resolve)."""
        return Calibration(self.ranges(), self.channel_means(), self.samples, self.digest(),
                           self.channel_ranges(), self.alternatives(), list(self.kept),
                           list(self.kept_outputs))

    def digest(self) -> str:
        """sha256 of the samples fed so far (names, dtypes, shapes and bytes, in order): the
        same data gives the same hash, whatever file or iterator it came from."""
        return self._digest.hexdigest()

    def state_nbytes(self) -> int:
        """Bytes kept by all observers between samples (constant in the number of samples)."""
        return sum(obs.state_nbytes() for obs in
                   {id(o): o for o in self.observers.values()}.values())



def _mean_inputs(graph: Graph, known: dict[str, bool | None]) -> dict[str, bool | None]:
    """The float inputs of ``graph``'s layers with a constant weight that correct their bias
    with the inputs' per-channel means (qforms.input_means), each with whether its channels
    are its last axis. None for a tensor read both ways, which gets no means (the quantiser
    would take one layout's means for the other's). A product of two activations has no
    weights to correct."""
    out = dict(known)
    for n in graph.nodes:
        spec = input_means(n.op)
        if spec is None:
            continue
        x, w = n.first_operand(), getattr(n, spec.weight)
        if x is None or x.is_const or w is None or not w.is_const:
            continue
        last = spec.channels_last
        out[x.name] = last if out.get(x.name, last) == last else None
    return out

@dataclass(frozen=True)
class Calibration:
    """What calibration learned: each float tensor's range and, for layers with weights,
    their inputs' per-channel means."""

    ranges: dict[str, tuple[float, float]]
    channel_means: dict[str, np.ndarray]
    #: how many samples, and the sha256 of them as fed (Calibrator.digest)
    samples: int = 0
    samples_sha256: str = ""
    #: per-channel (min, max) of the 2-D/3-D inputs of layers with weights (Calibrator.
    #: channel_ranges), which compiler.quant.smooth derives smoothed ranges from
    channel_ranges: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: ``auto``: each candidate method's ranges (Calibrator.alternatives) and the kept
    #: (graph, feeds) samples compiler.quant.method_choice scores them on
    alternatives: dict[str, dict[str, Range]] = field(default_factory=dict)
    kept: list[tuple[Graph, Mapping[str, np.ndarray]]] = field(default_factory=list)
    #: f32's outputs on the kept samples, when calibration ran them (else resolve runs them)
    kept_outputs: list[dict[str, np.ndarray]] = field(default_factory=list)
    #: ``auto`` once resolved (method_choice.resolve): the method the ranges are from, and
    #: each candidate's score (mean output SQNR on the kept samples, dB)
    chosen: str = ""
    choice_scores: dict[str, float] = field(default_factory=dict)
    #: the chosen method's quantised graphs that scoring made, as (float graph, quantised
    #: graph, QuantConfig): the quantize pass takes one instead of quantising that float
    #: graph again with the same ranges and settings (:meth:`take_quantized`)
    quantized: list[tuple[Graph, Graph, Any]] = field(default_factory=list)
    #: the weight codes every graph quantised with these ranges shares (the candidates of
    #: ``auto``, each shape profile): made once per content (compiler.quant.weight_memo)
    weights: WeightMemo = field(default_factory=WeightMemo, compare=False, repr=False)

    def take_quantized(self, graph: Graph, config: Any) -> Graph | None:
        """The quantised ``graph`` (this very object) made with these ranges and ``config``
        during scoring, handed out once; None when there is none."""
        for k, (g, q, cfg) in enumerate(self.quantized):
            if g is graph and cfg == config:
                del self.quantized[k]
                return q
        return None


def calibrate_model(
    graph: Graph,
    data: Any,
    method: Method = "minmax",
    *,
    percentile: float = DEFAULT_PERCENTILE,
    symmetric: bool = False,
    bins: int = 2048,
    progress: Progress | None = None,
) -> Calibration:
    """:func:`calibrate`, also returning the channel means bias correction needs."""
    calibrator = Calibrator(
        graph, method, percentile=percentile, symmetric=symmetric, bins=bins
    )
    _feed_all(calibrator, data, graph, progress)
    calibrator.check_spread([v.name for v in graph.inputs])
    return calibrator.calibration()


def _feed_all(calibrator: Calibrator, data: Any, graph: Graph, progress: Progress | None) -> None:
    """Every sample into the calibrator, in stacks where its graph allows (the same
    observer states as one by one); a failing sample is named."""
    samples = calibration_data(data, graph)
    size, done, stack = calibrator.stack_size(), 0, []

    def flush() -> None:
        nonlocal done
        if not calibrator.feed_stack(stack):
            for k, feeds in enumerate(stack, done):
                try:
                    calibrator.feed(feeds)
                except InterpreterError as e:
                    raise InputError(
                        f"calibration sample {k}: running the float model failed: {e}"
                    ) from None
        for _ in stack:
            done += 1
            if progress is not None:
                progress(done, samples.count)
        stack.clear()

    for feeds in samples:
        stack.append(feeds)
        if len(stack) >= size:
            flush()
    if stack:
        flush()


def calibrate_shapes(
    graph_at: Callable[[dict[str, tuple[int, ...]]], Graph],
    inputs: Mapping[str, Any],
    data: Any,
    method: Method = "minmax",
    *,
    percentile: float = DEFAULT_PERCENTILE,
    progress: Progress | None = None,
) -> Calibration:
    """One calibration for a model compiled at several shapes: each sample (of any shape the
    model's ``inputs`` patterns allow, compiler.quant.calib_data.InputPattern) runs on
    ``graph_at(its shapes)``, the float graph at exactly that shape, and every graph's
    tensors fold into one observer per tensor name. The ranges then serve every shape."""
    samples = calibration_data(data, inputs)
    calibrator: Calibrator | None = None
    # the graphs observed already (weakly: the caller's shape cache may drop one, and a new
    # graph at a reused address must not pass for it)
    adopted: dict[int, weakref.ref[Graph]] = {}
    for k, feeds in enumerate(samples):
        graph = graph_at({n: tuple(np.shape(a)) for n, a in feeds.items()})
        if calibrator is None:
            calibrator = Calibrator(graph, method, percentile=percentile)
        elif (seen := adopted.get(id(graph))) is None or seen() is not graph:
            calibrator.adopt(graph)
        adopted[id(graph)] = weakref.ref(graph)
        try:
            calibrator.feed(feeds, graph)
        except InterpreterError as e:
            raise InputError(f"calibration sample {k}: running the float model failed: {e}"
                             ) from None
        if progress is not None:
            progress(k + 1, samples.count)
    assert calibrator is not None  # calibration_data refuses an empty data set
    calibrator.check_spread(list(inputs))
    return calibrator.calibration()


def calibrate(
    graph: Graph,
    data: Any,
    method: Method = "minmax",
    *,
    percentile: float = DEFAULT_PERCENTILE,
    symmetric: bool = False,
    bins: int = 2048,
    progress: Progress | None = None,
) -> dict[str, tuple[float, float]]:
    """Ranges of every non-constant float tensor of ``graph`` over the calibration ``data``.

    ``data`` is anything :func:`compiler.quant.calib_data.calibration_data` accepts (a path to
    an .npz/.npy file or a folder, a dict of stacked arrays, an iterable of sample dicts).
    ``progress(done, total)`` is called after each sample; ``total`` is None when the data
    cannot tell its length up front. Raises :class:`InputError` for bad or empty data, or
    when the model fails on a sample.
    """
    calibrator = Calibrator(
        graph, method, percentile=percentile, symmetric=symmetric, bins=bins
    )
    _feed_all(calibrator, data, graph, progress)
    calibrator.check_spread([v.name for v in graph.inputs])
    return calibrator.ranges()
