"""A few hundred steps of next-byte training for the Llama example, in numpy.

The forward pass is the ONNX graph's arithmetic on a batch of full windows (no cache: a
causal mask over the window), the backward pass is written out by hand, Adam updates the
weights. The text is the docstrings of a fixed list of standard-library modules, so the
corpus is on every machine with Python and nothing is downloaded. The point is not a good
language model but a peaked one: greedy generations that repeat the text's words, whose
agreement between INT8 and float means something.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from compiler.examples.llama import (
    EPS,
    GROUP,
    HEAD_DIM,
    HEADS,
    KV_HEADS,
    LAYERS,
    VOCAB,
    Params,
    rope_tables,
)

#: modules whose docstrings (and their functions' and classes') make the corpus
CORPUS_MODULES = ("argparse", "collections", "functools", "itertools", "json", "pathlib",
                  "re", "string", "textwrap", "typing", "dataclasses", "contextlib")
WINDOW = 64
BATCH = 16
LEARNING_RATE = 3e-3

Cache = list[tuple]


def corpus() -> bytes:
    """The training text: module, class and function docstrings, ASCII only."""
    parts = []
    for name in CORPUS_MODULES:
        mod = importlib.import_module(name)
        docs = [mod.__doc__] + [getattr(getattr(mod, a), "__doc__", None)
                                for a in sorted(getattr(mod, "__all__", ()))]
        parts += [d.strip() for d in docs if isinstance(d, str)]
    return "\n\n".join(parts).encode("ascii", "ignore")


def _rms(x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, tuple]:
    r = 1.0 / np.sqrt(np.mean(x * x, -1, keepdims=True) + EPS)
    return x * r * g, (x, r, g)


def _rms_back(dy: np.ndarray, c: tuple) -> tuple[np.ndarray, np.ndarray]:
    x, r, g = c
    dg = np.sum(dy * x * r, axis=tuple(range(dy.ndim - 1)))
    dn = dy * g
    dx = r * (dn - x * r * r * np.mean(dn * x, -1, keepdims=True))
    return dx, dg


def _rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    h = HEAD_DIM // 2
    x1, x2 = x[..., :h], x[..., h:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def _rope_back(dy: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    h = HEAD_DIM // 2
    d1, d2 = dy[..., :h], dy[..., h:]
    return np.concatenate([d1 * cos + d2 * sin, d2 * cos - d1 * sin], -1)


def _split(x: np.ndarray, heads: int) -> np.ndarray:
    b, t, _ = x.shape
    return x.reshape(b, t, heads, HEAD_DIM).transpose(0, 2, 1, 3)


def _merge(x: np.ndarray) -> np.ndarray:
    b, h, t, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * d)


class _Model:
    """Forward with a tape, and the backward pass that reads it."""

    def __init__(self, p: Params, t: int) -> None:
        self.p = p
        cos, sin = rope_tables()
        self.cos, self.sin = cos[:t], sin[:t]
        self.causal = np.triu(np.full((t, t), -1e9), 1)

    def attention(self, h: np.ndarray, i: int) -> tuple[np.ndarray, tuple]:
        p, pre = self.p, f"layers.{i}.attn"
        q = _rope(_split(h @ p[f"{pre}.q_proj.weight"], HEADS), self.cos, self.sin)
        k = _rope(_split(h @ p[f"{pre}.k_proj.weight"], KV_HEADS), self.cos, self.sin)
        v = _split(h @ p[f"{pre}.v_proj.weight"], KV_HEADS)
        ke, ve = np.repeat(k, GROUP, axis=1), np.repeat(v, GROUP, axis=1)
        s = q @ ke.transpose(0, 1, 3, 2) * HEAD_DIM**-0.5 + self.causal
        s = np.exp(s - s.max(-1, keepdims=True))
        a = s / s.sum(-1, keepdims=True)
        ctx = _merge(a @ ve)
        return ctx @ p[f"{pre}.o_proj.weight"], (h, q, ke, ve, a, ctx)

    def attention_back(self, dy: np.ndarray, c: tuple, i: int, g: Params) -> np.ndarray:
        p, pre = self.p, f"layers.{i}.attn"
        h, q, ke, ve, a, ctx = c
        g[f"{pre}.o_proj.weight"] = _wgrad(ctx, dy)
        dctx = _split(dy @ p[f"{pre}.o_proj.weight"].T, HEADS)
        da = dctx @ ve.transpose(0, 1, 3, 2)
        dve = a.transpose(0, 1, 3, 2) @ dctx
        ds = a * (da - np.sum(da * a, -1, keepdims=True)) * HEAD_DIM**-0.5
        dq = ds @ ke
        dke = ds.transpose(0, 1, 3, 2) @ q
        b, _, t, _ = dke.shape
        dk = dke.reshape(b, KV_HEADS, GROUP, t, HEAD_DIM).sum(2)
        dv = dve.reshape(b, KV_HEADS, GROUP, t, HEAD_DIM).sum(2)
        dq = _merge(_rope_back(dq, self.cos, self.sin))
        dk = _merge(_rope_back(dk, self.cos, self.sin))
        dv = _merge(dv)
        dh = np.zeros_like(h)
        for name, d in (("q_proj", dq), ("k_proj", dk), ("v_proj", dv)):
            g[f"{pre}.{name}.weight"] = _wgrad(h, d)
            dh += d @ p[f"{pre}.{name}.weight"].T
        return dh

    def mlp(self, h: np.ndarray, i: int) -> tuple[np.ndarray, tuple]:
        p, pre = self.p, f"layers.{i}.mlp"
        a, u = h @ p[f"{pre}.gate_proj.weight"], h @ p[f"{pre}.up_proj.weight"]
        sig = 1.0 / (1.0 + np.exp(-a))
        s = a * sig * u
        return s @ p[f"{pre}.down_proj.weight"], (h, a, u, sig, s)

    def mlp_back(self, dy: np.ndarray, c: tuple, i: int, g: Params) -> np.ndarray:
        p, pre = self.p, f"layers.{i}.mlp"
        h, a, u, sig, s = c
        g[f"{pre}.down_proj.weight"] = _wgrad(s, dy)
        ds = dy @ p[f"{pre}.down_proj.weight"].T
        du = ds * a * sig
        da = ds * u * sig * (1 + a * (1 - sig))
        g[f"{pre}.gate_proj.weight"] = _wgrad(h, da)
        g[f"{pre}.up_proj.weight"] = _wgrad(h, du)
        return da @ p[f"{pre}.gate_proj.weight"].T + du @ p[f"{pre}.up_proj.weight"].T

    def forward(self, ids: np.ndarray) -> tuple[np.ndarray, list[tuple]]:
        """Logits [batch, window, VOCAB] of windows starting at position 0, and the tape."""
        p = self.p
        x = p["embed_tokens.weight"][ids]
        tape: list[tuple] = []
        for i in range(LAYERS):
            h, cn1 = _rms(x, p[f"layers.{i}.input_norm.weight"])
            o, ca = self.attention(h, i)
            x = x + o
            h, cn2 = _rms(x, p[f"layers.{i}.post_attention_norm.weight"])
            m, cm = self.mlp(h, i)
            x = x + m
            tape.append((cn1, ca, cn2, cm))
        xf, cnf = _rms(x, p["norm.weight"])
        tape.append((xf, cnf))
        return xf @ p["lm_head.weight"], tape

    def loss_and_grads(self, ids: np.ndarray, targets: np.ndarray) -> tuple[float, Params]:
        p = self.p
        logits, tape = self.forward(ids)
        xf, cnf = tape.pop()
        z = logits - logits.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        n = targets.size
        onehot = np.eye(VOCAB)[targets]
        loss = float(-np.sum(logp * onehot) / n)
        dlogits = (np.exp(logp) - onehot) / n
        g: Params = {"lm_head.weight": _wgrad(xf, dlogits)}
        dx, g["norm.weight"] = _rms_back(dlogits @ p["lm_head.weight"].T, cnf)
        for i in reversed(range(LAYERS)):
            cn1, ca, cn2, cm = tape[i]
            dh, g[f"layers.{i}.post_attention_norm.weight"] = _rms_back(
                self.mlp_back(dx, cm, i, g), cn2)
            dx = dx + dh
            dh, g[f"layers.{i}.input_norm.weight"] = _rms_back(
                self.attention_back(dx, ca, i, g), cn1)
            dx = dx + dh
        demb = np.zeros_like(p["embed_tokens.weight"])
        np.add.at(demb, ids.ravel(), dx.reshape(-1, dx.shape[-1]))
        g["embed_tokens.weight"] = demb
        return loss, g


def _wgrad(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dL/dW of y = x @ W over every leading axis."""
    return x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])


def window_logits(params: Params, ids: np.ndarray) -> np.ndarray:
    """The float64 training forward on windows ``ids`` [batch, t] from position 0."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    return _Model(p, ids.shape[1]).forward(ids)[0]


@dataclass
class Trained:
    params: Params
    losses: list[float] = field(default_factory=list)


def train(params: Params, steps: int, rng: np.random.Generator,
          text: bytes | None = None) -> Trained:
    """Adam on random windows of ``text`` (default :func:`corpus`); returns new weights and
    the loss per step (nats per byte). BLAS runs on one thread: the matrices are small, and
    more threads only spin against each other on a busy machine."""
    with _one_blas_thread():
        return _train(params, steps, rng, text)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _train(params: Params, steps: int, rng: np.random.Generator, text: bytes | None) -> Trained:
    data = np.frombuffer(text if text is not None else corpus(), np.uint8).astype(np.int64)
    # float64 throughout: float32 softmax and sigmoid tails underflow into subnormals, which
    # slow numpy's arithmetic tenfold as training sharpens them
    p = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2 = 0.9, 0.99
    out = Trained(p)
    model = _Model(p, WINDOW)
    for step in range(1, steps + 1):
        starts = rng.integers(0, len(data) - WINDOW - 1, BATCH)
        ids = np.stack([data[s:s + WINDOW] for s in starts])
        targets = np.stack([data[s + 1:s + WINDOW + 1] for s in starts])
        loss, g = model.loss_and_grads(ids, targets)
        out.losses.append(loss)
        lr = LEARNING_RATE * min(1.0, step / 20)
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v2[k] = b2 * v2[k] + (1 - b2) * g[k] * g[k]
            mh = m[k] / (1 - b1**step)
            vh = v2[k] / (1 - b2**step)
            p[k] -= lr * mh / (np.sqrt(vh) + 1e-8)
    out.params = {k: v.astype(np.float32) for k, v in p.items()}
    return out
