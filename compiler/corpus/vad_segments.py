"""Speech segments from Silero VAD's per-chunk probabilities, and how to score them.

Silero gives one speech probability per 512-sample chunk (32 ms at 16 kHz), its recurrent
state carried from call to call. Segments follow the same rules as silero-vad's
``get_speech_timestamps``: speech starts at a chunk above ``threshold`` and ends only after
``min_silence_ms`` below ``threshold - 0.15`` (hysteresis, so a dip inside a word does not
split it); segments shorter than ``min_speech_ms`` are dropped and the rest padded by
``pad_ms`` on each side (without overlapping their neighbours).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from compiler.shipped_models import CHUNK, SR, STATE, vad_chunks

Segments = list[tuple[int, int]]  # sample ranges [start, end)
Step = Callable[[dict[str, np.ndarray]], Sequence[np.ndarray]]


def probabilities(step: Step, audio: np.ndarray, names: Sequence[str] = ("input", "state"),
                  ) -> np.ndarray:
    """Speech probability per chunk of ``audio``, calling ``step`` (a session's run with
    its output names bound) with the audio chunk and the state it returned last time."""
    state = np.zeros(STATE, np.float32)
    out = []
    for x in vad_chunks(audio):
        prob, state = step({names[0]: x, names[1]: state})[:2]
        out.append(float(np.ravel(prob)[0]))
    return np.array(out)


def speech_segments(probs: np.ndarray, n_samples: int, threshold: float = 0.5,
                    min_speech_ms: int = 250, min_silence_ms: int = 100, pad_ms: int = 30,
                    ) -> Segments:
    """Speech sample ranges from per-chunk probabilities (see the module docstring)."""
    neg = max(threshold - 0.15, 0.01)
    min_speech, min_silence = SR * min_speech_ms // 1000, SR * min_silence_ms // 1000
    pad = SR * pad_ms // 1000
    segs: Segments = []
    start: int | None = None
    silence_from: int | None = None
    for i, p in enumerate(probs):
        at = i * CHUNK
        if p >= threshold:
            silence_from = None
            if start is None:
                start = at
        elif start is not None and p < neg:
            if silence_from is None:
                silence_from = at
            if at + CHUNK - silence_from >= min_silence:
                if silence_from - start >= min_speech:
                    segs.append((start, silence_from))
                start, silence_from = None, None
    if start is not None and n_samples - start >= min_speech:
        segs.append((start, n_samples))
    out: Segments = []
    for k, (s, e) in enumerate(segs):
        lo = max(0, s - pad) if k == 0 else max(s - pad, (segs[k - 1][1] + s) // 2)
        hi = min(n_samples, e + pad) if k == len(segs) - 1 else min(e + pad, (e + segs[k + 1][0])
                                                                    // 2)
        out.append((lo, hi))
    return out


def mask(segments: Segments, n: int) -> np.ndarray:
    """Segments as a boolean per-sample mask of length n."""
    m = np.zeros(n, bool)
    for s, e in segments:
        m[max(0, s):min(n, e)] = True
    return m


def iou(a: Segments, b: Segments, n: int) -> float:
    """Intersection over union of the speech the two segmentations mark (1.0 when neither
    marks any)."""
    ma, mb = mask(a, n), mask(b, n)
    union = int((ma | mb).sum())
    return int((ma & mb).sum()) / union if union else 1.0


def frame_agreement(probs: np.ndarray, ref: np.ndarray, threshold: float = 0.5) -> float:
    """Share of chunks whose speech decision (p >= threshold) is the same in both."""
    return float(np.mean((probs >= threshold) == (ref >= threshold)))
