"""csrc/qnnc_vmath.h's vector exp against float64 exp: the header promises an error below
2 ulp over [-87.3, 88.7], 0 below that range, +inf above it and NaN kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from targets.host.build import CSRC, find_cc
from targets.host.cpu import detect_level

DRIVER = r"""
#include <math.h>
#include <stdio.h>
#include "qnnc_vmath.h"
static void exp8(const float *in, float *out) {
    _mm256_storeu_ps(out, qnnc_exp8(_mm256_loadu_ps(in)));
}
int main(void) {
    double worst = 0;
    for (float x = -87.3f; x < 88.7f; x += 0.00071f) {
        float in[8], out[8];
        for (int i = 0; i < 8; ++i) in[i] = x + (float)i * 0.0000871f;
        exp8(in, out);
        for (int i = 0; i < 8; ++i) {
            const double t = exp((double)in[i]);
            const float tf = (float)t;
            const double ulp = (double)nextafterf(tf, INFINITY) - (double)tf;
            const double e = fabs((double)out[i] - t) / ulp;
            if (e > worst) worst = e;
        }
    }
    float sp[8] = {-1000.0f, -90.0f, 89.0f, 1000.0f, NAN, -INFINITY, INFINITY, 0.0f}, so[8];
    exp8(sp, so);
    printf("%.4f %g %g %g %g %d %g %g %g\n", worst, so[0], so[1], so[2], so[3], isnan(so[4]),
           so[5], so[6], so[7]);
    return 0;
}
"""


@pytest.mark.skipif(detect_level() not in ("avx2", "avx512vnni"), reason="needs AVX2")
def test_vector_exp_within_two_ulp(tmp_path: Path) -> None:
    (tmp_path / "exp.c").write_text(DRIVER)
    exe = tmp_path / "exp"
    subprocess.run([*find_cc().split(), "-O2", "-mavx2", "-mfma", "-std=c11", f"-I{CSRC}",
                    str(tmp_path / "exp.c"), "-o", str(exe), "-lm"], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    print(f"\nqnnc_exp8 worst error over [-87.3, 88.7]: {out[0]} ulp")
    assert float(out[0]) < 2.0
    assert [float(v) for v in out[1:5]] == [0.0, 0.0, float("inf"), float("inf")]
    assert out[5] == "1"
    assert [float(v) for v in out[6:]] == [0.0, float("inf"), 1.0]
