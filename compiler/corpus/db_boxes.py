"""Text boxes from a DB (differentiable binarisation) probability map, in numpy.

PP-OCR's detector outputs, per pixel, the probability that it lies in the shrunk core of a
text region. The boxes come from that map in four steps: threshold it, split the mask into
8-connected components, score each component by its mean probability (dropping weak and
tiny ones), and grow each box back out by the distance the training shrank it by
("unclip": ``area * ratio / perimeter``, for a w x h rectangle ``w*h*ratio / (2(w+h))``).
Boxes are axis-aligned: the pages here turn by a degree or two at most.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned box (x0, y0) inclusive to (x1, y1) exclusive, and its score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    def scaled(self, sx: float, sy: float) -> Box:
        return Box(self.x0 * sx, self.y0 * sy, self.x1 * sx, self.y1 * sy, self.score)


def _runs(mask: np.ndarray) -> list[tuple[int, int, int]]:
    """The horizontal runs of True pixels: (row, start, end exclusive), row by row."""
    out = []
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    for y in np.flatnonzero(mask.any(axis=1)):
        starts, ends = np.flatnonzero(edges[y] == 1), np.flatnonzero(edges[y] == -1)
        out += [(int(y), int(s), int(e)) for s, e in zip(starts, ends)]
    return out


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask: labels [h, w] (0 = background, 1..n) and
    n. Runs of one row join runs of the row above that overlap or touch diagonally
    (union-find over runs)."""
    runs = _runs(mask)
    parent = list(range(len(runs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    prev: list[int] = []  # run indices of the row above
    row_start = 0
    for i, (y, s, e) in enumerate(runs):
        if i == 0 or y != runs[i - 1][0]:
            prev = [j for j in range(row_start, i) if runs[j][0] == y - 1]
            row_start = i
        for j in prev:
            _, ps, pe = runs[j]
            if s <= pe and ps <= e:  # [s, e) and [ps, pe) overlap or touch at a corner
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    labels = np.zeros(mask.shape, np.int32)
    ids: dict[int, int] = {}
    for i, (y, s, e) in enumerate(runs):
        root = find(i)
        labels[y, s:e] = ids.setdefault(root, len(ids) + 1)
    return labels, len(ids)


def unclip(x0: float, y0: float, x1: float, y1: float, ratio: float,
           ) -> tuple[float, float, float, float]:
    """The rectangle grown on every side by ``area * ratio / perimeter``."""
    w, h = x1 - x0, y1 - y0
    d = w * h * ratio / (2 * (w + h)) if w + h > 0 else 0.0
    return x0 - d, y0 - d, x1 + d, y1 + d


def db_boxes(prob: np.ndarray, thresh: float = 0.3, box_thresh: float = 0.5,
             unclip_ratio: float = 1.6, min_size: int = 3) -> list[Box]:
    """Boxes of the text regions in ``prob`` [h, w], in its pixel coordinates, clipped to
    the map; in reading order (top to bottom, then left to right)."""
    h, w = prob.shape
    labels, n = label(prob > thresh)
    boxes = []
    for k in range(1, n + 1):
        ys, xs = np.nonzero(labels == k)
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        if min(x1 - x0, y1 - y0) < min_size:
            continue
        score = float(prob[ys, xs].mean())
        if score < box_thresh:
            continue
        bx0, by0, bx1, by1 = unclip(float(x0), float(y0), float(x1), float(y1), unclip_ratio)
        boxes.append(Box(max(0.0, bx0), max(0.0, by0), min(float(w), bx1), min(float(h), by1),
                         score))
    return sorted(boxes, key=lambda b: (round((b.y0 + b.y1) / 2 / 10), b.x0))
