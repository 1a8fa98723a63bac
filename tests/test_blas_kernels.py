"""The OpenBLAS kernel pin (compiler/blas_kernels.py): in effect for this process on an AVX2
x86-64 CPU, and never overriding the user's setting or touching other machines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from compiler import blas_kernels


def test_pinned_before_numpy_loaded_here() -> None:
    """The qnnc pytest plugin imports compiler before any test module imports numpy."""
    if blas_kernels._has_avx2_fma() and blas_kernels.platform.machine() in ("x86_64", "AMD64"):
        assert os.environ.get("OPENBLAS_CORETYPE") == blas_kernels.CORETYPE


@pytest.mark.parametrize("preset", [None, "SkylakeX"])
def test_a_fresh_process(preset: str | None) -> None:
    """``import compiler`` in a fresh process sets the variable before numpy loads; a value
    the user set stays."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if preset:
        env["OPENBLAS_CORETYPE"] = preset
    code = "import compiler, os; print(os.environ.get('OPENBLAS_CORETYPE'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    expected = preset or (blas_kernels.CORETYPE if blas_kernels._has_avx2_fma() else "None")
    assert out == expected


def test_numpy_first_or_another_machine_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    assert blas_kernels.pin() is False  # numpy is loaded in this process by now
    assert "OPENBLAS_CORETYPE" not in os.environ
    monkeypatch.setattr(blas_kernels.platform, "machine", lambda: "aarch64")
    monkeypatch.delitem(sys.modules, "numpy")
    assert blas_kernels.pin() is False
    assert "OPENBLAS_CORETYPE" not in os.environ
