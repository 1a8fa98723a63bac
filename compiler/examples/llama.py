"""A small Llama-architecture decoder with a static-shape KV cache, as ONNX (opset 23).

Token embedding, ``LAYERS`` blocks of pre-norm attention and MLP, final norm, LM head:
RMSNormalization, RotaryEmbedding (rotate-half) on queries and keys, grouped-query
attention (``HEADS`` query heads share ``KV_HEADS`` key/value heads) and a SwiGLU MLP
(down(silu(gate(x)) · up(x))). Byte-level vocabulary of 256.

The KV cache is laid out the way NPU deployments keep it, with static shapes::

    input_ids   int64 [1, seq]                      seq symbolic (dim_param "seq")
    position    int64 [1]                           position of input_ids[0, 0]
    past_key    f32   [LAYERS, 1, KV_HEADS, MAX_CTX, HEAD_DIM]   (past_value alike)
    -> logits   f32   [1, seq, VOCAB]
       present_key / present_value: the caches with this call's keys/values written at
       slots position .. position+seq-1 (ScatterND), everything else copied.

Attention always spans all ``MAX_CTX`` slots of the updated cache; a causal mask built
from positions lets token i see slot j iff j <= position + i (hidden scores become -1e4
through a Where). Prefill (seq = 16, 32, 64, 128) and the one-token decode step (seq = 1)
are therefore shape profiles of one model, with no shape that grows during generation.
A prompt may be padded at its end to the next prefill length: the padded tokens write
garbage into slots after the prompt, but slot p only becomes visible to a token at
position >= p, and the call that processes position p overwrites slot p first; the logits
of the last real token are those at its index.

Weights: drawn well scaled (Xavier-normal projections, embeddings of unit RMS, norm scales
near one), then trained for ``TRAIN_STEPS`` steps of next-byte prediction on the docstrings
of a few standard-library modules (compiler/examples/llama_train.py: numpy, a hand-written
backward pass, Adam; one to two minutes on one core, deterministic per seed on a machine). The
result is a poor but peaked language model (about 1.6 nats per byte): greedy generations
repeat the words of that text, so INT8 against float token agreement means something.
``build_llama(seed, train_steps=0)`` gives the random weights alone.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, helper, numpy_helper

from compiler.examples import weights
from compiler.examples.builder import F32, I64, GraphBuilder

VOCAB = 256
HIDDEN = 128
LAYERS = 2
HEADS = 4
KV_HEADS = 2
HEAD_DIM = HIDDEN // HEADS
GROUP = HEADS // KV_HEADS
FFN = 256
MAX_CTX = 128
ROPE_THETA = 10000.0
EPS = 1e-5
OPSET = 23
#: the sequence lengths a prompt is padded to, and the decode step
PREFILL_LENGTHS = (16, 32, 64, 128)
DECODE_LENGTH = 1
CACHE_SHAPE = (LAYERS, 1, KV_HEADS, MAX_CTX, HEAD_DIM)
CACHE_INPUTS = ("past_key", "past_value")
CACHE_OUTPUTS = ("present_key", "present_value")
#: training steps of the example as ``qnnc example llama`` builds it
TRAIN_STEPS = 300

Params = dict[str, np.ndarray]


def rope_tables() -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of position·θ^(-2i/HEAD_DIM), [MAX_CTX, HEAD_DIM/2] each."""
    inv = ROPE_THETA ** (-np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM)
    angles = np.arange(MAX_CTX, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _scalar(b: GraphBuilder, stem: str, value: int) -> str:
    """A 0-d int64 initializer (GraphBuilder.const keeps at least one dimension)."""
    name = b.fresh(stem)
    b.inits.append(numpy_helper.from_array(np.array(value, np.int64), name))
    return name


class _Decoder:
    def __init__(self, params: Params) -> None:
        self.w = params
        self.b = b = GraphBuilder(np.random.default_rng(0))
        cos, sin = rope_tables()
        self.cos = b.const("rope_cos", cos)
        self.sin = b.const("rope_sin", sin)
        self.scale = b.const("attention_scale", np.array(HEAD_DIM**-0.5, np.float32))
        self.masked = b.const("mask_fill", np.array(-1e4, np.float32))
        # positions of this call's tokens: position + [0, seq)
        one = b.ints("one", [1])
        seq = b.op("Gather", [b.op("Shape", ["input_ids"], "ids_shape"), one], "seq_len")
        steps = b.op("Range", [_scalar(b, "zero", 0), b.op("Squeeze", [seq], "seq_scalar"),
                               _scalar(b, "step", 1)], "steps")
        pos = b.op("Add", [steps, "position"], "positions")              # [seq]
        self.position_ids = b.op("Unsqueeze", [pos, b.ints("axis0", [0])], "position_ids")
        # slot j visible to token i iff j <= position + i; rows repeat per query of a group
        slots = b.const("slots", np.arange(MAX_CTX, dtype=np.int64)[None, :])
        col = b.op("Unsqueeze", [pos, one], "positions_column")          # [seq, 1]
        visible = b.op("LessOrEqual", [slots, col], "visible")           # [seq, MAX_CTX]
        self.mask = b.op("Tile", [visible, b.ints("group_repeats", [GROUP, 1])], "mask")
        # ScatterND indices into a [MAX_CTX, 1, KV_HEADS, HEAD_DIM] cache view: [seq, 1]
        self.slot_index = col
        self.q_shape = b.ints("q_shape", [1, 0, HEADS, HEAD_DIM])
        self.kv_shape = b.ints("kv_shape", [1, 0, KV_HEADS, HEAD_DIM])
        self.group_shape = b.ints("group_shape", [1, KV_HEADS, -1, HEAD_DIM])
        self.heads_shape = b.ints("heads_shape", [1, HEADS, -1, HEAD_DIM])
        self.merge_shape = b.ints("merge_shape", [1, -1, HIDDEN])
        self.presents: dict[str, list[str]] = {"key": [], "value": []}

    def linear(self, x: str, fan_in: int, fan_out: int, prefix: str) -> str:
        w = self.b.const(f"{prefix}.weight", self.w[f"{prefix}.weight"])
        assert self.w[f"{prefix}.weight"].shape == (fan_in, fan_out)
        return self.b.op("MatMul", [x, w], prefix)

    def norm(self, x: str, prefix: str) -> str:
        gamma = self.b.const(f"{prefix}.weight", self.w[f"{prefix}.weight"])
        return self.b.op("RMSNormalization", [x, gamma], prefix, axis=-1, epsilon=EPS)

    def rotate(self, x: str, prefix: str) -> str:
        """RoPE on [1, heads, seq, HEAD_DIM] at this call's positions."""
        return self.b.op("RotaryEmbedding", [x, self.cos, self.sin, self.position_ids],
                         f"{prefix}.rope")

    def cache(self, new: str, layer: int, kind: str, prefix: str) -> str:
        """Write ``new`` [1, KV_HEADS, seq, HEAD_DIM] into layer ``layer`` of past_{kind} at
        this call's slots; return the updated layer [1, KV_HEADS, MAX_CTX, HEAD_DIM]."""
        b = self.b
        past = b.op("Gather", [f"past_{kind}", _scalar(b, f"layer{layer}", layer)],
                    f"{prefix}.past", axis=0)                            # [1, KVH, C, D]
        view = b.op("Transpose", [past], f"{prefix}.past_slots", perm=[2, 0, 1, 3])
        upd = b.op("Transpose", [new], f"{prefix}.new_slots", perm=[2, 0, 1, 3])
        view = b.op("ScatterND", [view, self.slot_index, upd], f"{prefix}.write")
        present = b.op("Transpose", [view], f"{prefix}.present", perm=[1, 2, 0, 3])
        self.presents[kind].append(present)
        return present

    def attention(self, x: str, layer: int, prefix: str) -> str:
        b = self.b
        q = b.op("Reshape", [self.linear(x, HIDDEN, HIDDEN, f"{prefix}.q_proj"), self.q_shape],
                 f"{prefix}.q_split")
        k = b.op("Reshape", [self.linear(x, HIDDEN, KV_HEADS * HEAD_DIM, f"{prefix}.k_proj"),
                             self.kv_shape], f"{prefix}.k_split")
        v = b.op("Reshape", [self.linear(x, HIDDEN, KV_HEADS * HEAD_DIM, f"{prefix}.v_proj"),
                             self.kv_shape], f"{prefix}.v_split")
        q = self.rotate(b.op("Transpose", [q], f"{prefix}.q_heads", perm=[0, 2, 1, 3]),
                        f"{prefix}.q")
        k = self.rotate(b.op("Transpose", [k], f"{prefix}.k_heads", perm=[0, 2, 1, 3]),
                        f"{prefix}.k")
        v = b.op("Transpose", [v], f"{prefix}.v_heads", perm=[0, 2, 1, 3])
        keys = self.cache(k, layer, "key", f"{prefix}.key_cache")
        values = self.cache(v, layer, "value", f"{prefix}.value_cache")
        # grouped queries: heads kvh·GROUP .. kvh·GROUP+GROUP-1 share kv head kvh, so
        # [1, HEADS, seq, D] regroups as [1, KV_HEADS, GROUP·seq, D] without moving data
        qg = b.op("Reshape", [q, self.group_shape], f"{prefix}.q_groups")
        kt = b.op("Transpose", [keys], f"{prefix}.keys_t", perm=[0, 1, 3, 2])
        scores = b.op("MatMul", [qg, kt], f"{prefix}.scores")
        scores = b.op("Mul", [scores, self.scale], f"{prefix}.scaled")
        scores = b.op("Where", [self.mask, scores, self.masked], f"{prefix}.masked")
        probs = b.op("Softmax", [scores], f"{prefix}.softmax", axis=-1)
        ctx = b.op("MatMul", [probs, values], f"{prefix}.context")   # [1, KVH, G·seq, D]
        ctx = b.op("Reshape", [ctx, self.heads_shape], f"{prefix}.context_heads")
        ctx = b.op("Transpose", [ctx], f"{prefix}.context_t", perm=[0, 2, 1, 3])
        ctx = b.op("Reshape", [ctx, self.merge_shape], f"{prefix}.context_merge")
        return self.linear(ctx, HIDDEN, HIDDEN, f"{prefix}.o_proj")

    def mlp(self, x: str, prefix: str) -> str:
        b = self.b
        gate = self.linear(x, HIDDEN, FFN, f"{prefix}.gate_proj")
        up = self.linear(x, HIDDEN, FFN, f"{prefix}.up_proj")
        silu = b.op("Mul", [gate, b.op("Sigmoid", [gate], f"{prefix}.sigmoid")],
                    f"{prefix}.silu")
        h = b.op("Mul", [silu, up], f"{prefix}.swiglu")
        return self.linear(h, FFN, HIDDEN, f"{prefix}.down_proj")

    def layer(self, x: str, i: int) -> str:
        b = self.b
        p = f"layers.{i}"
        a = self.attention(self.norm(x, f"{p}.input_norm"), i, f"{p}.attn")
        x = b.op("Add", [x, a], f"{p}.attn_residual")
        m = self.mlp(self.norm(x, f"{p}.post_attention_norm"), f"{p}.mlp")
        return b.op("Add", [x, m], f"{p}.mlp_residual")

    def stack_cache(self, kind: str) -> None:
        b = self.b
        layers = [b.op("Unsqueeze", [p, b.ints("axis0", [0])], f"{p}.layer")
                  for p in self.presents[kind]]
        b.nodes.append(helper.make_node("Concat", layers, [f"present_{kind}"],
                                        name=f"present_{kind}", axis=0))


def init_params(rng: np.random.Generator) -> Params:
    """Random, well-scaled weights by ONNX initializer name (linear weights [in, out])."""
    p: Params = {"embed_tokens.weight": rng.standard_normal((VOCAB, HIDDEN), dtype=np.float32)}
    shapes = {"attn.q_proj": (HIDDEN, HIDDEN), "attn.k_proj": (HIDDEN, KV_HEADS * HEAD_DIM),
              "attn.v_proj": (HIDDEN, KV_HEADS * HEAD_DIM), "attn.o_proj": (HIDDEN, HIDDEN),
              "mlp.gate_proj": (HIDDEN, FFN), "mlp.up_proj": (HIDDEN, FFN),
              "mlp.down_proj": (FFN, HIDDEN)}
    for i in range(LAYERS):
        for norm in ("input_norm", "post_attention_norm"):
            p[f"layers.{i}.{norm}.weight"] = weights.near_one(rng, (HIDDEN,))
        for name, (fan_in, fan_out) in shapes.items():
            p[f"layers.{i}.{name}.weight"] = weights.xavier_normal(rng, fan_in, fan_out)
    p["norm.weight"] = weights.near_one(rng, (HIDDEN,))
    p["lm_head.weight"] = weights.xavier_normal(rng, HIDDEN, VOCAB, gain=4.0)
    return p


def build_llama(seed: int = 0, train_steps: int = TRAIN_STEPS) -> ModelProto:
    """The decoder, its weights drawn from ``seed`` and then trained for ``train_steps``
    steps on the bundled text (0: the random weights as drawn)."""
    params = init_params(np.random.default_rng(seed))
    if train_steps:
        from compiler.examples.llama_train import train

        params = train(params, train_steps, np.random.default_rng(seed + 1)).params
    return llama_model(params, trained=train_steps)


def llama_model(params: Params, trained: int = 0) -> ModelProto:
    """The ONNX graph of the decoder with weights ``params``."""
    dec = _Decoder(params)
    b = dec.b
    x = b.op("Gather", [b.const("embed_tokens.weight", params["embed_tokens.weight"]),
                        "input_ids"], "embed", axis=0)
    for i in range(LAYERS):
        x = dec.layer(x, i)
    x = dec.norm(x, "norm")
    b.nodes.append(helper.make_node(
        "MatMul", [x, b.const("lm_head.weight", params["lm_head.weight"])], ["logits"],
        name="lm_head"))
    dec.stack_cache("key")
    dec.stack_cache("value")
    seq = "seq"
    cache = list(CACHE_SHAPE)
    how = f"trained {trained} steps on Python docstrings" if trained else "random weights"
    return b.model(
        "llama",
        [("input_ids", I64, [1, seq]), ("position", I64, [1]),
         ("past_key", F32, cache), ("past_value", F32, cache)],
        [("logits", F32, [1, seq, VOCAB]), ("present_key", F32, cache),
         ("present_value", F32, cache)],
        doc=f"Llama-style decoder, {LAYERS}x{HIDDEN}, {HEADS} query / {KV_HEADS} kv heads, "
        f"KV cache of {MAX_CTX} slots, {how} (qnnc example)",
        opset=OPSET,
    )


def empty_cache() -> dict[str, np.ndarray]:
    """Zero past_key / past_value feeds."""
    return {name: np.zeros(CACHE_SHAPE, np.float32) for name in CACHE_INPUTS}


def step_feeds(ids: np.ndarray, position: int, cache: dict[str, np.ndarray]
               ) -> dict[str, np.ndarray]:
    """The feeds of one call: token ids [1, seq] starting at ``position``, and the cache."""
    return {"input_ids": np.asarray(ids, np.int64).reshape(1, -1),
            "position": np.array([position], np.int64), **cache}


__all__ = ["CACHE_SHAPE", "MAX_CTX", "PREFILL_LENGTHS", "VOCAB", "build_llama",
           "empty_cache", "step_feeds"]
