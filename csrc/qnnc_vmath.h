/* qnnc_vmath.h - vectorised float32 functions for the float islands of generated model.c.
 *
 * Float islands are checked against the reference with a tolerance (libm and numpy already
 * differ in the last bit); these keep within a few ulp of the correctly rounded result. */
#ifndef QNNC_VMATH_H
#define QNNC_VMATH_H

#include "qnnc_runtime.h"
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#if defined(__AVX2__)
#if defined(__FMA__)
#define QNNC_FMA8(a, b, c) _mm256_fmadd_ps(a, b, c)
#else
#define QNNC_FMA8(a, b, c) _mm256_add_ps(_mm256_mul_ps(a, b), c)
#endif

/* e^x in eight lanes: x = n ln2 + r with n = round(x / ln2) and ln2 split in two parts (the
 * first exact in few bits, so n * ln2_hi is exact), e^r by the degree-6 minimax polynomial of
 * the Cephes library's expf, times 2^n built in the exponent field. Error below 2 ulp;
 * x below -87.33 (results below FLT_MIN) gives 0, above 88.72 +inf, NaN stays NaN. */
static inline __m256 qnnc_exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.3365478515625f), hi = _mm256_set1_ps(88.7228317f);
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = QNNC_FMA8(n, _mm256_set1_ps(-0.693359375f), xc);
    r = QNNC_FMA8(n, _mm256_set1_ps(2.12194440e-4f), r);
    const __m256 z = _mm256_mul_ps(r, r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = QNNC_FMA8(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = QNNC_FMA8(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = QNNC_FMA8(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = QNNC_FMA8(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = QNNC_FMA8(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(QNNC_FMA8(p, z, r), _mm256_set1_ps(1.0f));
    /* n in [-126, 128]: 2^n as 2^(n/2) * 2^(n - n/2), both normal, so n = 128 gives +inf */
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i h = _mm256_srai_epi32(ni, 1);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(h, _mm256_set1_epi32(127)), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_sub_epi32(ni, h), _mm256_set1_epi32(127)), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

static inline float qnnc_hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline float qnnc_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#endif

/* Softmax of one contiguous row of d floats: y = e^(x - max) / sum. NaN inputs are skipped
 * by the max as in the scalar form (x > max is false for NaN) and propagate through exp. */
static inline void qnnc_softmax_row(const float *x, float *y, int d) {
    float mx = -INFINITY, s = 0.0f;
    int k = 0;
#if defined(__AVX2__)
    if (d >= 8) {
        __m256 mv = _mm256_set1_ps(-INFINITY);
        for (; k + 8 <= d; k += 8) mv = _mm256_max_ps(_mm256_loadu_ps(x + k), mv);
        mx = qnnc_hmax8(mv);
    }
#endif
    for (; k < d; ++k) if (x[k] > mx) mx = x[k];
    k = 0;
#if defined(__AVX2__)
    if (d >= 8) {
        const __m256 m = _mm256_set1_ps(mx);
        __m256 sv = _mm256_setzero_ps();
        for (; k + 8 <= d; k += 8) {
            const __m256 e = qnnc_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + k), m));
            _mm256_storeu_ps(y + k, e);
            sv = _mm256_add_ps(sv, e);
        }
        s = qnnc_hsum8(sv);
    }
#endif
    for (; k < d; ++k) { const float e = expf(x[k] - mx); y[k] = e; s += e; }
    const float inv = 1 / s;
    k = 0;
#if defined(__AVX2__)
    const __m256 iv = _mm256_set1_ps(inv);
    for (; k + 8 <= d; k += 8) _mm256_storeu_ps(y + k, _mm256_mul_ps(_mm256_loadu_ps(y + k), iv));
#endif
    for (; k < d; ++k) y[k] *= inv;
}

/* Sums in double of n floats, f(x[i]) = x[i] (qnnc_sum_f64) or (x[i] - m)^2
 * (qnnc_sqdev_f64): the statistics of the normalisations. Sixteen running sums (lane l
 * takes i = l mod 16 over the whole blocks), folded as (l, l + 8), then (l, l + 4), then
 * (l, l + 2), then (0, 1), and the tail added last in order: the same order with AVX2
 * (four vectors of four doubles) and without, so every build gives the same bits, and
 * sixteen independent chains instead of one. */
static inline double qnnc_fold16(double *a) {
    for (int l = 0; l < 8; ++l) a[l] += a[l + 8];
    for (int l = 0; l < 4; ++l) a[l] += a[l + 4];
    for (int l = 0; l < 2; ++l) a[l] += a[l + 2];
    return a[0] + a[1];
}

static inline double qnnc_stat16(const float *x, int n, double m, int square) {
    double a[16] = {0};
    int i = 0;
#if defined(__AVX2__)
    __m256d v[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd()};
    const __m256d mv = _mm256_set1_pd(m);
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 4; ++k) {
            __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k));
            if (square) {
                d = _mm256_sub_pd(d, mv);
                d = _mm256_mul_pd(d, d);
            }
            v[k] = _mm256_add_pd(v[k], d);
        }
    for (int k = 0; k < 4; ++k) _mm256_storeu_pd(a + 4 * k, v[k]);
#else
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; ++l) {
            const double d = square ? ((double)x[i + l] - m) * ((double)x[i + l] - m)
                                    : (double)x[i + l];
            a[l] += d;
        }
#endif
    double s = qnnc_fold16(a);
    for (; i < n; ++i) s += square ? ((double)x[i] - m) * ((double)x[i] - m) : (double)x[i];
    return s;
}

static inline double qnnc_sum_f64(const float *x, int n) { return qnnc_stat16(x, n, 0, 0); }

static inline double qnnc_sqdev_f64(const float *x, int n, double m) {
    return qnnc_stat16(x, n, m, 1);
}

/* LRN's last step over n values: y = x / t^(3/4), t = bias + k * y (y holds the window's
 * sum of squares), with t^(3/4) = sqrt(t) * sqrt(sqrt(t)): the formula the reference
 * interpreter uses for beta = 0.75 (ir/ops/pool.py). Every step is one correctly rounded
 * IEEE operation in the same order, so the lanes and the scalar tail give the interpreter's
 * bits. */
static inline void qnnc_lrn_three_quarters(const float *x, float *y, int n, float bias,
                                           float k) {
    int i = 0;
#if defined(__AVX2__)
    const __m256 b = _mm256_set1_ps(bias), kv = _mm256_set1_ps(k);
    for (; i + 8 <= n; i += 8) {
        const __m256 t = _mm256_add_ps(b, _mm256_mul_ps(kv, _mm256_loadu_ps(y + i)));
        const __m256 r = _mm256_sqrt_ps(t);
        _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_loadu_ps(x + i),
                                              _mm256_mul_ps(r, _mm256_sqrt_ps(r))));
    }
#endif
    for (; i < n; ++i) {
        const float t = bias + k * y[i], r = sqrtf(t);
        y[i] = x[i] / (r * sqrtf(r));
    }
}

#endif /* QNNC_VMATH_H */
