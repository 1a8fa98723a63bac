"""Real data for accuracy checks, from data sets that installed packages ship (no downloads).

Quantisation is judged by how much accuracy an INT8 model loses against its float original,
and that needs real inputs with labels, not random tensors: calibration ranges and rounding
errors behave differently on natural data. scikit-learn bundles the 8×8 handwritten digits
(1,797 images, 10 classes), small enough to train a CNN on in seconds and to run through the
reference interpreter in full. tests/fixtures/digits_cnn.onnx was trained on the split below;
the quantisation tests and benchmarks must see exactly the same preprocessing and held-out
images, so both live here, in one place.

scikit-learn is a test extra, not a runtime dependency of qnnc, so it is imported lazily.
"""

from __future__ import annotations

import numpy as np

#: fraction of the 1,797 images held out for testing (450 images), stratified by class
TEST_SIZE = 0.25
#: random_state of the train/test split; the fixture was trained on this split
SPLIT_SEED = 0
#: pixel values in load_digits are integers 0..16; dividing by this maps them to [0, 1]
PIXEL_MAX = 16.0


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits data set as (x_train, y_train, x_test, y_test).

    Images are float32 NCHW of shape [n, 1, 8, 8] scaled to [0, 1]; labels are int64 digits
    0..9. The split is fixed (stratified, TEST_SIZE, SPLIT_SEED): 1,347 training and 450
    test images, the same on every call and every machine.
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as e:
        raise ImportError(
            "compiler.datasets.digits_split needs scikit-learn, which ships the digits data "
            "set; install it with `pip install scikit-learn` (or `pip install -e .[test]`)"
        ) from e
    digits = load_digits()
    x = (np.asarray(digits.images, dtype=np.float64) / PIXEL_MAX).astype(np.float32)
    x = x.reshape(-1, 1, 8, 8)
    y = np.asarray(digits.target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y
    )
    return (
        np.ascontiguousarray(x_train),
        np.ascontiguousarray(y_train),
        np.ascontiguousarray(x_test),
        np.ascontiguousarray(y_test),
    )
