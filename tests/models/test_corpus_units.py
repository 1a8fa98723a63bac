"""The corpus tasks' post-processing on hand-made inputs: edit distance and character
accuracy, CTC greedy decoding, connected components and DB boxes, speech segments with
their hysteresis, IoU, and the 22.05 -> 16 kHz resampling. No models, fonts or audio
packages needed."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.corpus.ctc import char_accuracy, corpus_accuracy, edit_distance, greedy_decode
from compiler.corpus.db_boxes import db_boxes, label, unclip
from compiler.corpus.ocr_pipeline import line_input, rec_width
from compiler.corpus.speech import resample
from compiler.corpus.vad_segments import frame_agreement, iou, speech_segments
from compiler.shipped_models import CHUNK, SR


@pytest.mark.parametrize(("a", "b", "d"), [
    ("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3),
    ("发票金额", "发票全额", 1), ("abc", "acb", 2), ("flaw", "lawn", 2)])
def test_edit_distance(a: str, b: str, d: int) -> None:
    assert edit_distance(a, b) == d
    assert edit_distance(b, a) == d


def test_char_accuracy() -> None:
    assert char_accuracy("hello", "hello") == 1.0
    assert char_accuracy("hallo", "hello") == pytest.approx(0.8)
    assert char_accuracy("completely different", "abc") == 0.0  # floored
    assert char_accuracy("", "") == 1.0 and char_accuracy("x", "") == 0.0
    # pooled: 1 edit over 10 truth characters, plus a spurious read of 2 characters
    assert corpus_accuracy([("abcdefghiX", "abcdefghij"), ("zz", "")]) == pytest.approx(0.7)


def _onehot(seq: list[int], classes: int = 5) -> np.ndarray:
    p = np.full((len(seq), classes), 0.01, np.float32)
    p[np.arange(len(seq)), seq] = 0.96
    return p


def test_greedy_decode_merges_repeats_and_drops_blanks() -> None:
    chars = ["", "a", "b", "c", " "]
    # a a _ a b b _ _ c space  ->  "aabc " (a blank separates the two a's)
    text, score = greedy_decode(_onehot([1, 1, 0, 1, 2, 2, 0, 0, 3, 4]), chars)
    assert text == "aabc "
    assert score == pytest.approx(0.96)
    assert greedy_decode(_onehot([0, 0, 0]), chars) == ("", 0.0)


def test_label_joins_diagonal_neighbours() -> None:
    m = np.zeros((6, 8), bool)
    m[0, 0] = m[1, 1] = m[2, 2] = True  # one diagonal stroke
    m[0, 5:8] = True  # a separate bar
    m[4:6, 0:2] = True  # a block
    m[3, 6] = m[5, 7] = True  # not touching each other (two rows apart)
    labels, n = label(m)
    assert n == 5
    assert len({labels[0, 0], labels[1, 1], labels[2, 2]}) == 1
    assert labels[0, 5] == labels[0, 7] != labels[0, 0]
    assert (labels > 0).sum() == m.sum()


def test_label_u_shape_is_one_component() -> None:
    """Two arms that meet only at the bottom: found joined though the first row sees two."""
    m = np.zeros((5, 5), bool)
    m[0:4, 0] = m[0:4, 4] = True
    m[4, :] = True
    assert label(m)[1] == 1


def test_unclip_grows_by_area_ratio_over_perimeter() -> None:
    d = 20 * 6 * 1.6 / (2 * 26)
    assert unclip(10, 10, 30, 16, 1.6) == pytest.approx((10 - d, 10 - d, 30 + d, 16 + d))


def test_db_boxes() -> None:
    prob = np.zeros((40, 60), np.float32)
    prob[5:11, 10:30] = 0.9  # a line
    prob[20:26, 40:55] = 0.8  # a second line, to the right and below
    prob[20:26, 5:20] = 0.35  # above the pixel threshold, below the box score: dropped
    prob[33:35, 33:35] = 0.95  # 2 x 2: smaller than min_size, dropped
    boxes = db_boxes(prob, thresh=0.3, box_thresh=0.5, unclip_ratio=1.6, min_size=3)
    assert len(boxes) == 2
    d = 20 * 6 * 1.6 / 52
    first, second = boxes
    assert (first.x0, first.y0, first.x1, first.y1) == pytest.approx((10 - d, 5 - d, 30 + d,
                                                                       11 + d))
    assert first.score == pytest.approx(0.9)
    d2 = 15 * 6 * 1.6 / 42
    assert (second.x0, second.x1) == pytest.approx((40 - d2, 55 + d2))
    # clipped at the map's edge
    edge = np.zeros((10, 10), np.float32)
    edge[0:4, 0:10] = 0.9
    (b,) = db_boxes(edge)
    assert (b.x0, b.y0, b.x1) == (0.0, 0.0, 10.0)


def test_rec_width_pads_to_smallest_covering_profile() -> None:
    assert rec_width(100, 48, [320]) == (100, 320)
    assert rec_width(100, 24, [160, 320, 640]) == (200, 320)
    assert rec_width(2000, 48, [160, 320, 640]) == (640, 640)  # squeezed to the widest
    x = line_input(np.full((30, 60, 3), 255, np.uint8), 96, 160)
    assert x.shape == (1, 3, 48, 160)
    assert np.allclose(x[..., :96], 1.0) and np.all(x[..., 96:] == 0)


def _probs(*runs: tuple[float, int]) -> np.ndarray:
    return np.concatenate([np.full(n, p) for p, n in runs])


def test_speech_segments_padding_and_minimums() -> None:
    probs = _probs((0.1, 10), (0.9, 20), (0.1, 10))
    pad = SR * 30 // 1000
    assert speech_segments(probs, 40 * CHUNK) == [(10 * CHUNK - pad, 30 * CHUNK + pad)]
    # 5 chunks = 160 ms of speech: shorter than min_speech_ms=250, dropped
    assert speech_segments(_probs((0.1, 10), (0.9, 5), (0.1, 10)), 25 * CHUNK) == []
    # speech running to the end closes at the last sample
    assert speech_segments(_probs((0.1, 4), (0.9, 12)), 16 * CHUNK) == [
        (4 * CHUNK - pad, 16 * CHUNK)]


def test_speech_segments_hysteresis() -> None:
    n = 50 * CHUNK
    # a dip to 0.4 (under threshold 0.5, over its exit level 0.35) does not end speech
    one = speech_segments(_probs((0.1, 5), (0.9, 10), (0.4, 10), (0.9, 10), (0.1, 15)), n)
    assert len(one) == 1
    # a dip below 0.35 for 2 chunks (64 ms < min_silence_ms=100) does not either
    assert len(speech_segments(_probs((0.1, 5), (0.9, 10), (0.1, 2), (0.9, 10), (0.1, 23)),
                               n)) == 1
    # 10 chunks (320 ms) of silence split it in two, the padding not crossing the middle
    two = speech_segments(_probs((0.1, 5), (0.9, 10), (0.1, 10), (0.9, 10), (0.1, 15)), n)
    assert len(two) == 2 and two[0][1] <= two[1][0]
    assert two[0][1] == 15 * CHUNK + SR * 30 // 1000


def test_iou_and_agreement() -> None:
    assert iou([(0, 100)], [(50, 150)], 200) == pytest.approx(50 / 150)
    assert iou([], [], 10) == 1.0
    assert iou([(0, 10), (20, 30)], [(0, 30)], 40) == pytest.approx(20 / 30)
    assert frame_agreement(np.array([0.1, 0.6, 0.9, 0.4]),
                           np.array([0.2, 0.4, 0.8, 0.3])) == pytest.approx(0.75)


def test_resample_keeps_a_tone_at_its_frequency() -> None:
    src = 22050
    t = np.arange(src) / src  # one second
    y = resample(np.sin(2 * np.pi * 1000 * t), src, SR)
    assert len(y) == SR
    spec = np.abs(np.fft.rfft(y))
    assert int(spec.argmax()) == 1000  # 1 Hz bins over one second
    assert np.abs(y).max() == pytest.approx(1.0, abs=0.02)
