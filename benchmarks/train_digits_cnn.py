"""Train the small digits CNN that INT8 accuracy is measured on, and export it as ONNX.

Quantisation error only means something on a trained network and real inputs: random weights
give logits that no one can call right or wrong. This script trains a four-layer CNN on
scikit-learn's bundled 8×8 digits (compiler.datasets.digits_split, the same split the tests
use) with plain numpy — forward and backward passes written out, so it needs nothing beyond
the test extras — and writes tests/fixtures/digits_cnn.onnx. Everything is seeded, so a rerun
gives the same weights on the same machine (BLAS builds may differ in the last bits). It runs
on one BLAS thread and takes about 15 seconds.

    python -m benchmarks.train_digits_cnn [--out tests/fixtures/digits_cnn.onnx]

Network (static batch of 1, the shape a deployed classifier sees; NCHW float32):
    input [1,1,8,8] → Conv 3×3 8ch pad 1 → Relu → Conv 3×3 16ch pad 1 → Relu → MaxPool 2×2
    → Conv 3×3 16ch pad 1 → Relu → Flatten [1,256] → Gemm 10 → logits [1,10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.datasets import digits_split

Params = dict[str, np.ndarray]
Cache = tuple

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "digits_cnn.onnx"
OPSET = 17
#: (name, in channels, out channels) of the three 3×3 convolutions, in order
CONVS = (("conv1", 1, 8), ("conv2", 8, 16), ("conv3", 16, 16))
N_CLASSES = 10
FC_IN = 16 * 4 * 4


# ---- layers: each forward returns (output, cache), each backward takes (grad, cache) ----

def conv3x3_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    """3×3 convolution, stride 1, zero padding 1, as one matmul over im2col patches."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # n,c,h,w,3,3
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * wd, c * 9)
    out = cols @ w.reshape(w.shape[0], -1).T + b
    y = out.reshape(n, h, wd, -1).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(y), (x.shape, cols, w)


def conv3x3_backward(
    dy: np.ndarray, cache: Cache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of conv3x3_forward; col2im scatters patch gradients back, one tap at a time."""
    (n, c, h, wd), cols, w = cache
    f = w.shape[0]
    dout = dy.transpose(0, 2, 3, 1).reshape(-1, f)
    dw = (dout.T @ cols).reshape(w.shape)
    db = dout.sum(axis=0)
    dcols = (dout @ w.reshape(f, -1)).reshape(n, h, wd, c, 3, 3)
    dxp = np.zeros((n, c, h + 2, wd + 2), dtype=dy.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + h, j:j + wd] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, 1:-1, 1:-1], dw, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    return np.maximum(x, 0), (x > 0,)


def relu_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    return dy * cache[0]


def maxpool2_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """2×2 max pool, stride 2; remembers which of the four inputs won (the first on ties)."""
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    blocks = blocks.reshape(n, c, h // 2, w // 2, 4)
    arg = blocks.argmax(axis=-1)
    y = np.take_along_axis(blocks, arg[..., None], axis=-1)[..., 0]
    return y, (x.shape, arg)


def maxpool2_backward(dy: np.ndarray, cache: Cache) -> np.ndarray:
    (n, c, h, w), arg = cache
    blocks = np.zeros((n, c, h // 2, w // 2, 4), dtype=dy.dtype)
    np.put_along_axis(blocks, arg[..., None], dy[..., None], axis=-1)
    blocks = blocks.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return blocks.reshape(n, c, h, w)


def softmax_xent(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of integer labels and its gradient with respect to the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = float(-np.log(p[rows, y] + 1e-12).mean())
    p[rows, y] -= 1
    return loss, p / len(y)


# ---- the network ----

def init_params(rng: np.random.Generator) -> Params:
    """He-normal weights (the layers feed ReLUs), zero biases."""
    p: Params = {}
    for name, cin, cout in CONVS:
        p[f"{name}.weight"] = rng.normal(0, np.sqrt(2 / (cin * 9)), (cout, cin, 3, 3))
        p[f"{name}.bias"] = np.zeros(cout)
    p["fc.weight"] = rng.normal(0, np.sqrt(1 / FC_IN), (N_CLASSES, FC_IN))
    p["fc.bias"] = np.zeros(N_CLASSES)
    return {k: v.astype(np.float32) for k, v in p.items()}


def forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, list[Cache]]:
    """Logits [n, 10] of images [n, 1, 8, 8], plus what backward needs."""
    caches: list[Cache] = []
    h = x
    for i, (name, _, _) in enumerate(CONVS):
        h, c = conv3x3_forward(h, p[f"{name}.weight"], p[f"{name}.bias"])
        caches.append(c)
        h, c = relu_forward(h)
        caches.append(c)
        if i == 1:
            h, c = maxpool2_forward(h)
            caches.append(c)
    flat = h.reshape(len(h), -1)
    caches.append((h.shape, flat))
    return flat @ p["fc.weight"].T + p["fc.bias"], caches


def backward(p: Params, dlogits: np.ndarray, caches: list[Cache]) -> Params:
    """Gradients of every parameter, walking forward's caches in reverse."""
    g: Params = {}
    shape, flat = caches.pop()
    g["fc.weight"] = dlogits.T @ flat
    g["fc.bias"] = dlogits.sum(axis=0)
    dh = (dlogits @ p["fc.weight"]).reshape(shape)
    for i in reversed(range(len(CONVS))):
        name = CONVS[i][0]
        if i == 1:
            dh = maxpool2_backward(dh, caches.pop())
        dh = relu_backward(dh, caches.pop())
        dh, g[f"{name}.weight"], g[f"{name}.bias"] = conv3x3_backward(dh, caches.pop())
    return g


def predict(p: Params, x: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([forward(p, x[i:i + batch])[0] for i in range(0, len(x), batch)])


def train(
    x: np.ndarray, y: np.ndarray, *, epochs: int, seed: int, batch: int = 32, lr: float = 3e-3
) -> Params:
    """Adam with a cosine-decayed learning rate over shuffled mini-batches."""
    rng = np.random.default_rng(seed)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = -(-len(x) // batch)
    total, t = epochs * steps_per_epoch, 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for s in range(0, len(x), batch):
            idx = order[s:s + batch]
            logits, caches = forward(p, x[idx])
            loss, dlogits = softmax_xent(logits, y[idx])
            losses.append(loss)
            grads = backward(p, dlogits.astype(np.float32), caches)
            t += 1
            rate = lr * 0.5 * (1 + float(np.cos(np.pi * (t - 1) / total)))
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * grads[k]
                v[k] = b2 * v[k] + (1 - b2) * grads[k] ** 2
                step = rate * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
                p[k] = (p[k] - step).astype(np.float32)
        if epoch % 5 == 4 or epoch == epochs - 1:
            print(f"epoch {epoch + 1:3d}  loss {np.mean(losses):.4f}")
    return p


# ---- export ----

def to_onnx(p: Params) -> onnx.ModelProto:
    """The trained network as an opset-17 ONNX graph: input "input" [1,1,8,8] → "logits"."""
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [1, 1]}
    nodes = []
    h = "input"
    for i, (name, _, _) in enumerate(CONVS):
        nodes.append(helper.make_node(
            "Conv", [h, f"{name}.weight", f"{name}.bias"], [f"{name}.out"], name=name, **conv))
        nodes.append(helper.make_node(
            "Relu", [f"{name}.out"], [f"{name}.relu"], name=f"{name}.relu"))
        h = f"{name}.relu"
        if i == 1:
            nodes.append(helper.make_node(
                "MaxPool", [h], ["pool.out"], name="pool", kernel_shape=[2, 2], strides=[2, 2]))
            h = "pool.out"
    nodes.append(helper.make_node("Flatten", [h], ["flat"], name="flatten", axis=1))
    nodes.append(helper.make_node(
        "Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1))
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, N_CLASSES])],
        initializer=[numpy_helper.from_array(a, k) for k, a in p.items()],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="qnnc benchmarks/train_digits_cnn.py",
        ir_version=8,
    )
    model.doc_string = (
        "Digits CNN trained on sklearn load_digits (compiler.datasets.digits_split); "
        "input: one 8x8 image scaled to [0,1], NCHW float32; output: class logits."
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def max_diff_vs_onnxruntime(model: onnx.ModelProto, p: Params, x: np.ndarray) -> float:
    """Largest |logit difference| between onnxruntime on the export and the numpy forward."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = np.concatenate([sess.run(["logits"], {"input": xi[None]})[0] for xi in x])
    return float(np.abs(got - predict(p, x)).max())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the .onnx")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    # one BLAS thread: these matmuls are too small to gain from more, and a fixed thread count
    # keeps the summation order, so the weights, the same from run to run
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    threadpool_limits(1)
    x_train, y_train, x_test, y_test = digits_split()
    print(f"train {len(x_train)} images, test {len(x_test)} images")
    t0 = time.perf_counter()
    p = train(x_train, y_train, epochs=args.epochs, seed=args.seed)
    print(f"trained in {time.perf_counter() - t0:.1f} s")
    train_acc = float((predict(p, x_train).argmax(1) == y_train).mean())
    test_acc = float((predict(p, x_test).argmax(1) == y_test).mean())
    print(f"float accuracy: train {train_acc:.4f}, test {test_acc:.4f}")

    model = to_onnx(p)
    print(f"onnxruntime vs numpy forward on the test split: max |diff| "
          f"{max_diff_vs_onnxruntime(model, p, x_test):.3g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(model.SerializeToString())
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
