"""A PicoDet layout detector's outputs as boxes, and detections scored against each other.

PP-Structure's layout models (PicoDet with a GFL head) output, for each of four strides, a
sigmoid score per class and anchor point, and for each side of the box a distribution over
``reg_max + 1`` distance bins (logits). The distance is the distribution's mean times the
stride, measured from the anchor point at the centre of its cell. Boxes scoring above the
threshold are kept per class by greedy non-maximum suppression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STRIDES = (8, 16, 32, 64)
SCORE_THRESH = 0.5  # rapid-layout's default confidence threshold
NMS_IOU = 0.5
TOP_K = 1000  # candidates per stride before NMS


@dataclass(frozen=True)
class Detection:
    label: int
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in input pixels


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each box of ``a`` [n, 4] with each of ``b`` [m, 4]: [n, m]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _nms(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> list[int]:
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        if order:
            rest = np.array(order)
            order = list(rest[iou(boxes[i:i + 1], boxes[rest])[0] <= thresh])
    return keep


def decode(outputs: Sequence[np.ndarray], size: tuple[int, int],
           score_thresh: float = SCORE_THRESH) -> list[Detection]:
    """Detections from the model's eight outputs (four score maps [1, n, classes], then four
    distance distributions [1, n, 4 * bins]) for an input of ``size`` (h, w)."""
    levels = len(outputs) // 2
    boxes, scores = [], []
    for stride, score, dist in zip(STRIDES, outputs[:levels], outputs[levels:]):
        gh, gw = -(-size[0] // stride), -(-size[1] // stride)
        score, dist = np.asarray(score[0], np.float64), np.asarray(dist[0], np.float64)
        if score.shape[0] != gh * gw:
            raise ValueError(f"stride {stride}: {score.shape[0]} anchors, expected {gh * gw}")
        bins = dist.shape[-1] // 4
        d = (_softmax(dist.reshape(-1, 4, bins)) * np.arange(bins)).sum(-1) * stride
        yy, xx = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        cx, cy = (xx.ravel() + 0.5) * stride, (yy.ravel() + 0.5) * stride
        top = np.argsort(-score.max(axis=1), kind="stable")[:TOP_K]
        boxes.append(np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]],
                              axis=1)[top])
        scores.append(score[top])
    allb, alls = np.concatenate(boxes), np.concatenate(scores)
    allb[:, [0, 2]] = allb[:, [0, 2]].clip(0, size[1])
    allb[:, [1, 3]] = allb[:, [1, 3]].clip(0, size[0])
    out: list[Detection] = []
    for c in range(alls.shape[1]):
        sel = np.nonzero(alls[:, c] > score_thresh)[0]
        for k in _nms(allb[sel], alls[sel, c], NMS_IOU):
            i = sel[k]
            out.append(Detection(c, float(alls[i, c]),
                                 tuple(float(v) for v in allb[i])))  # type: ignore[arg-type]
    return out


def matched(ref: Sequence[Detection], got: Sequence[Detection],
            thresh: float = 0.5) -> int:
    """How many of ``got`` match a distinct box of ``ref`` with the same label at IoU >=
    ``thresh`` (greedy, highest scores first)."""
    n = 0
    for c in {d.label for d in ref} & {d.label for d in got}:
        r = [d for d in ref if d.label == c]
        g = sorted((d for d in got if d.label == c), key=lambda d: -d.score)
        m = iou(np.array([d.box for d in g]), np.array([d.box for d in r]))
        free = np.ones(len(r), bool)
        for row in m:
            cand = np.where(free, row, -1.0)
            j = int(cand.argmax())
            if cand[j] >= thresh:
                free[j] = False
                n += 1
    return n


def f1(ref: Sequence[Detection], got: Sequence[Detection], thresh: float = 0.5) -> float:
    """The F1 score of ``got`` against ``ref`` (1.0 when both are empty)."""
    if not ref and not got:
        return 1.0
    return 2 * matched(ref, got, thresh) / (len(ref) + len(got))
