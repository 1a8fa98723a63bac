"""A BERT-style transformer encoder (6 layers, hidden 384, 12 heads, sequence 64).

Built the way exporters emit BERT at opset 17: linear layers as MatMul + Add, heads split
with Reshape/Transpose, scaled dot-product attention with Softmax, post-LN residual blocks
with LayerNormalization, and GELU as its erf formula 0.5·x·(1 + erf(x/√2)). The Gelu op
only exists from opset 20; the erf form is what PyTorch exports at opset 17, runs on any
onnxruntime, and gives qnnc's GELU pattern-recognition pass the real-world shape to find.
The input is the embedding output, float32 hidden states [1, 64, 384], so the model is a
pure encoder stack. Weights are Xavier-normal (variance-preserving for linear paths), so
attention logits and FFN activations stay of order one; LayerNorm re-centres every layer.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import ModelProto

from compiler.examples import weights
from compiler.examples.builder import F32, GraphBuilder

LAYERS = 6
HIDDEN = 384
HEADS = 12
SEQUENCE = 64
INTERMEDIATE = 1536
HEAD_DIM = HIDDEN // HEADS


class _Encoder:
    def __init__(self, rng: np.random.Generator) -> None:
        self.b = GraphBuilder(rng)
        b = self.b
        self.split_shape = b.ints("split_heads_shape", [1, SEQUENCE, HEADS, HEAD_DIM])
        self.merge_shape = b.ints("merge_heads_shape", [1, SEQUENCE, HIDDEN])
        self.scale = b.const("attention_scale", np.array(1 / math.sqrt(HEAD_DIM), np.float32))
        self.half = b.const("gelu_half", np.array(0.5, np.float32))
        self.one = b.const("gelu_one", np.array(1.0, np.float32))
        self.sqrt2 = b.const("gelu_sqrt2", np.array(math.sqrt(2.0), np.float32))

    def linear(self, x: str, fan_in: int, fan_out: int, prefix: str) -> str:
        b = self.b
        w = b.const(f"{prefix}.weight", weights.xavier_normal(b.rng, fan_in, fan_out))
        bias = b.const(f"{prefix}.bias", weights.small(b.rng, (fan_out,), 0.02))
        y = b.op("MatMul", [x, w], f"{prefix}.matmul")
        return b.op("Add", [y, bias], f"{prefix}.add")

    def layer_norm(self, x: str, prefix: str) -> str:
        b = self.b
        gamma = b.const(f"{prefix}.weight", weights.near_one(b.rng, (HIDDEN,)))
        beta = b.const(f"{prefix}.bias", weights.small(b.rng, (HIDDEN,), 0.02))
        return b.op("LayerNormalization", [x, gamma, beta], prefix, axis=-1, epsilon=1e-12)

    def gelu(self, x: str, prefix: str) -> str:
        b = self.b
        y = b.op("Div", [x, self.sqrt2], f"{prefix}.div")
        y = b.op("Erf", [y], f"{prefix}.erf")
        y = b.op("Add", [y, self.one], f"{prefix}.add")
        y = b.op("Mul", [x, y], f"{prefix}.mul")
        return b.op("Mul", [y, self.half], f"{prefix}.half")

    def heads(self, x: str, perm: list[int], prefix: str) -> str:
        y = self.b.op("Reshape", [x, self.split_shape], f"{prefix}.split")
        return self.b.op("Transpose", [y], f"{prefix}.transpose", perm=perm)

    def attention(self, x: str, prefix: str) -> str:
        b = self.b
        q = self.heads(
            self.linear(x, HIDDEN, HIDDEN, f"{prefix}.query"), [0, 2, 1, 3], f"{prefix}.q"
        )
        k = self.heads(self.linear(x, HIDDEN, HIDDEN, f"{prefix}.key"), [0, 2, 3, 1], f"{prefix}.k")
        v = self.heads(
            self.linear(x, HIDDEN, HIDDEN, f"{prefix}.value"), [0, 2, 1, 3], f"{prefix}.v"
        )
        scores = b.op("MatMul", [q, k], f"{prefix}.scores")
        scores = b.op("Mul", [scores, self.scale], f"{prefix}.scaled")
        probs = b.op("Softmax", [scores], f"{prefix}.softmax", axis=-1)
        ctx = b.op("MatMul", [probs, v], f"{prefix}.context")
        ctx = b.op("Transpose", [ctx], f"{prefix}.context.transpose", perm=[0, 2, 1, 3])
        ctx = b.op("Reshape", [ctx, self.merge_shape], f"{prefix}.context.merge")
        return self.linear(ctx, HIDDEN, HIDDEN, f"{prefix}.output")

    def layer(self, x: str, prefix: str) -> str:
        b = self.b
        a = self.attention(x, f"{prefix}.attention")
        x = self.layer_norm(b.op("Add", [x, a], f"{prefix}.attention.residual"), f"{prefix}.ln1")
        h = self.linear(x, HIDDEN, INTERMEDIATE, f"{prefix}.intermediate")
        h = self.gelu(h, f"{prefix}.gelu")
        h = self.linear(h, INTERMEDIATE, HIDDEN, f"{prefix}.ffn_output")
        return self.layer_norm(b.op("Add", [x, h], f"{prefix}.ffn.residual"), f"{prefix}.ln2")


def build_bert_encoder(seed: int) -> ModelProto:
    """The encoder; input "hidden_states" [1,64,384] → output "last_hidden_state"."""
    enc = _Encoder(np.random.default_rng(seed))
    x = "hidden_states"
    for i in range(LAYERS):
        x = enc.layer(x, f"layer{i}")
    enc.b.nodes[-1].output[0] = x = "last_hidden_state"  # name the final LayerNorm's output
    return enc.b.model(
        "bert_encoder",
        [("hidden_states", F32, [1, SEQUENCE, HIDDEN])],
        [(x, F32, [1, SEQUENCE, HIDDEN])],
        doc="BERT-style encoder, 6x384, 12 heads, seq 64, random Xavier weights (qnnc example)",
    )
