"""Greedy text generation over a decoder with a static-shape KV cache.

The model is the one :mod:`compiler.examples.llama` describes: inputs ``input_ids`` [1, seq],
``position`` [1] and the caches ``past_key`` / ``past_value``; outputs ``logits`` [1, seq,
vocab] and ``present_key`` / ``present_value``. Generation is a prefill, then one-token
decode steps that feed each call's present caches back as the next call's past::

    from compiler.generate import generate
    out = generate(session, prompt, max_new_tokens=32)       # an onnxruntime session
    q8 = compile_lengths("llama.onnx", [1, 16, 32], calib, target="host")  # shape profiles
    out = generate(q8, prompt, 32)
    out.tokens, out.first_token_ms, out.tokens_per_s

A model is anything with ``run(None, feeds)``: an onnxruntime InferenceSession, or a qnnc
model compiled with a shape profile per sequence length (:func:`compile_lengths`), whose
run() picks the profile from the feeds; a mapping {seq length: model} works too.

The prompt is prefilled in calls of the prefill lengths: a prompt longer than the largest
goes in chunks of it, and the last chunk is padded at its end with ``pad_id`` to the
smallest length that holds it. Padded tokens write slots after the prompt, which the
causal mask hides until the decode step at that position overwrites them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.api import compile_model
from compiler.examples.llama import CACHE_INPUTS, CACHE_OUTPUTS, CACHE_SHAPE, PREFILL_LENGTHS

Feeds = dict[str, np.ndarray]
#: a model of one shape, or {seq length: model} with one model per length
Model = Any


@dataclass
class Generation:
    """What :func:`generate` produced and how long it took."""

    prompt: list[int]
    tokens: list[int] = field(default_factory=list)
    #: seconds from the start to the first new token (prefill and its argmax)
    first_token_s: float = 0.0
    #: seconds spent in the decode steps after the first token
    decode_s: float = 0.0
    #: the prefill calls' sequence lengths (after padding)
    prefill_calls: list[int] = field(default_factory=list)

    @property
    def first_token_ms(self) -> float:
        return self.first_token_s * 1e3

    @property
    def tokens_per_s(self) -> float:
        """Decode throughput: tokens after the first, per second of decode steps."""
        steps = len(self.tokens) - 1
        return steps / self.decode_s if steps > 0 and self.decode_s > 0 else float("nan")


def runner_for(model: Model, seq: int) -> Any:
    """The model that runs feeds of sequence length ``seq``.

    A mapping holds one model per length; any other model takes every length itself (a
    qnnc model with shape profiles picks the one of the feeds).
    """
    if isinstance(model, Mapping):
        if seq not in model:
            raise ValueError(f"no model for sequence length {seq}; have {sorted(model)}")
        return model[seq]
    return model


def prefill_lengths(model: Model, lengths: Sequence[int] | None = None) -> list[int]:
    """The lengths a prompt chunk may be padded to: ``lengths``, else the shape profiles of a
    qnnc model (or a mapping's keys) above 1, else the model's defaults."""
    if lengths is not None:
        return sorted(lengths)
    if isinstance(model, Mapping):
        return sorted(s for s in model if s > 1)
    profiles = getattr(model, "profiles", None)
    if profiles:
        found = sorted({int(p["input_ids"][1]) for p in profiles} - {1})
        if found:
            return found
    return list(PREFILL_LENGTHS)


def _chunks(n: int, lengths: Sequence[int]) -> list[tuple[int, int]]:
    """(real tokens, padded length) per prefill call for a prompt of ``n`` tokens."""
    out = []
    while n > lengths[-1]:
        out.append((lengths[-1], lengths[-1]))
        n -= lengths[-1]
    out.append((n, next(s for s in lengths if s >= n)))
    return out


def generate(
    model: Model,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    lengths: Sequence[int] | None = None,
    pad_id: int = 0,
    eos_id: int | None = None,
    max_ctx: int = CACHE_SHAPE[3],
    record: Callable[[Feeds], None] | None = None,
    forced: Sequence[int] | None = None,
) -> Generation:
    """Greedy generation of up to ``max_new_tokens`` after ``prompt_ids``.

    Stops early at ``eos_id`` or when the cache of ``max_ctx`` slots is full. ``record``,
    when given, sees every call's feeds (calibration data for INT8 builds). ``forced``
    (teacher forcing) feeds its tokens to the decode steps instead of the model's own
    choices, which ``tokens`` still records: each is the model's next token after the
    forced text, so one early difference does not change every later step.
    """
    prompt = [int(t) for t in prompt_ids]
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if not prompt:
        raise ValueError("the prompt needs at least one token")
    sizes = prefill_lengths(model, lengths)
    plan = _chunks(len(prompt), sizes)
    if sum(p for _, p in plan) > max_ctx:
        raise ValueError(f"a prompt of {len(prompt)} tokens padded to {[p for _, p in plan]} "
                         f"does not fit the {max_ctx}-slot cache")
    out = Generation(prompt=prompt, prefill_calls=[p for _, p in plan])
    cache = {name: np.zeros(CACHE_SHAPE, np.float32) for name in CACHE_INPUTS}

    def call(ids: list[int], position: int) -> np.ndarray:
        feeds = {"input_ids": np.array([ids], np.int64),
                 "position": np.array([position], np.int64), **cache}
        if record is not None:
            record(feeds)
        logits, *presents = runner_for(model, len(ids)).run(
            ["logits", *CACHE_OUTPUTS], feeds)
        cache.update(zip(CACHE_INPUTS, presents))
        return logits

    t0 = time.perf_counter()
    position = 0
    for real, padded in plan:
        chunk = prompt[position:position + real]
        logits = call(chunk + [pad_id] * (padded - real), position)
        position += real
    token = int(np.argmax(logits[0, real - 1]))
    out.tokens.append(token)
    t1 = time.perf_counter()
    out.first_token_s = t1 - t0
    while (len(out.tokens) < max_new_tokens and token != eos_id and position < max_ctx
           and (forced is None or len(out.tokens) <= len(forced))):
        fed = token if forced is None else int(forced[len(out.tokens) - 1])
        logits = call([fed], position)
        position += 1
        token = int(np.argmax(logits[0, 0]))
        out.tokens.append(token)
    out.decode_s = time.perf_counter() - t1
    return out


def compile_lengths(model: Any, lengths: Sequence[int], calibration: Sequence[Feeds] | None = None,
                    **options: Any) -> Any:
    """One qnnc compiled model with a shape profile per sequence length (the model's ``seq``
    dimension), for :func:`generate`: its run() picks the profile from the feeds. With
    ``calibration`` (feeds of any lengths, e.g. ``record``ed from a float run) every
    length is calibrated at once, each feed at its own length. ``options`` are
    :func:`compiler.api.compile_model`'s (``target="host"``, ...)."""
    return compile_model(model, input_shapes={"seq": sorted(set(lengths))},
                         calibration=calibration, **options)


__all__ = ["Generation", "compile_lengths", "generate", "prefill_lengths", "runner_for"]
