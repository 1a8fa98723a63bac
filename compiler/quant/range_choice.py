"""Each tensor's range chosen by the error it causes in the layers that read it.

One observer for every tensor is a compromise: clipping the rarest values (percentile) is
right for a wide activation feeding a convolution, wrong for a small-range gate whose extremes
decide a recurrent state, and KL entropy wins on one model and is catastrophic on another.
The ``layerwise`` calibration method therefore keeps one histogram per tensor, derives every
method's range from it (:func:`candidates`: minmax, percentile, entropy, MSE), and scores
each candidate where it matters: on a few kept calibration samples, the tensor is quantised
to that range (u8, the activation scheme) and each node that reads it is run again with the
quantised input and every other input exact; the candidate whose consumers' outputs move
least (squared error relative to the output's energy, summed over consumers and samples)
wins. Ties keep the default method's range.

This is a local criterion — the other layers stay float while one tensor is scored — so it is
cheap (about one extra float forward pass per candidate per kept sample) and order-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np

from compiler.quant.observers import (
    DEFAULT_PERCENTILE,
    EntropyObserver,
    Histogram,
    MseObserver,
    PercentileObserver,
    least_divergence,
    quant_params,
)
from ir.graph import Graph, Node
from ir.interpreter import run
from ir.ops.registry import get_op

Range = tuple[float, float]
#: candidate methods, the first being the one kept on ties
CANDIDATES = ("percentile", "minmax", "mse", "entropy")
#: calibration samples the choice runs again (kept from the start of the data)
KEEP_SAMPLES = 2
#: candidate thresholds the entropy candidate's first search steps over
ENTROPY_STRIDE = 16
O = TypeVar("O", PercentileObserver, MseObserver, EntropyObserver)


def candidates(hist: Histogram, percentile: float = DEFAULT_PERCENTILE) -> dict[str, Range]:
    """Every method's range for one tensor's histogram (asymmetric, as u8 activations are).
    The entropy candidate searches every :data:`ENTROPY_STRIDE`-th threshold and then the
    best one's neighbours (EntropyObserver.threshold): the exhaustive search would cost more
    than the rest of the compile."""
    out: dict[str, Range] = {}
    if hist.min > hist.max:
        return {"percentile": (0.0, 0.0)}
    out["percentile"] = _on(PercentileObserver(percentile, hist.bins), hist).range()
    out["minmax"] = (min(hist.min, 0.0), max(hist.max, 0.0))
    out["mse"] = _on(MseObserver(hist.bins), hist).range()
    if (entropy := entropy_range(hist)) is not None:
        out["entropy"] = entropy
    return {k: out[k] for k in CANDIDATES if k in out}


def entropy_range(hist: Histogram, bins: int | None = None, stride: int = ENTROPY_STRIDE,
                  ) -> Range | None:
    """The KL-entropy range of one tensor's histogram, within its observed extremes (and
    holding 0), searched over every ``stride``-th threshold and then the best one's
    neighbours; with ``bins``, on the histogram folded to that many bins (when it has a
    multiple of them: a cheaper search at a coarser threshold step). None where the
    histogram is too coarse or empty to choose from."""
    return entropy_ranges([hist], bins, stride)[0]


def entropy_ranges(hists: Sequence[Histogram], bins: int | None = None,
                   stride: int = ENTROPY_STRIDE) -> list[Range | None]:
    """:func:`entropy_range` of each histogram, their searches computed together (each
    range the one it has alone)."""
    mags: list[np.ndarray] = []
    found: list[tuple[float, float, float] | None] = []  # (bin width, min, max) searched
    for hist in hists:
        if not (hist.width > 0.0 and hist.min <= hist.max):
            found.append(None)
            continue
        hist.flush()
        mag, k = hist.magnitudes(), 1
        if bins is not None and hist.bins > bins and hist.bins % bins == 0:
            k = hist.bins // bins  # Histogram.coarsened's counts: exact integer sums
            mag = mag.reshape(-1, k).sum(axis=1)
        if len(mag) < 256:
            found.append(None)
            continue
        mags.append(mag.astype(np.float64))
        found.append((hist.width * k, hist.min, hist.max))
    levels = [EntropyObserver.levels_for(False, f[1]) for f in found if f is not None]
    widths = iter(least_divergence(mags, levels, stride) if mags else [])
    out: list[Range | None] = []
    for f in found:
        if f is None:
            out.append(None)
            continue
        t, lo, hi = next(widths) * f[0], f[1], f[2]
        out.append((max(-t, min(lo, 0.0)), min(t, max(hi, 0.0))))
    return out


def _on(obs: O, hist: Histogram) -> O:
    obs.hist = hist  # the method's choice on this tensor's histogram
    return obs


def fake_quantize(x: np.ndarray, rng: Range) -> np.ndarray:
    """``x`` through u8 quantisation to ``rng`` and back: round half to even, saturate (the
    arithmetic of ir.qmath.quantize, in ``x``'s precision: this only scores candidates)."""
    scale, zp = quant_params(*rng, "u8")
    q = np.rint(x / x.dtype.type(scale))
    q += zp
    np.clip(q, 0, 255, out=q)
    q -= zp
    q *= x.dtype.type(scale)
    return q


def choose(
    kept: Sequence[tuple[Graph, Mapping[str, np.ndarray]]],
    options: Mapping[str, dict[str, Range]],
) -> dict[str, str]:
    """For each tensor of ``options`` (name -> method -> range) with distinct candidates,
    the method whose range disturbs its consumers least on the ``kept`` (graph, feeds)
    samples; tensors no kept sample computes keep the first candidate."""
    scores: dict[str, dict[str, float]] = {}
    for graph, feeds in kept:
        env = run(graph, feeds, keep=True)
        for node in graph.nodes:
            if node.regions or get_op(node.op).regions:
                continue
            for k, v in enumerate(node.inputs):
                if v is None or v.name not in options or v.name not in env:
                    continue
                opts = options[v.name]
                if len(set(opts.values())) < 2:
                    continue
                args = [None if u is None else u.data if u.is_const else env[u.name]
                        for u in node.inputs]
                ref = [env[o.name] for o in node.outputs]
                tally = scores.setdefault(v.name, dict.fromkeys(opts, 0.0))
                done: dict[Range, float] = {}  # methods that agree are scored once
                for method, rng in opts.items():
                    if rng not in done:
                        trial = list(args)
                        trial[k] = fake_quantize(args[k], rng)  # type: ignore[arg-type]
                        done[rng] = _relative_error(node, trial, ref)
                    tally[method] += done[rng]
    chosen = {}
    for name, opts in options.items():
        tally = scores.get(name)
        first = next(iter(opts))
        if not tally:
            chosen[name] = first
            continue
        best = min(tally.values())
        chosen[name] = first if tally[first] <= best else min(tally, key=tally.__getitem__)
    return chosen


def _relative_error(node: Node, args: list[np.ndarray | None], ref: list[np.ndarray]
                    ) -> float:
    try:
        outs = get_op(node.op).evaluate(
            args, node.attrs, [None if v is None else v.type for v in node.inputs],
            [v.type for v in node.outputs], node.regions)
    except Exception:  # noqa: BLE001 - a consumer that cannot take the trial input scores 0
        return 0.0
    total = 0.0
    for got, want in zip(outs, ref):
        if not np.issubdtype(np.asarray(want).dtype, np.floating):
            continue
        w = np.ravel(want)
        d = np.ravel(got) - w
        energy, err = float(np.dot(w, w)), float(np.dot(d, d))
        if not (np.isfinite(energy) and np.isfinite(err)):  # -inf masks, overflow: finite part
            ok = np.isfinite(w) & np.isfinite(d)
            w, d = w[ok], d[ok]
            energy, err = float(np.dot(w, w)), float(np.dot(d, d))
        total += err / max(energy, 1e-30)
    return total
