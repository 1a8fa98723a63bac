"""Comparing one output with its golden, and saying where and by how much it moved.

How outputs compare (the ``compare`` entry of each output in a golden's manifest):

- integer and bool outputs: exactly.
- float outputs of f32 models: ``|got - expected| <= atol + rtol * |expected|`` with
  rtol=1e-5, atol=1e-6 by default. A compiler change may legitimately reorder float
  arithmetic (fusion, BN folding, another accumulation order); a few ulps are not a regression.
- float outputs of INT8 models: rtol=atol=0. They are dequantised integer codes,
  ``(q - zp) * scale``, and integer arithmetic does not depend on evaluation order, so on the
  same target the same codes give bit-identical floats; any difference is a changed code,
  reported in quantisation steps where the output comes straight from a Dequantize. (Float
  islands such as a Softmax kept in f32 are deterministic on one target too; record with a
  looser ``atol`` — e.g. one step — if reordering them should be tolerated.)

The tolerance is written into the manifest at record time and kept on update, so it can be
edited by hand per output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-6
MAX_POSITIONS = 5


@dataclass(frozen=True)
class Tolerance:
    """``|got - expected| <= atol + rtol * |expected|``; None in place of one means exact."""

    rtol: float
    atol: float


def default_tolerance(dtype: np.dtype, precision: str) -> Tolerance | None:
    """The tolerance an output is recorded with unless one is given (why: module docstring)."""
    if dtype.kind not in "fc":
        return None
    if precision == "int8":
        return Tolerance(0.0, 0.0)
    return Tolerance(DEFAULT_RTOL, DEFAULT_ATOL)


def _pos(index: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def _num(x: Any) -> str:
    v = np.asarray(x).item()
    return f"{v:.9g}" if isinstance(v, float) else str(v)


@dataclass
class OutputReport:
    """How one output compared: ``ok``, and the lines that explain a mismatch."""

    name: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)

    def format(self) -> str:
        return "\n".join([f"output {self.name!r} {self.summary}"] +
                         [f"    {d}" for d in self.details])


def compare_output(
    name: str, expected: np.ndarray, got: np.ndarray, tol: Tolerance | None,
    step: float | None = None,
) -> OutputReport:
    """Compare one output: exactly when ``tol`` is None, else within it (NaN matches NaN,
    an infinity matches the same infinity)."""
    want = f"{expected.dtype.name}{list(expected.shape)}"
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return OutputReport(name, False, f"{want}: got {got.dtype.name}{list(got.shape)} instead")
    e = expected.astype(np.float64)
    g = got.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.abs(g - e)
        if tol is None:
            bad = expected != got
            rule = "exact"
        else:
            bad = ~(diff <= tol.atol + tol.rtol * np.abs(e))  # NaN differences are bad
            bad |= np.isinf(e) & (e != g)  # an infinity matches only the same infinity
            bad &= ~((np.isinf(e) & (e == g)) | (np.isnan(e) & np.isnan(g)))
            rule = "exact (tolerance 0)" if tol == Tolerance(0.0, 0.0) else (
                f"rtol {tol.rtol:g}, atol {tol.atol:g}")
        rel = np.where(e != 0, diff / np.abs(e), np.where(diff == 0, 0.0, np.inf))
    finite = np.where(np.isfinite(diff), diff, 0.0)
    n_bad = int(np.count_nonzero(bad))
    if n_bad == 0:
        worst = float(finite.max()) if finite.size else 0.0
        return OutputReport(name, True, f"{want}: ok ({rule}; max abs error {worst:.3g})")
    details = ["first at " + ", ".join(_pos(i) for i in np.argwhere(bad)[:MAX_POSITIONS])
               + (", ..." if n_bad > MAX_POSITIONS else "")]
    for label, err in (("abs", np.where(bad, np.where(np.isnan(diff), np.inf, diff), -1.0)),
                       ("rel", np.where(bad, np.where(np.isnan(rel), np.inf, rel), -1.0))):
        at = np.unravel_index(int(np.argmax(err)), err.shape)
        extra = ""
        if label == "abs" and step and np.isfinite(err[at]):
            extra = f" = {err[at] / step:.3g} quantisation steps of {step:.6g}"
        details.append(f"worst {label} error {float(err[at]):.6g}{extra} at {_pos(at)} "
                       f"(got {_num(got[at])}, expected {_num(expected[at])})")
    return OutputReport(name, False, f"{want}: {n_bad} of {expected.size} elements differ "
                        f"({rule})", details)
