"""INT8 accuracy on the shipped PP-OCR models: qnnc against onnxruntime's f32 result, side by
side with onnxruntime's own static quantisation.

    python -m benchmarks.shipped_models                       # det, rec, cls
    python -m benchmarks.shipped_models --models rec,cls --calib 8 --eval 4 --no-c

For each of PP-OCRv4 det (1x3x320x320), rec (1x3x48x320) and the PP-OCR direction classifier
(1x3x48x192), on rendered text images (compiler/shipped_models.py; calibration and
evaluation images use different seeds):

| column        | what runs                                                                    |
|---------------|------------------------------------------------------------------------------|
| qnnc interp   | `compile_model(..., precision="int8", calibration=C)` on the interpreter      |
| qnnc host C   | the same, built with `target="host"` (absent where the C build fails)        |
| ORT int8      | `quantize_static` (QDQ, per-channel, MinMax, u8 activations, s8 weights) on C  |

Each is compared with onnxruntime's f32 output: det, the fraction of pixels on which the
>0.3 text mask agrees; rec, the fraction of time steps whose argmax (decoded character)
agrees; cls, the fraction of labels (upright / upside down) that agree. The numbers are for
reports, never test assertions.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx

from benchmarks.host_latency import ort_quantize, ort_session
from compiler.api import compile_model
from compiler.shipped_models import OCR_MODELS, model_file, ocr_input

Feeds = dict[str, np.ndarray]


def agreement(name: str, ref: np.ndarray, got: np.ndarray) -> float:
    """How often ``got`` makes the same decision as the f32 reference ``ref``."""
    if name == "det":
        return float(np.mean((ref > 0.3) == (got > 0.3)))
    return float(np.mean(ref.argmax(-1) == got.argmax(-1)))


def image(name: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """One input; for cls every other one upside down (the second of a rendered pair)."""
    if name != "cls":
        return ocr_input(name, shape, seed=seed)
    k = seed % 2
    return ocr_input(name, (2, *shape[1:]), seed=seed)[k:k + 1]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def measure(name: str, n_calib: int, n_eval: int, with_c: bool, folder: Path,
            ) -> dict[str, float | str]:
    m = OCR_MODELS[name]
    path = model_file(m)
    if path is None:
        return {"error": f"{m.package} is not installed"}
    shape = m.shapes["x"]
    calib = [{"x": image(name, shape, 100 + i)} for i in range(n_calib)]
    evals = [{"x": image(name, shape, i)} for i in range(n_eval)]
    f32 = ort_session(str(path), 1)
    refs = [f32.run(None, f)[0] for f in evals]
    out: dict[str, float | str] = {}

    def score(key: str, run: Callable[[Feeds], np.ndarray]) -> None:
        try:
            out[key] = float(np.mean([agreement(name, r, run(f)) for r, f in zip(refs, evals)]))
        except Exception as e:  # a failed contender is a reported result, not a crash
            out[key] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:90]}"

    log(f"{name}: qnnc int8 (interpreter)")
    try:
        cm = compile_model(path, input_shapes=m.shapes, precision="int8", calibration=calib)
        score("qnnc interp", lambda f: cm.run(None, f)[0])
    except Exception as e:
        out["qnnc interp"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:90]}"
    if with_c:
        log(f"{name}: qnnc int8 (host C)")
        try:
            cc = compile_model(path, input_shapes=m.shapes, precision="int8", calibration=calib,
                               target="host")
            score("qnnc host C", lambda f: cc.run(None, f)[0])
        except Exception as e:
            out["qnnc host C"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:90]}"
    log(f"{name}: onnxruntime quantize_static")
    try:
        q = ort_session(ort_quantize(onnx.load(path), calib, folder), 1)
        score("ORT int8", lambda f: q.run(None, f)[0])
    except Exception as e:
        out["ORT int8"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:90]}"
    return out


METRIC = {"det": "text-mask pixels (>0.3) agreeing", "rec": "time steps, argmax agreeing",
          "cls": "labels agreeing"}
COLUMNS = ["qnnc interp", "qnnc host C", "ORT int8"]


def report(results: dict[str, dict[str, float | str]]) -> str:
    lines = ["INT8 vs onnxruntime f32 on rendered text (fraction agreeing; 1.0 = identical)", ""]
    head = f"{'model':6} {'measure':34} " + " ".join(f"{c:>12}" for c in COLUMNS)
    lines += [head, "-" * len(head)]
    notes = []
    for name, res in results.items():
        cells = []
        for c in COLUMNS:
            v = res.get(c)
            if isinstance(v, float):
                cells.append(f"{v:12.4f}")
            else:
                cells.append(f"{'-' if v is None else 'failed':>12}")
                if v is not None:
                    notes.append(f"  {name} {c}: {v}")
        if "error" in res:
            notes.append(f"  {name}: {res['error']}")
        lines.append(f"{name:6} {METRIC[name]:34} " + " ".join(cells))
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="det,rec,cls")
    ap.add_argument("--calib", type=int, default=8, help="calibration images (default 8)")
    ap.add_argument("--eval", type=int, default=4, help="evaluation images (default 4)")
    ap.add_argument("--no-c", action="store_true", help="skip the host C builds")
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: measure(name, args.calib, args.eval, not args.no_c, Path(tmp))
                   for name in args.models.split(",")}
    print(report(results))


if __name__ == "__main__":
    main()
