"""The recogniser's alphabet, CTC greedy decoding and the character-accuracy metric.

PP-OCR's recogniser scores every time step over ``blank + dictionary + space``: class 0 is
the CTC blank, classes 1..N the dictionary's characters in order (the rec model carries the
dictionary in its ONNX metadata, key ``character``, one per line) and the last class a
space.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

BLANK = 0


def alphabet(model: str | Path) -> list[str]:
    """Class index -> character for the PP-OCR recogniser at ``model`` (index 0, the blank,
    is the empty string)."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(model), load_external_data=False)
            .metadata_props}
    if "character" not in meta:
        raise ValueError(f"{model}: no 'character' dictionary in the ONNX metadata")
    return ["", *meta["character"].splitlines(), " "]


def greedy_decode(probs: np.ndarray, chars: Sequence[str]) -> tuple[str, float]:
    """Best path of one sequence ``probs`` [T, classes]: the argmax per step, repeats merged,
    blanks dropped. Returns the text and the mean probability of its characters (0 if
    none)."""
    best = probs.argmax(-1)
    keep = np.ones(len(best), bool)
    keep[1:] = best[1:] != best[:-1]
    keep &= best != BLANK
    idx = np.flatnonzero(keep)
    text = "".join(chars[best[i]] for i in idx)
    score = float(probs[idx, best[idx]].mean()) if len(idx) else 0.0
    return text, score


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance: insertions, deletions and substitutions each cost one."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_accuracy(pred: str, truth: str) -> float:
    """1 - edit distance / len(truth), floored at 0 (1.0 for an exact read)."""
    if not truth:
        return 1.0 if not pred else 0.0
    return max(0.0, 1.0 - edit_distance(pred, truth) / len(truth))


def corpus_accuracy(pairs: Sequence[tuple[str, str]]) -> float:
    """Character accuracy over many (prediction, truth) pairs: 1 - total edits / total
    truth length, so long lines weigh more than short ones."""
    edits = sum(edit_distance(p, t) for p, t in pairs)
    total = sum(len(t) for _, t in pairs)
    return max(0.0, 1.0 - edits / total) if total else 1.0
