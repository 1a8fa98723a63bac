"""QAdd's input step in 32-bit lanes (csrc/qnnc_int8.h, qnnc_qadd_split): requant_raw((c - z)
* 2^20, m, n) as x q + ((x r + 2^(s-1)) >> s), against the 64-bit definition for every code
difference x in [-255, 255], every n the split takes (and checks that it declines the rest),
and multipliers at both ends of [2^30, 2^31), between, and with ties to round. The QAdd op
tests cannot see an error of one in this step: the output's rescaling divides it by about
2^20."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from targets.host.build import CSRC, find_cc
from targets.host.cpu import detect_level

DRIVER = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "qnnc_runtime.h"
#include "qnnc_int8.h"
int main(void) {
    const int L = 20;
    const int32_t ms[] = {1 << 30, (1 << 30) + 1, 1288490189, 1610612736, 1889785610,
                          2147483647, 1986663820, 1073741825 + 12345};
    long checked = 0, wrong = 0, declined_ok = 1;
    for (int n = 31; n <= 62; ++n) {
        for (unsigned k = 0; k <= sizeof ms / sizeof ms[0]; ++k) {
            /* the last: r = 2^(s-1), so that odd x land exactly halfway (rounding ties) */
            const int32_t m = k < sizeof ms / sizeof ms[0] ? ms[k]
                              : n - L - 1 < 30 ? (1 << 30) | (1 << (n - L - 1)) : 1 << 30;
            const qnnc_qadd_split t = qnnc_qadd_split_of(m, n, L);
            if (!t.on) {
                if (n >= 32 && n - L <= 22) declined_ok = 0;
                continue;
            }
            for (int x0 = -256; x0 <= 255; x0 += 16) {
                int32_t in[16], out8[16], out16[16];
                for (int i = 0; i < 16; ++i) in[i] = x0 + i < -255 ? -255 : x0 + i;
                for (int h = 0; h < 2; ++h)
                    _mm256_storeu_si256((__m256i *)(out8 + 8 * h), qnnc_qadd_split8(
                        _mm256_loadu_si256((const __m256i *)(in + 8 * h)),
                        _mm256_set1_epi32(t.q), _mm256_set1_epi32(t.r), _mm256_set1_epi32(t.h),
                        _mm_cvtsi32_si128(t.s)));
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
                _mm512_storeu_si512((void *)out16, qnnc_qadd_split16(
                    _mm512_loadu_si512((const void *)in), _mm512_set1_epi32(t.q),
                    _mm512_set1_epi32(t.r), _mm512_set1_epi32(t.h), _mm_cvtsi32_si128(t.s)));
#else
                memcpy(out16, out8, sizeof out16);
#endif
                for (int i = 0; i < 16; ++i) {
                    const int64_t want = qnnc_requant_raw((int64_t)in[i] * ((int64_t)1 << L), m, n);
                    ++checked;
                    wrong += out8[i] != want || out16[i] != want;
                }
            }
        }
    }
    printf("%ld %ld %ld\n", checked, wrong, declined_ok);
    return 0;
}
"""


@pytest.mark.skipif(detect_level() not in ("avx2", "avx512vnni"), reason="needs AVX2")
@pytest.mark.parametrize("flags", [["-mavx2"], ["-mavx2", "-mavx512f", "-mavx512bw",
                                               "-mavx512vl"]], ids=["avx2", "avx512"])
def test_split_step_matches_the_64_bit_definition(flags: list[str], tmp_path: Path) -> None:
    if "-mavx512f" in flags and detect_level() != "avx512vnni":
        pytest.skip("this CPU has no AVX-512: the sixteen-lane form runs only where it is")
    (tmp_path / "split.c").write_text(DRIVER)
    exe = tmp_path / "split"
    subprocess.run([*find_cc().split(), "-O2", *flags, "-mfma", "-std=c11", "-Wall", "-Werror",
                    f"-I{CSRC}", str(tmp_path / "split.c"), "-o", str(exe)], check=True)
    checked, wrong, declined_ok = (int(v) for v in subprocess.run(
        [str(exe)], check=True, capture_output=True, text=True).stdout.split())
    assert checked == 11 * 9 * 32 * 16  # n = 32 .. 42, every multiplier, every x
    assert wrong == 0
    assert declined_ok == 1
