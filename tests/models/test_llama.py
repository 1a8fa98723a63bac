"""The Llama example decoder (compiler/examples/llama.py) and the generate loop over it.

The model here is trained for a few steps only (a peaked but poor language model), so the
tests stay fast; the benchmark uses the example as ``qnnc example llama`` builds it.

Tolerances (float32 against onnxruntime; summation orders differ, nothing else should):
- logits within 2e-4 absolute (they are of order 10), caches within 1e-5;
- the float64 training forward against the graph: logits within 2e-4;
- greedy tokens of qnnc f32 equal onnxruntime's, token for token;
- INT8 host C equals the interpreter: codes bit for bit, float islands within 1e-4;
- INT8 greedy tokens agree with f32 at >= MIN_INT8_AGREEMENT of the positions (measured:
  see the constant).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from compiler.api import compile_model
from compiler.examples.llama import (
    CACHE_SHAPE,
    build_llama,
    empty_cache,
    step_feeds,
)
from compiler.examples.llama_train import corpus, window_logits
from compiler.generate import compile_lengths, generate
from tests.codegen.harness import check_codes_exact, expose_island_inputs, run_c

ort = pytest.importorskip("onnxruntime")

TRAIN_STEPS = 30
LOGITS_ATOL = 2e-4
CACHE_ATOL = 1e-5
LENGTHS = (1, 16, 32)
NEW_TOKENS = 24
#: share of greedy tokens where qnnc INT8 (minmax calibration, every length calibrated at
#: once as one model of shape profiles) equals f32 over the test prompts: measured 72/96
#: with this model and these prompts; the bound leaves a margin below it. The default
#: percentile method gives 60/96 (28/96 before the logits kept their raw range: clipping
#: the winning logit ties the argmax), entropy 68/96, mse 56/96
MIN_INT8_AGREEMENT = 0.6
INT8_METHOD = "minmax"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, onnx.ModelProto]:
    proto = build_llama(seed=0, train_steps=TRAIN_STEPS)
    path = tmp_path_factory.mktemp("llama") / "llama.onnx"
    onnx.save(proto, path)
    return path, proto


@pytest.fixture(scope="module")
def session(model: tuple[Path, onnx.ModelProto]) -> object:
    return ort.InferenceSession(str(model[0]), providers=["CPUExecutionProvider"])


def _prompts(count: int, start: int, length: int = 12) -> list[np.ndarray]:
    text = np.frombuffer(corpus(), np.uint8)
    return [text[start + 97 * k:start + 97 * k + length + 3 * k] for k in range(count)]


@pytest.fixture(scope="module")
def calibration(session: object) -> list[dict[str, np.ndarray]]:
    """Every call's feeds of f32 generations after other prompts than the tests use."""
    feeds: list[dict[str, np.ndarray]] = []
    for p in _prompts(6, start=0):
        generate(session, p, 16, lengths=LENGTHS[1:], record=feeds.append)
    return feeds


def _decode_feeds(session: object) -> dict[str, np.ndarray]:
    """A decode step's feeds with a cache filled by a real prefill and a few steps."""
    feeds: list[dict[str, np.ndarray]] = []
    generate(session, _prompts(1, start=5000)[0], 6, lengths=LENGTHS[1:], record=feeds.append)
    return feeds[-1]


def _ort(session: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return session.run(None, feeds)  # type: ignore[attr-defined]


def test_graph_is_the_training_forward(model: tuple[Path, onnx.ModelProto],
                                       session: object) -> None:
    params = {t.name: onnx.numpy_helper.to_array(t) for t in model[1].graph.initializer}
    ids = _prompts(1, start=3000, length=16)[0][None, :16].astype(np.int64)
    want = window_logits(params, ids)
    (got, _, _) = _ort(session, step_feeds(ids, 0, empty_cache()))
    np.testing.assert_allclose(got, want, atol=LOGITS_ATOL, rtol=0)


def test_cache_written_at_positions_only(session: object) -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 256, (1, 16))
    pasts = [{n: rng.standard_normal(CACHE_SHAPE).astype(np.float32) for n in
              ("past_key", "past_value")} for _ in range(2)]
    outs = [_ort(session, step_feeds(ids, 5, past)) for past in pasts]
    for (_, key, value), past in zip(outs, pasts):
        for new, old in ((key, past["past_key"]), (value, past["past_value"])):
            np.testing.assert_array_equal(new[:, :, :, :5], old[:, :, :, :5])
            np.testing.assert_array_equal(new[:, :, :, 21:], old[:, :, :, 21:])
            assert not np.array_equal(new[:, :, :, 5:21], old[:, :, :, 5:21])
    # the first layer's keys and values depend on the tokens and positions only
    for k in (1, 2):
        np.testing.assert_allclose(outs[0][k][0, :, :, 5:21], outs[1][k][0, :, :, 5:21],
                                   atol=CACHE_ATOL)


def test_padded_prefill_then_steps_is_one_prefill(session: object) -> None:
    """10 tokens padded to 16, then 6 one-token steps, see what one 16-token call sees."""
    ids = _prompts(1, start=4000, length=16)[0][:16].astype(np.int64)
    (whole, key, _) = _ort(session, step_feeds(ids, 0, empty_cache()))
    padded = np.concatenate([ids[:10], np.zeros(6, np.int64)])
    logits, k, v = _ort(session, step_feeds(padded, 0, empty_cache()))
    rows = [logits[0, :10]]
    for i in range(10, 16):
        logits, k, v = _ort(session, step_feeds(ids[i:i + 1], i,
                                                {"past_key": k, "past_value": v}))
        rows.append(logits[0])
    np.testing.assert_allclose(np.concatenate(rows)[None], whole, atol=LOGITS_ATOL, rtol=0)
    np.testing.assert_allclose(k[:, :, :, :16], key[:, :, :, :16], atol=CACHE_ATOL)


def test_qnnc_f32_matches_onnxruntime(model: tuple[Path, onnx.ModelProto], session: object,
                                      tmp_path: Path) -> None:
    decode = _decode_feeds(session)
    prefill = step_feeds(_prompts(1, start=6000, length=16)[0][:16], 0, empty_cache())
    for feeds in (decode, prefill):
        seq = feeds["input_ids"].shape[1]
        cm = compile_model(model[0], input_shapes={"input_ids": (1, seq)})
        for got, want in zip(cm.run(None, feeds), _ort(session, feeds)):
            np.testing.assert_allclose(got, want, atol=LOGITS_ATOL, rtol=0)
    # host C of the decode step
    step = compile_model(model[0], input_shapes={"input_ids": (1, 1)})
    got = run_c(step.graph, decode, tmp_path / "f32")
    for name, want in zip(step.output_names, _ort(session, decode)):
        np.testing.assert_allclose(got[name], want, atol=LOGITS_ATOL, rtol=0, err_msg=name)


def test_int8_decode_step_host_is_the_interpreter(
        model: tuple[Path, onnx.ModelProto], session: object,
        calibration: list[dict[str, np.ndarray]], tmp_path: Path) -> None:
    step = compile_lengths(model[0], [1], calibration)
    check_codes_exact(expose_island_inputs(step.graph), _decode_feeds(session), tmp_path / "q8")


def test_generate_f32_qnnc_equals_onnxruntime(model: tuple[Path, onnx.ModelProto],
                                              session: object) -> None:
    qnnc = compile_lengths(model[0], LENGTHS)
    for prompt in _prompts(3, start=8000):
        want = generate(session, prompt, NEW_TOKENS, lengths=LENGTHS[1:])
        got = generate(qnnc, prompt, NEW_TOKENS)
        assert got.tokens == want.tokens
        assert got.prefill_calls == want.prefill_calls == [16 if len(prompt) <= 16 else 32]


def test_generate_int8_agrees_with_f32(model: tuple[Path, onnx.ModelProto], session: object,
                                       calibration: list[dict[str, np.ndarray]]) -> None:
    q8 = compile_lengths(model[0], LENGTHS, calibration, calib_method=INT8_METHOD)
    same, total = 0, 0
    for prompt in _prompts(4, start=8000):
        want = generate(session, prompt, NEW_TOKENS, lengths=LENGTHS[1:]).tokens
        got = generate(q8, prompt, NEW_TOKENS).tokens
        same += sum(a == b for a, b in zip(got, want))
        total += len(want)
    print(f"INT8 greedy tokens equal to f32: {same}/{total}")
    assert same / total >= MIN_INT8_AGREEMENT


def test_teacher_forcing_feeds_the_given_tokens(session: object) -> None:
    prompt = _prompts(1, start=8000)[0]
    free = generate(session, prompt, NEW_TOKENS, lengths=LENGTHS[1:]).tokens
    # forced with its own choices, generation is unchanged
    assert generate(session, prompt, NEW_TOKENS, lengths=LENGTHS[1:], forced=free).tokens == free
    # forced with other text, each step predicts after that text: the first token (from the
    # prompt alone) is the same, the later ones follow the forced text, not the model's own
    other = [(t + 1) % 256 for t in free]
    feeds: list[dict[str, np.ndarray]] = []
    got = generate(session, prompt, NEW_TOKENS, lengths=LENGTHS[1:], forced=other,
                   record=feeds.append).tokens
    assert got[0] == free[0] and len(got) == len(free)
    steps = [int(f["input_ids"][0, 0]) for f in feeds if f["input_ids"].shape[1] == 1]
    assert steps == other[:len(steps)] and len(steps) == NEW_TOKENS - 1


def test_deterministic_per_seed() -> None:
    a = build_llama(seed=0, train_steps=2).SerializeToString()
    assert a == build_llama(seed=0, train_steps=2).SerializeToString()
    assert a != build_llama(seed=1, train_steps=2).SerializeToString()
