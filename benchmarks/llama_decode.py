"""Greedy generation with the Llama example decoder: qnnc INT8 (host C) against onnxruntime
INT8 (quantize_static, QDQ) and onnxruntime f32, tokens per second and first-token latency
side by side, and how often the INT8 generations pick the same tokens as f32.

    python -m benchmarks.llama_decode [--steps 300] [--new-tokens 48] [--rounds 3]
        [--calib-method minmax]

The model is ``qnnc example llama`` (trained --steps steps on standard-library docstrings).
All INT8 builds calibrate on the same feeds (every call of f32 generations after other
prompts than the timed ones), with min/max observers unless --calib-method says otherwise
for qnnc. onnxruntime INT8 runs twice: quantize_static as it comes
(it quantises the attention mask's Where, whose range then spans the -1e4 fill), and with the
mask's Where and the Softmax left in float, the float island qnnc's quantiser makes itself.
The last two rows keep the LM head in float too (its 8-bit logits turn near-ties of the
argmax into flips).
qnnc compiles one model per sequence length (the prefill lengths and the one-token
step); onnxruntime runs all lengths in one session. Everything runs on one thread (qnnc
threads=1, onnxruntime intra_op_num_threads=1). First-token latency is the prefill of the
padded prompt plus its argmax; tokens/s counts the decode steps after it. Medians over the
rounds; the engines interleave within each round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)

from benchmarks.common import fmt, format_table, load_average, machine_line
from compiler.examples.llama import build_llama
from compiler.examples.llama_train import corpus
from compiler.generate import Generation, compile_lengths, generate

Feeds = dict[str, np.ndarray]
LENGTHS = (1, 16, 32)
#: prompts in the corpus, as (offset, length): calibration and timed prompts differ
CALIB_PROMPTS = [(4000 * k, 12 + 2 * k) for k in range(8)]
EVAL_PROMPTS = [(2100 + 5000 * k, 14 + 3 * k) for k in range(5)]


class _Feeds(CalibrationDataReader):
    def __init__(self, feeds: list[Feeds]) -> None:
        self.it = iter(feeds)

    def get_next(self) -> Feeds | None:
        return next(self.it, None)


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _quantized(path: Path, calib: list[Feeds], exclude: list[str]) -> ort.InferenceSession:
    """quantize_static (QDQ, per channel, u8 activations, i8 weights), keeping the nodes
    ``exclude`` in float."""
    qpath = path.with_name(f"{path.stem}_qdq{len(exclude)}.onnx")
    quantize_static(path, qpath, _Feeds(calib), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True, nodes_to_exclude=exclude)
    return _session(qpath)


def _prompts(spec: list[tuple[int, int]]) -> list[list[int]]:
    text = corpus()
    return [list(text[o:o + n]) for o, n in spec]


def _show(tokens: list[int]) -> str:
    return bytes(t if 32 <= t < 127 else 63 for t in tokens).decode("ascii")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the "
                    "example's)")
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calib-method", default="minmax", help="qnnc's observer (default "
                    "minmax, the one quantize_static uses)")
    args = ap.parse_args()
    print(machine_line())
    kw = {} if args.steps is None else {"train_steps": args.steps}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "llama.onnx"
        onnx.save(build_llama(**kw), path)
        f32 = _session(path)
        calib: list[Feeds] = []
        for p in _prompts(CALIB_PROMPTS):
            generate(f32, p, 24, lengths=LENGTHS[1:], record=calib.append)
        islands = [n.name for n in onnx.load(path).graph.node
                   if n.op_type in ("Where", "Softmax")]
        engines = {
            "onnxruntime f32": f32,
            "onnxruntime INT8 (QDQ)": _quantized(path, calib, []),
            "onnxruntime INT8 (QDQ, mask+Softmax f32)": _quantized(path, calib, islands),
            f"qnnc INT8 (host, {args.calib_method})": compile_lengths(
                path, LENGTHS, calib, target="host", threads=1, calib_method=args.calib_method),
            "onnxruntime INT8 (QDQ, mask+Softmax+lm_head f32)": _quantized(
                path, calib, [*islands, "lm_head"]),
            f"qnnc INT8 (host, {args.calib_method}, lm_head f32)": compile_lengths(
                path, LENGTHS, calib, target="host", threads=1, calib_method=args.calib_method,
                skip_layers=["lm_head"]),
        }
        prompts = _prompts(EVAL_PROMPTS)
        runs: dict[str, list[Generation]] = {name: [] for name in engines}
        for r in range(max(1, args.rounds) + 1):  # round 0 warms up
            for name, model in engines.items():
                for p in prompts:
                    g = generate(model, p, args.new_tokens, lengths=LENGTHS[1:])
                    if r:
                        runs[name].append(g)
    _report(runs, len(prompts), args.new_tokens)


def _report(runs: dict[str, list[Generation]], n_prompts: int, new_tokens: int) -> None:
    ref = runs["onnxruntime f32"][:n_prompts]  # the first round, prompt by prompt
    rows = []
    for name, gens in runs.items():
        first = statistics.median(g.first_token_ms for g in gens)
        tps = statistics.median(g.tokens_per_s for g in gens)
        mine = gens[:n_prompts]
        same = sum(a == b for g, f in zip(mine, ref) for a, b in zip(g.tokens, f.tokens))
        total = sum(len(f.tokens) for f in ref)
        prefix = statistics.mean(
            next((i for i, (a, b) in enumerate(zip(g.tokens, f.tokens)) if a != b),
                 len(f.tokens)) for g, f in zip(mine, ref))
        rows.append([name, fmt(first), fmt(tps, 0), f"{same}/{total}", fmt(prefix, 1)])
    print(f"\n{n_prompts} prompts of 14-26 tokens, {new_tokens} new tokens each, greedy")
    print(format_table(["engine", "first token ms", "tokens/s", "tokens = f32",
                        "same prefix"], rows))
    print("\n(same prefix: mean number of tokens before the first that differs from f32)")
    for name, gens in runs.items():
        print(f"{name:48s} {_show(ref[0].prompt)!r} -> {_show(gens[0].tokens)!r}")
    print(machine_line())
    spare = (os.cpu_count() or 1) - 1  # the engines time on one thread
    if load_average() > spare:
        print(f"the machine was too busy to judge speed (load average above {spare}, the "
              "CPUs besides the timing thread): timings are indicative only; rerun on a "
              "quiet machine to compare engines")


if __name__ == "__main__":
    main()
