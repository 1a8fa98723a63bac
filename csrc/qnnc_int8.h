/* qnnc_int8.h - the integer arithmetic of quantised layers, for generated model.c.
 *
 * Every function here is bit-exact with ir/qmath.py, which defines the semantics:
 *
 *   requant(acc) = (acc * M0 + 2^(n-1)) >> n      64-bit product, arithmetic shift, n = 31+shift
 *   y = clamp(zero_point + requant(acc), lo, hi)
 *
 * This header's GEMM micro-kernel works on int16 pairs: operands are widened to int16 and
 * multiplied with _mm256_madd_epi16 (exact: a pair of int16 products always fits int32),
 * accumulating in int32, for any weights. (vpmaddubsw, whose int16 pair sums saturate, runs
 * only in qnnc_int8_u8s8.h, for weights checked at compile time to keep it exact.) Packed
 * layouts (MR = 6, NR = 16):
 *
 *   A (weights, packed at compile time): [M/6 tiles][K2][6 rows][2]  int16, K2 = ceil(K/2)
 *   B (activations, packed per call):    [N/16 panels][K2][16 cols][2] int16
 *
 * so each step of the k loop broadcasts one (k, k+1) pair of a weight row as an int32 and
 * multiplies it with 16 columns' pairs: 12 accumulators, 2 B registers and the broadcast use
 * 15 of AVX2's 16 ymm registers without a spill (6 rows do 1.5x the work of 4 per B load).
 * The matrix x vector kernel reads its own 4-row tiles [M/4][K2][4][2] (QNNC_Q8_GEMV_MR),
 * where two k pairs of a tile fill one ymm register. Zero rows/columns pad M, N and K; the
 * caller only stores the valid part of a tile. The generic path is the same loop in plain C; with
 * AVX-512 VNNI the pair product-and-add is one vpdpwssd on the same layout. */
#ifndef QNNC_INT8_H
#define QNNC_INT8_H

#include "qnnc_runtime.h"
#if defined(__AVX2__) || defined(__AVX512VNNI__)
#include <immintrin.h>
#endif

#define QNNC_Q8_MR 6
#define QNNC_Q8_GEMV_MR 4
#define QNNC_Q8_NR 16

/* The micro-kernels are kept out of line: inlined into a large layer function, the
 * accumulators compete with the caller's values for registers and spill. */
#if defined(__GNUC__) || defined(__clang__)
#define QNNC_Q8_KERNEL static __attribute__((noinline, unused))
#else
#define QNNC_Q8_KERNEL static
#endif
/* The tile kernels are also kept out of GCC's interprocedural analysis: specialised for the
 * call sites of a large model (known K2, stack realignment for its callers), their 12
 * accumulators were allocated to the stack, which made the loop load and store each of them
 * every step. noipa keeps the kernel exactly as written. */
#if defined(__GNUC__) && !defined(__clang__)
#define QNNC_Q8_TILE_KERNEL static __attribute__((noipa, unused))
#else
#define QNNC_Q8_TILE_KERNEL QNNC_Q8_KERNEL
#endif

/* -- requantisation (qmath.requantize_raw / requantize) ---------------------------------- */

/* (acc * m0 + 2^(n-1)) >> n; n in [1, 62]. GCC and clang shift signed values arithmetically. */
static inline int64_t qnnc_requant_raw(int64_t acc, int32_t m0, int n) {
    return (acc * (int64_t)m0 + ((int64_t)1 << (n - 1))) >> n;
}

/* zp + requant(acc), clamped to [lo, hi] (the type's range met with a fused activation). */
static inline int32_t qnnc_requant(int64_t acc, int32_t m0, int n, int32_t zp, int32_t lo,
                                   int32_t hi) {
    const int64_t y = qnnc_requant_raw(acc, m0, n) + zp;
    return (int32_t)(y < lo ? lo : (y > hi ? hi : y));
}

/* -- float <-> integer boundaries (qmath.quantize / dequantize) --------------------------- */

/* saturate(rint(x / scale) + zp): the division in float32, ties to even (nearbyintf in the
 * default rounding mode), NaN to 0 and +-inf to the range ends, as qmath does. */
static inline int32_t qnnc_quantize(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
    const float r = nearbyintf(x / scale);
    if (r != r) return 0 < lo ? lo : (0 > hi ? hi : 0);
    const double q = (double)r + (double)zp;
    return q <= (double)lo ? lo : (q >= (double)hi ? hi : (int32_t)q);
}

static inline float qnnc_dequantize(int64_t q, int64_t zp, float scale) {
    return (float)(q - zp) * scale;
}

/* -- packing ----------------------------------------------------------------------------- */

/* Element i of an 8-bit array, signed or unsigned (sgn is a literal at every call site, so
 * the branch folds away). */
static inline int32_t qnnc_q8_at(const void *p, ptrdiff_t i, int sgn) {
    return sgn ? (int32_t)((const int8_t *)p)[i] : (int32_t)((const uint8_t *)p)[i];
}

/* qnnc_quantize over n floats into 8-bit codes (sgn: int8, else uint8). With AVX2, eight at
 * a time and the same arithmetic: the float32 division, rounding to nearest even, NaN to
 * clamp(0), and r + zp clamped in float (exact below 2^24; beyond it both clamp alike). */
static inline void qnnc_quantize_n(const float *QNNC_RESTRICT x, void *QNNC_RESTRICT y, int n,
                                   float scale, int32_t zp, int32_t lo, int32_t hi, int sgn) {
    int i = 0;
#if defined(__AVX2__)
    const __m256 s = _mm256_set1_ps(scale), z = _mm256_set1_ps((float)zp);
    const __m256 lof = _mm256_set1_ps((float)lo), hif = _mm256_set1_ps((float)hi);
    const int32_t nan_code = 0 < lo ? lo : (0 > hi ? hi : 0);
    const __m256 nanv = _mm256_set1_ps((float)nan_code);
    for (; i + 8 <= n; i += 8) {
        const __m256 r = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), s),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(r, z), lof), hif);
        q = _mm256_blendv_ps(q, nanv, _mm256_cmp_ps(r, r, _CMP_UNORD_Q));
        const __m256i v = _mm256_cvtps_epi32(q);
        const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v),
                                          _mm256_extracti128_si256(v, 1));
        const __m128i b = sgn ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
        _mm_storel_epi64((__m128i *)((uint8_t *)y + i), b);
    }
#endif
    for (; i < n; ++i) {
        const int32_t q = qnnc_quantize(x[i], scale, zp, lo, hi);
        if (sgn) ((int8_t *)y)[i] = (int8_t)q;
        else ((uint8_t *)y)[i] = (uint8_t)q;
    }
}

/* qnnc_dequantize over n 8-bit codes: (float)(q - zp) * scale, eight at a time with AVX2
 * (q - zp is below 2^24 in magnitude, so its int32 -> float conversion is exact as well). */
static inline void qnnc_dequantize_n(const void *QNNC_RESTRICT q, float *QNNC_RESTRICT y, int n,
                                     int32_t zp, float scale, int sgn) {
    int i = 0;
#if defined(__AVX2__)
    const __m256 s = _mm256_set1_ps(scale);
    const __m256i z = _mm256_set1_epi32(zp);
    for (; i + 8 <= n; i += 8) {
        const __m128i b = _mm_loadl_epi64((const __m128i *)((const uint8_t *)q + i));
        const __m256i v = sgn ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, z)), s));
    }
#endif
    for (; i < n; ++i) y[i] = qnnc_dequantize(qnnc_q8_at(q, i, sgn), zp, scale);
}

/* One im2col row of a 2-D convolution, as bytes: output positions p0 .. p0+n-1 (row-major
 * over OH x OW) read plane xc[H][W] at (oh*SH + offh, ow*SW + offw); positions in the padding
 * get `padv` (the input zero point's byte). 8-bit signed and unsigned values are copied alike:
 * widening happens once, in qnnc_q8_pack_pair. */
static inline void qnnc_q8_im2row8(uint8_t *QNNC_RESTRICT dst, const uint8_t *QNNC_RESTRICT xc,
                                   int p0, int n, int H, int W, int OW, int SH, int SW,
                                   int offh, int offw, uint8_t padv) {
    int lo_ow = offw >= 0 ? 0 : (-offw + SW - 1) / SW;
    int hi_ow = (W - 1 - offw) < 0 ? 0 : (W - 1 - offw) / SW + 1;
    if (hi_ow > OW) hi_ow = OW;
    if (lo_ow > hi_ow) lo_ow = hi_ow;
    int oh = p0 / OW, ow = p0 - oh * OW, j = 0;
    while (j < n) {
        int run = OW - ow;
        if (run > n - j) run = n - j;
        const int ih = oh * SH + offh;
        uint8_t *d = dst + j - ow;  /* d[t] for t in [ow, ow + run) */
        if (ih < 0 || ih >= H) {
            memset(d + ow, padv, (size_t)run);
        } else {
            const int a = ow > lo_ow ? ow : lo_ow;
            const int b = ow + run < hi_ow ? ow + run : hi_ow;
            const uint8_t *src = xc + (ptrdiff_t)ih * W + offw;
            int t = ow;
            if (a > t) { memset(d + t, padv, (size_t)(a - t)); t = a; }
            if (SW == 1) {
                if (b > t) { memcpy(d + t, src + t, (size_t)(b - t)); t = b; }
            } else {
#if defined(__AVX2__)
                if (SW == 2) {
                    /* the even bytes of 32 consecutive inputs: a byte shuffle per 128-bit lane,
                     * then the two lanes' low halves side by side; reads stay before src[2b] */
                    const __m256i even = _mm256_setr_epi8(
                        0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1,
                        0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1);
                    for (; t + 17 <= b; t += 16) {
                        const __m256i v = _mm256_shuffle_epi8(
                            _mm256_loadu_si256((const __m256i *)(src + 2 * (ptrdiff_t)t)), even);
                        _mm_storeu_si128((__m128i *)(d + t), _mm256_castsi256_si128(
                            _mm256_permute4x64_epi64(v, 0x08)));
                    }
                }
#endif
                for (; t < b; ++t) d[t] = src[(ptrdiff_t)t * SW];
            }
            if (ow + run > t) memset(d + t, padv, (size_t)(ow + run - t));
        }
        j += run;
        ow = 0;
        ++oh;
    }
}

/* Planes xc[C][H][W] of 8-bit codes copied into zero-padded planes xp[C][HP][WP]: the input
 * at rows PT.. and columns PL.., every other byte padv (the input zero point's byte), and 32
 * more bytes of padv after the last plane for qnnc_q8_im2row_padded's vector reads. */
static inline void qnnc_q8_pad_planes(uint8_t *QNNC_RESTRICT xp, const uint8_t *QNNC_RESTRICT xc,
                                      int C, int H, int W, int HP, int WP, int PT, int PL,
                                      uint8_t padv) {
    memset(xp, padv, (size_t)C * HP * WP + 32);
    const int rows = H < HP - PT ? H : HP - PT, cols = W < WP - PL ? W : WP - PL;
    if (rows <= 0 || cols <= 0) return;
    for (int c = 0; c < C; ++c)
        for (int h = 0; h < rows; ++h)
            memcpy(xp + ((ptrdiff_t)c * HP + h + PT) * WP + PL,
                   xc + ((ptrdiff_t)c * H + h) * W, (size_t)cols);
}

/* One im2col row read from a padded plane (qnnc_q8_pad_planes; xp already points at the
 * tap's first byte): output positions p0 .. p0+n-1 (row-major over OH x OW) take
 * xp[oh*SH*WP + ow*SW]. No bounds to check: the padding is in the plane. With AVX2 an output
 * row moves in 16-byte stores (from 16 bytes, or the even bytes of 32 for SW == 2), the last
 * one past the row's end: dst needs 16 bytes of slack past n (rows written in increasing
 * order overwrite the excess), and reads go up to 31 bytes past the row. */
static inline void qnnc_q8_im2row_padded(uint8_t *QNNC_RESTRICT dst,
                                         const uint8_t *QNNC_RESTRICT xp, int p0, int n,
                                         int OW, int WP, int SH, int SW) {
    int oh = p0 / OW, ow = p0 - oh * OW, j = 0;
#if defined(__AVX2__)
    const __m256i even = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1,
                                          -1, 0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1,
                                          -1, -1);
#endif
    while (j < n) {
        int run = OW - ow;
        if (run > n - j) run = n - j;
        const uint8_t *src = xp + (ptrdiff_t)oh * SH * WP + (ptrdiff_t)ow * SW;
#if defined(__AVX2__)
        if (SW == 1) {
            for (int t = 0; t < run; t += 16)
                _mm_storeu_si128((__m128i *)(dst + j + t),
                                 _mm_loadu_si128((const __m128i *)(src + t)));
        } else if (SW == 2) {
            for (int t = 0; t < run; t += 16) {
                const __m256i v = _mm256_shuffle_epi8(
                    _mm256_loadu_si256((const __m256i *)(src + 2 * t)), even);
                _mm_storeu_si128((__m128i *)(dst + j + t),
                                 _mm256_castsi256_si128(_mm256_permute4x64_epi64(v, 0x08)));
            }
        } else
#endif
        {
            for (int t = 0; t < run; ++t) dst[j + t] = src[(ptrdiff_t)t * SW];
        }
        j += run;
        ow = 0;
        ++oh;
    }
}

/* Rows k and k+1 of B as 8-bit values (ra, rb; rb NULL for the zero row past an odd K),
 * minus sub, widened into the packed panels at dst (this k pair's slot of panel 0; panels are
 * `pstride` int16 apart). Columns n .. 16*ceil(n/16) are zero. With AVX2 each 16 columns are
 * two byte unpacks and two widenings: the (k, k+1) interleave comes from the unpack. */
static inline void qnnc_q8_pack_pair(int16_t *QNNC_RESTRICT dst, const void *ra, const void *rb,
                                     int sgn, int n, int sub, ptrdiff_t pstride) {
    const int full = n / QNNC_Q8_NR;
    int p = 0;
#if defined(__AVX2__)
    const uint8_t *a8 = (const uint8_t *)ra, *b8 = (const uint8_t *)rb;
    /* sub from both halves of a pair, or only from the k half when k+1 is the zero row */
    const __m256i subv = rb ? _mm256_set1_epi16((int16_t)sub)
                            : _mm256_set1_epi32((int32_t)(uint16_t)(int16_t)sub);
    for (; p < full; ++p) {
        const __m128i a = _mm_loadu_si128((const __m128i *)(a8 + p * QNNC_Q8_NR));
        const __m128i b = rb ? _mm_loadu_si128((const __m128i *)(b8 + p * QNNC_Q8_NR))
                             : _mm_setzero_si128();
        const __m128i lo = _mm_unpacklo_epi8(a, b), hi = _mm_unpackhi_epi8(a, b);
        const __m256i w0 = sgn ? _mm256_cvtepi8_epi16(lo) : _mm256_cvtepu8_epi16(lo);
        const __m256i w1 = sgn ? _mm256_cvtepi8_epi16(hi) : _mm256_cvtepu8_epi16(hi);
        int16_t *d = dst + p * pstride;
        _mm256_storeu_si256((__m256i *)d, _mm256_sub_epi16(w0, subv));
        _mm256_storeu_si256((__m256i *)(d + 16), _mm256_sub_epi16(w1, subv));
    }
#endif
    for (; p < full; ++p) {
        int16_t *d = dst + p * pstride;
        for (int c = 0; c < QNNC_Q8_NR; ++c) {
            const ptrdiff_t i = (ptrdiff_t)p * QNNC_Q8_NR + c;
            d[2 * c] = (int16_t)(qnnc_q8_at(ra, i, sgn) - sub);
            d[2 * c + 1] = rb ? (int16_t)(qnnc_q8_at(rb, i, sgn) - sub) : 0;
        }
    }
    const int rest = n - full * QNNC_Q8_NR;
    if (rest) {
        int16_t *d = dst + full * pstride;
        for (int c = 0; c < QNNC_Q8_NR; ++c) {
            const ptrdiff_t i = (ptrdiff_t)full * QNNC_Q8_NR + c;
            d[2 * c] = c < rest ? (int16_t)(qnnc_q8_at(ra, i, sgn) - sub) : 0;
            d[2 * c + 1] = (c < rest && rb) ? (int16_t)(qnnc_q8_at(rb, i, sgn) - sub) : 0;
        }
    }
}

/* n 8-bit values minus sub as int16, then zeros up to `padded` (a GEMV's x as K2 pairs). */
static inline void qnnc_q8_widen(int16_t *QNNC_RESTRICT dst, const void *QNNC_RESTRICT x,
                                 int sgn, int n, int sub, int padded) {
    int j = 0;
#if defined(__AVX2__)
    const __m256i subv = _mm256_set1_epi16((int16_t)sub);
    for (; j + 16 <= n; j += 16) {
        const __m128i v = _mm_loadu_si128((const __m128i *)((const uint8_t *)x + j));
        const __m256i w = sgn ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v);
        _mm256_storeu_si256((__m256i *)(dst + j), _mm256_sub_epi16(w, subv));
    }
#endif
    for (; j < n; ++j) dst[j] = (int16_t)(qnnc_q8_at(x, j, sgn) - sub);
    for (; j < padded; ++j) dst[j] = 0;
}

/* Columns c0 .. c1-1 of B, k pairs kp0 .. K2-1, given as rows of x (x[j][k], row stride
 * ldx) minus sub, into the packed panels at dst (panel stride pstride); columns from n on and
 * the k past an odd K are zero. Out of line: the scalar remainder of qnnc_q8_pack_cols. */
QNNC_Q8_KERNEL void qnnc_q8_pack_cols_c(int16_t *QNNC_RESTRICT dst, const void *QNNC_RESTRICT x,
                                       int sgn, int n, int K, ptrdiff_t ldx, int sub,
                                       ptrdiff_t pstride, int c0, int c1, int kp0) {
    const int K2 = (K + 1) / 2;
    for (int j = c0; j < c1; ++j) {
        int16_t *d = dst + (j / QNNC_Q8_NR) * pstride + (j % QNNC_Q8_NR) * 2;
        for (int kp = kp0; kp < K2; ++kp) {
            for (int e = 0; e < 2; ++e) {
                const int k = 2 * kp + e;
                d[kp * 2 * QNNC_Q8_NR + e] = (j < n && k < K)
                    ? (int16_t)(qnnc_q8_at(x, (ptrdiff_t)j * ldx + k, sgn) - sub) : 0;
            }
        }
    }
}

#if defined(__AVX2__)
/* Eight rows of x (8 k pairs each, already int16) turned into eight k-pair slots of eight
 * columns: an 8 x 8 transpose of the int32 pair units, stored at d + kp * 2 * NR. */
static inline void qnnc_q8_transpose8(int16_t *d, __m256i r0, __m256i r1, __m256i r2,
                                      __m256i r3, __m256i r4, __m256i r5, __m256i r6,
                                      __m256i r7) {
    const __m256i t0 = _mm256_unpacklo_epi32(r0, r1), t1 = _mm256_unpackhi_epi32(r0, r1);
    const __m256i t2 = _mm256_unpacklo_epi32(r2, r3), t3 = _mm256_unpackhi_epi32(r2, r3);
    const __m256i t4 = _mm256_unpacklo_epi32(r4, r5), t5 = _mm256_unpackhi_epi32(r4, r5);
    const __m256i t6 = _mm256_unpacklo_epi32(r6, r7), t7 = _mm256_unpackhi_epi32(r6, r7);
    const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    const int s = 2 * QNNC_Q8_NR;
    _mm256_storeu_si256((__m256i *)d, _mm256_permute2x128_si256(u0, u4, 0x20));
    _mm256_storeu_si256((__m256i *)(d + s), _mm256_permute2x128_si256(u1, u5, 0x20));
    _mm256_storeu_si256((__m256i *)(d + 2 * s), _mm256_permute2x128_si256(u2, u6, 0x20));
    _mm256_storeu_si256((__m256i *)(d + 3 * s), _mm256_permute2x128_si256(u3, u7, 0x20));
    _mm256_storeu_si256((__m256i *)(d + 4 * s), _mm256_permute2x128_si256(u0, u4, 0x31));
    _mm256_storeu_si256((__m256i *)(d + 5 * s), _mm256_permute2x128_si256(u1, u5, 0x31));
    _mm256_storeu_si256((__m256i *)(d + 6 * s), _mm256_permute2x128_si256(u2, u6, 0x31));
    _mm256_storeu_si256((__m256i *)(d + 7 * s), _mm256_permute2x128_si256(u3, u7, 0x31));
}

/* 16 bytes at p widened to int16, minus sub. */
static inline __m256i qnnc_q8_row16(const uint8_t *p, int sgn, __m256i subv) {
    const __m128i v = _mm_loadu_si128((const __m128i *)p);
    return _mm256_sub_epi16(sgn ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v), subv);
}
#endif

/* Columns of B given as rows of x (a fully connected layer's inputs), n of them, into the
 * packed panels (see qnnc_q8_pack_cols_c). With AVX2, blocks of 8 columns x 16 k are
 * widened and transposed in registers; the remainder goes through the scalar loop. */
static inline void qnnc_q8_pack_cols(int16_t *QNNC_RESTRICT dst, const void *QNNC_RESTRICT x,
                                     int sgn, int n, int K, ptrdiff_t ldx, int sub,
                                     ptrdiff_t pstride) {
    const int cols = (n + QNNC_Q8_NR - 1) / QNNC_Q8_NR * QNNC_Q8_NR;
    int jb = 0;
#if defined(__AVX2__)
    const __m256i subv = _mm256_set1_epi16((int16_t)sub);
    const int kpb = K / 16 * 8;
    jb = n / 8 * 8;
    for (int j = 0; j < jb; j += 8) {
        int16_t *d = dst + (j / QNNC_Q8_NR) * pstride + (j % QNNC_Q8_NR) * 2;
        const uint8_t *r = (const uint8_t *)x + (ptrdiff_t)j * ldx;
        for (int kp = 0; kp < kpb; kp += 8) {
            const uint8_t *q = r + 2 * kp;
            qnnc_q8_transpose8(d + kp * 2 * QNNC_Q8_NR, qnnc_q8_row16(q, sgn, subv),
                               qnnc_q8_row16(q + ldx, sgn, subv),
                               qnnc_q8_row16(q + 2 * ldx, sgn, subv),
                               qnnc_q8_row16(q + 3 * ldx, sgn, subv),
                               qnnc_q8_row16(q + 4 * ldx, sgn, subv),
                               qnnc_q8_row16(q + 5 * ldx, sgn, subv),
                               qnnc_q8_row16(q + 6 * ldx, sgn, subv),
                               qnnc_q8_row16(q + 7 * ldx, sgn, subv));
        }
    }
    if (jb) qnnc_q8_pack_cols_c(dst, x, sgn, n, K, ldx, sub, pstride, 0, jb, kpb);
#endif
    qnnc_q8_pack_cols_c(dst, x, sgn, n, K, ldx, sub, pstride, jb, cols, 0);
}

/* Rows m0 .. m0+5 of a run-time matrix a[M][K] (row stride lda) minus sub, as one packed A
 * tile [K2][6][2]; rows past M and the column past an odd K are zero. */
static inline void qnnc_q8_pack_a(int16_t *QNNC_RESTRICT dst, const void *QNNC_RESTRICT a,
                                  int sgn, int m0, int M, int K, ptrdiff_t lda, int sub) {
    const int K2 = (K + 1) / 2;
    for (int r = 0; r < QNNC_Q8_MR; ++r) {
        const int m = m0 + r;
        for (int kp = 0; kp < K2; ++kp) {
            for (int e = 0; e < 2; ++e) {
                const int k = 2 * kp + e;
                dst[(kp * QNNC_Q8_MR + r) * 2 + e] = (m < M && k < K)
                    ? (int16_t)(qnnc_q8_at(a, (ptrdiff_t)m * lda + k, sgn) - sub) : 0;
            }
        }
    }
}

/* -- the micro-kernel: C[6][16] = A tile (K2 pairs) x B panel (K2 pairs) ---------------- */

QNNC_Q8_TILE_KERNEL void qnnc_q8_tile_c(int K2, const int16_t *QNNC_RESTRICT A,
                                  const int16_t *QNNC_RESTRICT B, int32_t *QNNC_RESTRICT C) {
    int32_t acc[QNNC_Q8_MR * QNNC_Q8_NR] = {0};
    for (int kp = 0; kp < K2; ++kp) {
        const int16_t *a = A + kp * 2 * QNNC_Q8_MR;
        const int16_t *b = B + kp * 2 * QNNC_Q8_NR;
        for (int r = 0; r < QNNC_Q8_MR; ++r) {
            const int32_t a0 = a[2 * r], a1 = a[2 * r + 1];
            for (int c = 0; c < QNNC_Q8_NR; ++c)
                acc[r * QNNC_Q8_NR + c] += a0 * b[2 * c] + a1 * b[2 * c + 1];
        }
    }
    memcpy(C, acc, sizeof acc);
}

#if defined(__AVX2__)
static inline __m256i qnnc_q8_pair(const int16_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

QNNC_Q8_TILE_KERNEL void qnnc_q8_tile_avx2(int K2, const int16_t *QNNC_RESTRICT A,
                                     const int16_t *QNNC_RESTRICT B, int32_t *QNNC_RESTRICT C) {
    _Static_assert(QNNC_Q8_MR == 6, "the AVX2 tile holds six rows of accumulators");
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00;
    __m256i c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int kp = 0; kp < K2; ++kp) {
        const int16_t *a = A + kp * 2 * QNNC_Q8_MR;
        const int16_t *b = B + kp * 2 * QNNC_Q8_NR;
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)b);
        const __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + 16));
        __m256i w = qnnc_q8_pair(a);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(w, b0));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(w, b1));
        w = qnnc_q8_pair(a + 2);
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(w, b0));
        c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(w, b1));
        w = qnnc_q8_pair(a + 4);
        c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(w, b0));
        c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(w, b1));
        w = qnnc_q8_pair(a + 6);
        c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(w, b0));
        c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(w, b1));
        w = qnnc_q8_pair(a + 8);
        c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(w, b0));
        c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(w, b1));
        w = qnnc_q8_pair(a + 10);
        c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(w, b0));
        c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(w, b1));
    }
    /* lane l of b0 holds column l's pair: columns 0..7 in c?0, 8..15 in c?1 */
    _mm256_storeu_si256((__m256i *)C, c00);
    _mm256_storeu_si256((__m256i *)(C + 8), c01);
    _mm256_storeu_si256((__m256i *)(C + 16), c10);
    _mm256_storeu_si256((__m256i *)(C + 24), c11);
    _mm256_storeu_si256((__m256i *)(C + 32), c20);
    _mm256_storeu_si256((__m256i *)(C + 40), c21);
    _mm256_storeu_si256((__m256i *)(C + 48), c30);
    _mm256_storeu_si256((__m256i *)(C + 56), c31);
    _mm256_storeu_si256((__m256i *)(C + 64), c40);
    _mm256_storeu_si256((__m256i *)(C + 72), c41);
    _mm256_storeu_si256((__m256i *)(C + 80), c50);
    _mm256_storeu_si256((__m256i *)(C + 88), c51);
}
#endif

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
/* Four bytes at p (a weight row's int16 pair or int8 quad) broadcast to every lane. */
static inline __m512i qnnc_q8_bcast512(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

/* the same in a ymm register (a ymm vpdpbusd fed by a zmm broadcast's low half ran 11%
 * slower on Zen 4) */
static inline __m256i qnnc_q8_bcast256(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

/* vpdpwssd: the int16 pair products of 16 columns added into int32 lanes in one instruction
 * (no saturation: the non-"s" form wraps, and the sums are bounded at compile time). */
QNNC_Q8_TILE_KERNEL void qnnc_q8_tile_vnni(int K2, const int16_t *QNNC_RESTRICT A,
                                     const int16_t *QNNC_RESTRICT B, int32_t *QNNC_RESTRICT C) {
    /* six named accumulators and each row's pair broadcast from memory: an array of
     * accumulators and a stack copy of the pairs made GCC move registers every step */
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    for (int kp = 0; kp < K2; ++kp) {
        const int16_t *a = A + kp * 2 * QNNC_Q8_MR;
        const __m512i b = _mm512_loadu_si512((const void *)(B + kp * 2 * QNNC_Q8_NR));
        c0 = _mm512_dpwssd_epi32(c0, qnnc_q8_bcast512(a), b);
        c1 = _mm512_dpwssd_epi32(c1, qnnc_q8_bcast512(a + 2), b);
        c2 = _mm512_dpwssd_epi32(c2, qnnc_q8_bcast512(a + 4), b);
        c3 = _mm512_dpwssd_epi32(c3, qnnc_q8_bcast512(a + 6), b);
        c4 = _mm512_dpwssd_epi32(c4, qnnc_q8_bcast512(a + 8), b);
        c5 = _mm512_dpwssd_epi32(c5, qnnc_q8_bcast512(a + 10), b);
    }
    _mm512_storeu_si512((void *)C, c0);
    _mm512_storeu_si512((void *)(C + 16), c1);
    _mm512_storeu_si512((void *)(C + 32), c2);
    _mm512_storeu_si512((void *)(C + 48), c3);
    _mm512_storeu_si512((void *)(C + 64), c4);
    _mm512_storeu_si512((void *)(C + 80), c5);
}
#define qnnc_q8_tile qnnc_q8_tile_vnni
#elif defined(__AVX2__)
#define qnnc_q8_tile qnnc_q8_tile_avx2
#else
#define qnnc_q8_tile qnnc_q8_tile_c
#endif

/* -- matrix x vector: C[4] = A tile (K2 pairs) . x (K2 int16 pairs) --------------------- */

/* A fully connected layer with a batch of one would use 1 of the tile's 16 columns; this
 * reads 4-row tiles of the weights ([M/4][K2][4][2]), two k pairs (32 bytes: [2][4 rows][2])
 * per step, each half multiplied with its own x pair broadcast to four lanes. */
QNNC_Q8_KERNEL void qnnc_q8_gemv_c(int K2, const int16_t *QNNC_RESTRICT A,
                                  const int16_t *QNNC_RESTRICT x, int32_t *QNNC_RESTRICT C) {
    int32_t acc[QNNC_Q8_GEMV_MR] = {0};
    for (int kp = 0; kp < K2; ++kp)
        for (int r = 0; r < QNNC_Q8_GEMV_MR; ++r)
            acc[r] += A[(kp * QNNC_Q8_GEMV_MR + r) * 2] * x[2 * kp] +
                      A[(kp * QNNC_Q8_GEMV_MR + r) * 2 + 1] * x[2 * kp + 1];
    memcpy(C, acc, sizeof acc);
}

#if defined(__AVX2__)
QNNC_Q8_KERNEL void qnnc_q8_gemv_avx2(int K2, const int16_t *QNNC_RESTRICT A,
                                     const int16_t *QNNC_RESTRICT x, int32_t *QNNC_RESTRICT C) {
    _Static_assert(QNNC_Q8_GEMV_MR == 4, "two k pairs of a tile fill one ymm register");
    const __m256i idx = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    int kp = 0;
    for (; kp + 4 <= K2; kp += 4) {
        const __m256i x01 = _mm256_permutevar8x32_epi32(
            _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(x + 2 * kp))), idx);
        const __m256i x23 = _mm256_permutevar8x32_epi32(
            _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(x + 2 * kp + 4))), idx);
        const int16_t *a = A + kp * 2 * QNNC_Q8_GEMV_MR;
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a), x01));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(
            _mm256_loadu_si256((const __m256i *)(a + 16)), x23));
    }
    const __m256i s = _mm256_add_epi32(s0, s1);
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    int32_t acc[QNNC_Q8_GEMV_MR];
    _mm_storeu_si128((__m128i *)acc, r);
    for (; kp < K2; ++kp) {
        const int16_t *a = A + (ptrdiff_t)kp * 2 * QNNC_Q8_GEMV_MR;
        const int32_t x0 = x[2 * (ptrdiff_t)kp], x1 = x[2 * (ptrdiff_t)kp + 1];
        for (int q = 0; q < QNNC_Q8_GEMV_MR; ++q) acc[q] += a[2 * q] * x0 + a[2 * q + 1] * x1;
    }
    memcpy(C, acc, sizeof acc);
}
#define qnnc_q8_gemv qnnc_q8_gemv_avx2
#else
#define qnnc_q8_gemv qnnc_q8_gemv_c
#endif

/* -- the epilogue ------------------------------------------------------------------------ */

/* n accumulators of one output channel: y[c * stride] = clamp(zp + requant(acc[c] + bias)). */
#if defined(__AVX2__)
/* qnnc_requant in eight lanes for one (m0, n), 1 <= n <= 62, as int32 lanes in [lo, hi],
 * wherever requant_raw(acc) fits int32: always for n >= 31 (a multiplier below 1), and for
 * n >= 9 when |acc| < 2^8 (8-bit codes minus a zero point). The 64-bit products come from
 * _mm256_mul_epi32 on the even and the odd lanes. AVX2 has no 64-bit arithmetic right
 * shift, so the product is made non-negative first: with K = 2^(62-n),
 * t = acc * m0 + 2^(n-1) + K * 2^n lies in [0, 2^64) (|acc * m0| < 2^62), and t >> n
 * (logical) = requant_raw(acc) + K exactly. The low 32 bits of that, minus K modulo 2^32
 * (0 for n <= 30), are the result; it is clamped to [lo - zp, hi - zp] before zp is added,
 * so nothing can wrap. */
typedef struct {
    __m256i m, rnd, k, lo, hi, zp;
    __m128i cnt;
} qnnc_q8_req8;

/* The multiplier's constants: m0, 2^(n-1) + 2^62 and K mod 2^32 (0 for n <= 30). */
static inline void qnnc_q8_req8_mult(qnnc_q8_req8 *c, int32_t m0, int nsh) {
    c->m = _mm256_set1_epi32(m0);
    c->rnd = _mm256_set1_epi64x((int64_t)(((uint64_t)1 << (nsh - 1)) + ((uint64_t)1 << 62)));
    c->k = _mm256_set1_epi32((int32_t)(nsh > 30 ? (uint32_t)1 << (62 - nsh) : 0));
    c->cnt = _mm_cvtsi32_si128(nsh);
}

/* The output's constants: the clamp bounds relative to zp, and zp. */
static inline void qnnc_q8_req8_out(qnnc_q8_req8 *c, int32_t zp, int32_t lo, int32_t hi) {
    c->lo = _mm256_set1_epi32(lo - zp);
    c->hi = _mm256_set1_epi32(hi - zp);
    c->zp = _mm256_set1_epi32(zp);
}

static inline __m256i qnnc_q8_req8_apply(__m256i v, const qnnc_q8_req8 *c) {
    const __m256i te = _mm256_add_epi64(_mm256_mul_epi32(v, c->m), c->rnd);
    const __m256i to = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(v, 32), c->m), c->rnd);
    __m256i r = _mm256_blend_epi32(_mm256_srl_epi64(te, c->cnt),
                                   _mm256_slli_epi64(_mm256_srl_epi64(to, c->cnt), 32), 0xAA);
    r = _mm256_sub_epi32(r, c->k);
    r = _mm256_min_epi32(_mm256_max_epi32(r, c->lo), c->hi);
    return _mm256_add_epi32(r, c->zp);
}

/* requant_raw(acc + bias) in eight lanes for n >= 32, the tile epilogue's cheaper form: with
 * rb = bias * m0 + 2^(n-1) (64-bit, |acc * m0 + rb| < 2^63), t = acc * m0 + rb; the high
 * half of each 64-bit t is floor(t / 2^32), and an arithmetic shift by sh = n - 32 floors it
 * to floor(t / 2^n) (nested floors of powers of two compose) - no sign trick, and the bias
 * costs nothing. */
static inline __m256i qnnc_q8_req8_hi(__m256i v, __m256i m, __m256i rb, __m128i sh) {
    const __m256i te = _mm256_add_epi64(_mm256_mul_epi32(v, m), rb);
    const __m256i to = _mm256_add_epi64(_mm256_mul_epi32(_mm256_shuffle_epi32(v, 0xF5), m), rb);
    return _mm256_sra_epi32(_mm256_blend_epi32(_mm256_srli_epi64(te, 32), to, 0xAA), sh);
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
/* qnnc_q8_req8_hi in sixteen lanes */
static inline __m512i qnnc_q8_req16_hi(__m512i v, __m512i m, __m512i rb, __m128i sh) {
    const __m512i te = _mm512_add_epi64(_mm512_mul_epi32(v, m), rb);
    const __m512i to = _mm512_add_epi64(
        _mm512_mul_epi32(_mm512_shuffle_epi32(v, _MM_PERM_DDBB), m), rb);
    /* the even lanes' high halves moved down into to's even lanes in one shuffle */
    return _mm512_sra_epi32(_mm512_mask_shuffle_epi32(to, 0x5555, te, _MM_PERM_DDBB), sh);
}
#endif

static inline __m256i qnnc_requant8_avx2(__m256i v, int32_t m0, int nsh, int32_t zp,
                                         int32_t lo, int32_t hi) {
    qnnc_q8_req8 c;
    qnnc_q8_req8_mult(&c, m0, nsh);
    qnnc_q8_req8_out(&c, zp, lo, hi);
    return qnnc_q8_req8_apply(v, &c);
}

/* Eight int32 lanes already in an 8-bit range, stored as 8 bytes. */
static inline void qnnc_store8_avx2(void *dst, __m256i r, int sgn) {
    const __m128i lo4 = _mm256_castsi256_si128(r), hi4 = _mm256_extracti128_si256(r, 1);
    const __m128i w = _mm_packs_epi32(lo4, hi4);
    const __m128i b = sgn ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
    _mm_storel_epi64((__m128i *)dst, b);
}
#endif

QNNC_HOT void qnnc_q8_store(const int32_t *QNNC_RESTRICT acc, int n, int64_t bias,
                            int32_t m0, int nsh, int32_t zp, int32_t lo, int32_t hi,
                            void *QNNC_RESTRICT dst, ptrdiff_t stride, int sgn) {
    int c = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    /* n >= 32: sixteen lanes in the high-half form (qnnc_q8_req16_hi, the bias in its
     * rounding term), the last 1-15 under a mask, so a short row (a small plane's) has no
     * scalar tail */
    if (nsh >= 32 && stride == 1 && bias >= INT32_MIN && bias <= INT32_MAX) {
        (void)sgn;  /* lanes clamped to the output's range: the low byte is the code */
        const __m512i m = _mm512_set1_epi32(m0);
        const __m512i rb = _mm512_set1_epi64(bias * m0 + ((int64_t)1 << (nsh - 1)));
        const __m128i sh = _mm_cvtsi32_si128(nsh - 32);
        const __m512i vlo = _mm512_set1_epi32(lo - zp), vhi = _mm512_set1_epi32(hi - zp);
        const __m512i vzp = _mm512_set1_epi32(zp);
        for (; c < n; c += 16) {
            const __mmask16 k = n - c >= 16 ? (__mmask16)0xFFFF
                                            : (__mmask16)((1u << (n - c)) - 1u);
            /* a whole block by a plain load: a masked one cannot take its data from the
             * stores that just wrote acc (a depthwise row's taps), and waits for them */
            const __m512i v = n - c >= 16 ? _mm512_loadu_si512((const void *)(acc + c))
                                          : _mm512_maskz_loadu_epi32(k, acc + c);
            const __m512i r = qnnc_q8_req16_hi(v, m, rb, sh);
            _mm512_mask_cvtepi32_storeu_epi8(
                (int8_t *)dst + c, k,
                _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(r, vlo), vhi), vzp));
        }
        return;
    }
#endif
#if defined(__AVX2__)
    if (nsh >= 31 && bias >= INT32_MIN && bias <= INT32_MAX) {
        const __m256i b = _mm256_set1_epi32((int32_t)bias);
        for (; c + 8 <= n; c += 8) {
            const __m256i v = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(acc + c)), b);
            const __m256i r = qnnc_requant8_avx2(v, m0, nsh, zp, lo, hi);
            if (stride == 1) {
                qnnc_store8_avx2((int8_t *)dst + c, r, sgn);
            } else {  /* a transposed output (a fully connected layer's): bytes one by one */
                uint8_t t[8];
                qnnc_store8_avx2(t, r, sgn);
                for (int e = 0; e < 8; ++e) ((uint8_t *)dst)[(c + e) * stride] = t[e];
            }
        }
        if (n - c >= 4) {  /* the last 4-7 of a row in one vector (a small plane's rows) */
            const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - c),
                                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            uint8_t t[8];
            const __m256i v = _mm256_add_epi32(_mm256_maskload_epi32(acc + c, live), b);
            qnnc_store8_avx2(t, qnnc_requant8_avx2(v, m0, nsh, zp, lo, hi), sgn);
            for (int e = 0; c < n; ++e, ++c) ((uint8_t *)dst)[c * stride] = t[e];
        }
    }
#endif
    for (; c < n; ++c) {
        const int32_t v = qnnc_requant((int64_t)acc[c] + bias, m0, nsh, zp, lo, hi);
        if (sgn) ((int8_t *)dst)[c * stride] = (int8_t)v;
        else ((uint8_t *)dst)[c * stride] = (uint8_t)v;
    }
}

/* y = clamp(zy + requant(x - zx)) over n 8-bit codes (Requantize): eight at a time with
 * qnnc_requant8_avx2 (|x - zx| < 2^8, so any n >= 9 is in its range), else (and for the
 * tail) the scalar definition. y may be x itself (each lane is read before it is written). */
static inline void qnnc_requantize_n(const void *x, int sx, void *y, int sy, int n, int32_t zx,
                                     int32_t m0, int nsh, int32_t zy, int32_t lo, int32_t hi) {
    int i = 0;
#if defined(__AVX2__)
    if (nsh >= 9) {
        const __m256i z = _mm256_set1_epi32(zx);
        for (; i + 8 <= n; i += 8) {
            const __m128i b = _mm_loadl_epi64((const __m128i *)((const uint8_t *)x + i));
            const __m256i v = _mm256_sub_epi32(sx ? _mm256_cvtepi8_epi32(b)
                                                  : _mm256_cvtepu8_epi32(b), z);
            qnnc_store8_avx2((uint8_t *)y + i, qnnc_requant8_avx2(v, m0, nsh, zy, lo, hi), sy);
        }
    }
#endif
    for (; i < n; ++i) {
        const int32_t v = qnnc_requant((int64_t)qnnc_q8_at(x, i, sx) - zx, m0, nsh, zy, lo, hi);
        if (sy) ((int8_t *)y)[i] = (int8_t)v;
        else ((uint8_t *)y)[i] = (uint8_t)v;
    }
}

/* QMul by one code (a per-channel scale broadcast over a plane, e.g. squeeze-excitation):
 * y = clamp(zy + requant((x - zx) * bc)), bc = b - zb. Eight at a time when n >= 31 (then
 * requant_raw of |(x - zx) * bc| < 2^17 fits int32), else (and for the tail) the scalar
 * definition. y may be x itself. */
static inline void qnnc_qmul_by_n(const void *x, int sx, void *y, int sy, int n, int32_t zx,
                                  int32_t bc, int32_t m0, int nsh, int32_t zy, int32_t lo,
                                  int32_t hi) {
    int i = 0;
#if defined(__AVX2__)
    if (nsh >= 31) {
        const __m256i z = _mm256_set1_epi32(zx), b = _mm256_set1_epi32(bc);
        qnnc_q8_req8 c;
        qnnc_q8_req8_mult(&c, m0, nsh);
        qnnc_q8_req8_out(&c, zy, lo, hi);
        for (; i + 8 <= n; i += 8) {
            const __m128i p = _mm_loadl_epi64((const __m128i *)((const uint8_t *)x + i));
            const __m256i v = _mm256_mullo_epi32(_mm256_sub_epi32(
                sx ? _mm256_cvtepi8_epi32(p) : _mm256_cvtepu8_epi32(p), z), b);
            qnnc_store8_avx2((uint8_t *)y + i, qnnc_q8_req8_apply(v, &c), sy);
        }
    }
#endif
    for (; i < n; ++i) {
        const int64_t v = ((int64_t)qnnc_q8_at(x, i, sx) - zx) * bc;
        const int32_t r = qnnc_requant(v, m0, nsh, zy, lo, hi);
        if (sy) ((int8_t *)y)[i] = (int8_t)r;
        else ((uint8_t *)y)[i] = (uint8_t)r;
    }
}

#if defined(__AVX2__)
/* (x - z) << L of eight 8-bit codes at p, as int32 lanes (QAdd's inputs). */
static inline __m256i qnnc_q8_shifted8(const uint8_t *p, int sgn, __m256i z, __m128i sh) {
    const __m128i b = _mm_loadl_epi64((const __m128i *)p);
    return _mm256_sll_epi32(
        _mm256_sub_epi32(sgn ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b), z), sh);
}
#endif

/* QAdd's input step requant_raw(x * 2^L, m, n) of codes minus zero points |x| <= 255, with
 * n >= 32, in int32 lanes without the 64-bit product where s = n - L is in [8, 22]: as 2^L
 * divides both x 2^L m and 2^(n-1), the step is floor((x m + 2^(s-1)) / 2^s), and with
 * m = q 2^s + r (0 <= r < 2^s) that is x q + ((x r + 2^(s-1)) >> s), x q an integer. Both
 * products fit int32 there: |x r| < 2^(s+8) <= 2^30 and |x q| < 2^(39-s) <= 2^31. Two
 * vpmulld and three steps instead of the high-half form's eight (QAdd runs at about one
 * cycle an element on Zen 4). */
typedef struct {
    int on, s;        /* whether the input takes this form, and its s = n - L */
    int32_t q, r, h;  /* m = q 2^s + r, h = 2^(s-1) (all 0 when off) */
} qnnc_qadd_split;

static inline qnnc_qadd_split qnnc_qadd_split_of(int32_t m, int n, int L) {
    qnnc_qadd_split t = {0, 1, 0, 0, 0};
    if (n >= 32 && n - L >= 8 && n - L <= 22) {
        t.on = 1, t.s = n - L;
        t.q = m >> t.s, t.r = m & ((1 << t.s) - 1), t.h = 1 << (t.s - 1);
    }
    return t;
}

#if defined(__AVX2__)
/* The split form in eight lanes: x q + ((x r + h) >> s), the constants broadcast. */
static inline __m256i qnnc_qadd_split8(__m256i x, __m256i q, __m256i r, __m256i h, __m128i s) {
    return _mm256_add_epi32(_mm256_mullo_epi32(x, q),
                            _mm256_sra_epi32(_mm256_add_epi32(_mm256_mullo_epi32(x, r), h), s));
}
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
/* and in sixteen */
static inline __m512i qnnc_qadd_split16(__m512i x, __m512i q, __m512i r, __m512i h, __m128i s) {
    return _mm512_add_epi32(_mm512_mullo_epi32(x, q),
                            _mm512_sra_epi32(_mm512_add_epi32(_mm512_mullo_epi32(x, r), h), s));
}
#endif

/* QAdd of two same-shape 8-bit tensors (ir/ops/qelementwise.py): with L = ADD_SHIFT,
 * a' = requant_raw((a - za) * 2^L, ma, na), b' likewise, y = clamp(zy + requant(a' + b')).
 * Eight lanes at a time when every n >= 31 (then each step's result fits int32), else (and
 * for the tail) the scalar definition. y may be a or b itself. */
QNNC_HOT void qnnc_qadd_n(const void *a, int sa, const void *b, int sb, void *y, int sy,
                          int n, int L, int32_t za, int32_t ma, int na, int32_t zb,
                          int32_t mb, int nb, int32_t my, int ny, int32_t zy, int32_t lo,
                          int32_t hi) {
    int i = 0;
#if defined(__AVX2__)
    /* the high-half form with no clamps between; an input whose multiplier is exactly 1/2
     * (the one with the larger scale: m0 = 2^30, n = 31) is requant_raw(x) = (x + 1) >> 1,
     * and as x = (c - z) << L is even that is (c - z) << (L - 1): one shift; an input with
     * n - L in [8, 22] takes the 32-bit split form (qnnc_qadd_split) */
    const int halve_a = na == 31 && ma == (1 << 30), halve_b = nb == 31 && mb == (1 << 30);
    const qnnc_qadd_split spa = qnnc_qadd_split_of(ma, na, L), spb = qnnc_qadd_split_of(mb, nb, L);
    const int split_a = spa.on, split_b = spb.on;
    if ((na >= 32 || halve_a) && (nb >= 32 || halve_b) && ny >= 32) {
        const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);
        const __m128i la = _mm_cvtsi32_si128(halve_a ? L - 1 : L);
        const __m128i lb = _mm_cvtsi32_si128(halve_b ? L - 1 : L);
        const __m256i mav = _mm256_set1_epi32(ma), mbv = _mm256_set1_epi32(mb);
        const __m256i myv = _mm256_set1_epi32(my), vzy = _mm256_set1_epi32(zy);
        const __m256i ra = _mm256_set1_epi64x((int64_t)1 << (na - 1));
        const __m256i rb = _mm256_set1_epi64x((int64_t)1 << (nb - 1));
        const __m256i ry = _mm256_set1_epi64x((int64_t)1 << (ny - 1));
        const __m128i sa32 = _mm_cvtsi32_si128(na - 32), sb32 = _mm_cvtsi32_si128(nb - 32);
        const __m128i sy32 = _mm_cvtsi32_si128(ny - 32);
        const __m256i vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
        /* sixteen lanes a step */
        const __m512i wza = _mm512_set1_epi32(za), wzb = _mm512_set1_epi32(zb);
        const __m512i wma = _mm512_set1_epi32(ma), wmb = _mm512_set1_epi32(mb);
        const __m512i wmy = _mm512_set1_epi32(my), wzy = _mm512_set1_epi32(zy);
        const __m512i wra = _mm512_set1_epi64((int64_t)1 << (na - 1));
        const __m512i wrb = _mm512_set1_epi64((int64_t)1 << (nb - 1));
        const __m512i wry = _mm512_set1_epi64((int64_t)1 << (ny - 1));
        const __m512i wlo = _mm512_set1_epi32(lo), whi = _mm512_set1_epi32(hi);
        const __m512i wqa = _mm512_set1_epi32(spa.q), wqb = _mm512_set1_epi32(spb.q);
        const __m512i wrma = _mm512_set1_epi32(spa.r), wrmb = _mm512_set1_epi32(spb.r);
        const __m512i wha = _mm512_set1_epi32(spa.h), whb = _mm512_set1_epi32(spb.h);
        const __m128i ssa = _mm_cvtsi32_si128(spa.s), ssb = _mm_cvtsi32_si128(spb.s);
        for (; i + 16 <= n; i += 16) {
            const __m128i pa = _mm_loadu_si128((const __m128i *)((const uint8_t *)a + i));
            const __m128i pb = _mm_loadu_si128((const __m128i *)((const uint8_t *)b + i));
            const __m512i ca = _mm512_sub_epi32(
                sa ? _mm512_cvtepi8_epi32(pa) : _mm512_cvtepu8_epi32(pa), wza);
            const __m512i cb = _mm512_sub_epi32(
                sb ? _mm512_cvtepi8_epi32(pb) : _mm512_cvtepu8_epi32(pb), wzb);
            __m512i xa, xb;
            if (split_a)
                xa = qnnc_qadd_split16(ca, wqa, wrma, wha, ssa);
            else if (halve_a)
                xa = _mm512_sll_epi32(ca, la);
            else
                xa = qnnc_q8_req16_hi(_mm512_sll_epi32(ca, la), wma, wra, sa32);
            if (split_b)
                xb = qnnc_qadd_split16(cb, wqb, wrmb, whb, ssb);
            else if (halve_b)
                xb = _mm512_sll_epi32(cb, lb);
            else
                xb = qnnc_q8_req16_hi(_mm512_sll_epi32(cb, lb), wmb, wrb, sb32);
            __m512i r = _mm512_add_epi32(qnnc_q8_req16_hi(_mm512_add_epi32(xa, xb), wmy, wry,
                                                          sy32), wzy);
            r = _mm512_min_epi32(_mm512_max_epi32(r, wlo), whi);
            _mm_storeu_si128((__m128i *)((uint8_t *)y + i),
                             sy ? _mm512_cvtsepi32_epi8(r) : _mm512_cvtusepi32_epi8(r));
        }
#endif
        const __m256i vqa = _mm256_set1_epi32(spa.q), vqb = _mm256_set1_epi32(spb.q);
        const __m256i vrma = _mm256_set1_epi32(spa.r), vrmb = _mm256_set1_epi32(spb.r);
        const __m256i vha = _mm256_set1_epi32(spa.h), vhb = _mm256_set1_epi32(spb.h);
        const __m128i ssa8 = _mm_cvtsi32_si128(spa.s), ssb8 = _mm_cvtsi32_si128(spb.s);
        const __m128i none = _mm_cvtsi32_si128(0);
        for (; i + 8 <= n; i += 8) {
            const __m256i ca = qnnc_q8_shifted8((const uint8_t *)a + i, sa, vza, none);
            const __m256i cb = qnnc_q8_shifted8((const uint8_t *)b + i, sb, vzb, none);
            const __m256i xa =
                split_a ? qnnc_qadd_split8(ca, vqa, vrma, vha, ssa8)
                : halve_a ? _mm256_sll_epi32(ca, la)
                          : qnnc_q8_req8_hi(_mm256_sll_epi32(ca, la), mav, ra, sa32);
            const __m256i xb =
                split_b ? qnnc_qadd_split8(cb, vqb, vrmb, vhb, ssb8)
                : halve_b ? _mm256_sll_epi32(cb, lb)
                          : qnnc_q8_req8_hi(_mm256_sll_epi32(cb, lb), mbv, rb, sb32);
            const __m256i s = _mm256_add_epi32(xa, xb);
            __m256i r = _mm256_add_epi32(qnnc_q8_req8_hi(s, myv, ry, sy32), vzy);
            r = _mm256_min_epi32(_mm256_max_epi32(r, vlo), vhi);
            qnnc_store8_avx2((uint8_t *)y + i, r, sy);
        }
    } else if (na >= 31 && nb >= 31 && ny >= 31) {
        const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);
        const __m128i sh = _mm_cvtsi32_si128(L);
        for (; i + 8 <= n; i += 8) {
            const __m256i xa = qnnc_q8_shifted8((const uint8_t *)a + i, sa, vza, sh);
            const __m256i xb = qnnc_q8_shifted8((const uint8_t *)b + i, sb, vzb, sh);
            const __m256i s = _mm256_add_epi32(
                qnnc_requant8_avx2(xa, ma, na, 0, INT32_MIN, INT32_MAX),
                qnnc_requant8_avx2(xb, mb, nb, 0, INT32_MIN, INT32_MAX));
            qnnc_store8_avx2((uint8_t *)y + i, qnnc_requant8_avx2(s, my, ny, zy, lo, hi), sy);
        }
    }
#endif
    for (; i < n; ++i) {
        const int64_t xa = ((int64_t)qnnc_q8_at(a, i, sa) - za) * ((int64_t)1 << L);
        const int64_t xb = ((int64_t)qnnc_q8_at(b, i, sb) - zb) * ((int64_t)1 << L);
        const int64_t sum = qnnc_requant_raw(xa, ma, na) + qnnc_requant_raw(xb, mb, nb);
        const int32_t v = qnnc_requant(sum, my, ny, zy, lo, hi);
        if (sy) ((int8_t *)y)[i] = (int8_t)v;
        else ((uint8_t *)y)[i] = (uint8_t)v;
    }
}

/* QAdd in its exact linear form (targets/c/qadd_linear.py): y = clamp((a p + b q + r) >> k)
 * on the raw codes a and b. The compiler chose p, q, r and k so that this is the definition's
 * result on every pair of codes and no step leaves int32: two 32-bit multiplications an
 * element instead of three 64-bit ones. y may be a or b itself. */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
static inline __m512i qnnc_qadd_lin16(const void *a, int sa, const void *b, int sb, __m512i p,
                                      __m512i q, __m512i r, __m128i k, __m512i lo,
                                      __m512i hi) {
    const __m128i pa = _mm_loadu_si128((const __m128i *)a);
    const __m128i pb = _mm_loadu_si128((const __m128i *)b);
    const __m512i ca = sa ? _mm512_cvtepi8_epi32(pa) : _mm512_cvtepu8_epi32(pa);
    const __m512i cb = sb ? _mm512_cvtepi8_epi32(pb) : _mm512_cvtepu8_epi32(pb);
    const __m512i v = _mm512_add_epi32(_mm512_add_epi32(_mm512_mullo_epi32(ca, p), r),
                                       _mm512_mullo_epi32(cb, q));
    return _mm512_min_epi32(_mm512_max_epi32(_mm512_sra_epi32(v, k), lo), hi);
}

/* 64 elements of the linear form from a + i and b + i, stored at y + i: the four registers
 * of results narrowed by two packs and one dword permute (qnnc_q8u_rows2_bytes's), whose
 * saturation is the clamp to the output type's range; clamp: [lo, hi] is narrower (a fused
 * activation), clamped first. */
static inline __attribute__((always_inline)) void qnnc_qadd_lin64(
    const uint8_t *a, int sa, const uint8_t *b, int sb, uint8_t *y, int sy, __m512i p, __m512i q,
    __m512i r, __m128i k, __m512i lo, __m512i hi, const int clamp) {
    __m512i v[4];
    for (int j = 0; j < 4; ++j) {
        const __m128i pa = _mm_loadu_si128((const __m128i *)(a + 16 * j));
        const __m128i pb = _mm_loadu_si128((const __m128i *)(b + 16 * j));
        const __m512i ca = sa ? _mm512_cvtepi8_epi32(pa) : _mm512_cvtepu8_epi32(pa);
        const __m512i cb = sb ? _mm512_cvtepi8_epi32(pb) : _mm512_cvtepu8_epi32(pb);
        v[j] = _mm512_sra_epi32(_mm512_add_epi32(_mm512_add_epi32(_mm512_mullo_epi32(ca, p), r),
                                                 _mm512_mullo_epi32(cb, q)), k);
        if (clamp) v[j] = _mm512_min_epi32(_mm512_max_epi32(v[j], lo), hi);
    }
    /* packs interleave by 128-bit lane: lane l holds elements 4l..4l+3 of each register */
    const __m512i w0 = _mm512_packs_epi32(v[0], v[1]), w1 = _mm512_packs_epi32(v[2], v[3]);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_si512((void *)y, _mm512_permutexvar_epi32(
        order, sy ? _mm512_packs_epi16(w0, w1) : _mm512_packus_epi16(w0, w1)));
}
#endif

#if defined(__AVX2__)
/* 32 elements of the linear form from a + i and b + i, stored at y + i, in ymm registers:
 * qnnc_qadd_lin64's narrowing (two packs whose saturation is the clamp to the output type,
 * and one dword permute), with [lo, hi] clamped first where it is narrower (clamp). */
static inline __attribute__((always_inline)) void qnnc_qadd_lin32(
    const uint8_t *a, int sa, const uint8_t *b, int sb, uint8_t *y, int sy, __m256i p, __m256i q,
    __m256i r, __m128i k, __m256i lo, __m256i hi, const int clamp) {
    __m256i v[4];
    const __m256i la = _mm256_loadu_si256((const __m256i *)a);
    const __m256i lb = _mm256_loadu_si256((const __m256i *)b);
    const __m128i ha[2] = {_mm256_castsi256_si128(la), _mm256_extracti128_si256(la, 1)};
    const __m128i hb[2] = {_mm256_castsi256_si128(lb), _mm256_extracti128_si256(lb, 1)};
    for (int j = 0; j < 4; ++j) {
        const __m128i pa = j & 1 ? _mm_unpackhi_epi64(ha[j >> 1], ha[j >> 1]) : ha[j >> 1];
        const __m128i pb = j & 1 ? _mm_unpackhi_epi64(hb[j >> 1], hb[j >> 1]) : hb[j >> 1];
        const __m256i ca = sa ? _mm256_cvtepi8_epi32(pa) : _mm256_cvtepu8_epi32(pa);
        const __m256i cb = sb ? _mm256_cvtepi8_epi32(pb) : _mm256_cvtepu8_epi32(pb);
        v[j] = _mm256_sra_epi32(_mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(ca, p), r),
                                                 _mm256_mullo_epi32(cb, q)), k);
        if (clamp) v[j] = _mm256_min_epi32(_mm256_max_epi32(v[j], lo), hi);
    }
    /* packs interleave by 128-bit lane: lane l holds elements 4l..4l+3 of each register */
    const __m256i w0 = _mm256_packs_epi32(v[0], v[1]), w1 = _mm256_packs_epi32(v[2], v[3]);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    _mm256_storeu_si256((__m256i *)y, _mm256_permutevar8x32_epi32(
        sy ? _mm256_packs_epi16(w0, w1) : _mm256_packus_epi16(w0, w1), order));
}
#endif

QNNC_HOT void qnnc_qadd_lin_n(const void *a, int sa, const void *b, int sb, void *y, int sy,
                              int n, int32_t p, int32_t q, int32_t r, int k, int32_t lo,
                              int32_t hi) {
    int i = 0;
    uint8_t *yb = (uint8_t *)y;
#if defined(__AVX2__)
    const uint8_t *ab = (const uint8_t *)a, *bb = (const uint8_t *)b;
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    {
        const __m512i wp = _mm512_set1_epi32(p), wq = _mm512_set1_epi32(q);
        const __m512i wr = _mm512_set1_epi32(r), wlo = _mm512_set1_epi32(lo);
        const __m512i whi = _mm512_set1_epi32(hi);
        const __m128i wk = _mm_cvtsi32_si128(k);
        if (lo > (sy ? -128 : 0) || hi < (sy ? 127 : 255)) {
            for (; i + 64 <= n; i += 64)
                qnnc_qadd_lin64(ab + i, sa, bb + i, sb, yb + i, sy, wp, wq, wr, wk, wlo, whi, 1);
        } else {
            for (; i + 64 <= n; i += 64)
                qnnc_qadd_lin64(ab + i, sa, bb + i, sb, yb + i, sy, wp, wq, wr, wk, wlo, whi, 0);
        }
        for (; i + 16 <= n; i += 16) {
            const __m512i v = qnnc_qadd_lin16(ab + i, sa, bb + i, sb, wp, wq, wr, wk, wlo, whi);
            _mm_storeu_si128((__m128i *)(yb + i),
                             sy ? _mm512_cvtsepi32_epi8(v) : _mm512_cvtusepi32_epi8(v));
        }
    }
#endif
#if defined(__AVX2__)
    {
        const __m256i vp = _mm256_set1_epi32(p), vq = _mm256_set1_epi32(q);
        const __m256i vr = _mm256_set1_epi32(r), vlo = _mm256_set1_epi32(lo);
        const __m256i vhi = _mm256_set1_epi32(hi);
        const __m128i vk = _mm_cvtsi32_si128(k);
        if (lo > (sy ? -128 : 0) || hi < (sy ? 127 : 255)) {
            for (; i + 32 <= n; i += 32)
                qnnc_qadd_lin32(ab + i, sa, bb + i, sb, yb + i, sy, vp, vq, vr, vk, vlo, vhi, 1);
        } else {
            for (; i + 32 <= n; i += 32)
                qnnc_qadd_lin32(ab + i, sa, bb + i, sb, yb + i, sy, vp, vq, vr, vk, vlo, vhi, 0);
        }
        for (; i + 8 <= n; i += 8) {
            const __m128i pa = _mm_loadl_epi64((const __m128i *)(ab + i));
            const __m128i pb = _mm_loadl_epi64((const __m128i *)(bb + i));
            const __m256i ca = sa ? _mm256_cvtepi8_epi32(pa) : _mm256_cvtepu8_epi32(pa);
            const __m256i cb = sb ? _mm256_cvtepi8_epi32(pb) : _mm256_cvtepu8_epi32(pb);
            const __m256i v = _mm256_add_epi32(
                _mm256_add_epi32(_mm256_mullo_epi32(ca, vp), vr), _mm256_mullo_epi32(cb, vq));
            qnnc_store8_avx2(yb + i, _mm256_min_epi32(_mm256_max_epi32(
                _mm256_sra_epi32(v, vk), vlo), vhi), sy);
        }
    }
#endif
    for (; i < n; ++i) {
        const int32_t v = (qnnc_q8_at(a, i, sa) * p + r + qnnc_q8_at(b, i, sb) * q) >> k;
        const int32_t c = v < lo ? lo : (v > hi ? hi : v);
        if (sy) ((int8_t *)y)[i] = (int8_t)c;
        else yb[i] = (uint8_t)c;
    }
}

/* -- tile + epilogue ---------------------------------------------------------------------- */

/* y[i * stride] = lut[y[i * stride]] over n bytes: an epilogue table (the fuse-epilogue
 * pass) applied to results just stored, while they are in L1. The table is indexed by the
 * stored byte (the emitter rotates a signed result's table by 128). */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__GNUC__) && !defined(__clang__)
/* AVX-512 VBMI's byte permutes look a 256-entry table up 64 bytes at a time: vpermi2b
 * indexes 128 entries by the low seven bits, twice, and the top bit picks one result. VBMI is
 * not part of the avx512vnni build level, so those functions are compiled for it on their own
 * and called only when the CPU reports it (qnnc_vbmi). */
#define QNNC_VBMI 1
#include <stdlib.h>
/* Whether to use them: the CPU has VBMI and the environment does not say QNNC_VBMI=0 (which
 * tests use to check the other path on such a CPU). */
static inline int qnnc_vbmi(void) {
    static int have = -1;  /* a race here only computes the same answer twice */
    if (have < 0) {
        const char *off = getenv("QNNC_VBMI");
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx512vbmi") && !(off && off[0] == '0') ? 1 : 0;
    }
    return have;
}

#define QNNC_VBMI_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi"), unused))

static QNNC_VBMI_FN inline __m512i qnnc_lut64_vbmi(__m512i x, const __m512i *t) {
    const __m512i lo = _mm512_permutex2var_epi8(t[0], x, t[1]);
    const __m512i hi = _mm512_permutex2var_epi8(t[2], x, t[3]);
    return _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi);
}

/* y[i] = lut[x[i]] over n contiguous bytes (x == y allowed), 64 at a time. */
static QNNC_VBMI_FN void qnnc_lut_n_vbmi(const uint8_t *x, uint8_t *y, int n,
                                         const uint8_t *lut) {
    const __m512i t[4] = {_mm512_loadu_si512(lut), _mm512_loadu_si512(lut + 64),
                          _mm512_loadu_si512(lut + 128), _mm512_loadu_si512(lut + 192)};
    int i = 0;
    for (; i + 64 <= n; i += 64)
        _mm512_storeu_si512(y + i, qnnc_lut64_vbmi(_mm512_loadu_si512(x + i), t));
    if (i < n) {  /* the last 1-63 under a mask */
        const __mmask64 k = ((__mmask64)1 << (n - i)) - 1;
        _mm512_mask_storeu_epi8(y + i, k, qnnc_lut64_vbmi(_mm512_maskz_loadu_epi8(k, x + i), t));
    }
}
#endif

#if defined(__AVX2__)
/* A 256-entry byte table for AVX2, whose widest byte lookup (vpshufb) takes 16 entries: the
 * table's sixteen 16-byte slices, each in both lanes of a register. */
typedef struct {
    __m256i s[16];
} qnnc_lut_avx2;

static inline void qnnc_lut_avx2_of(qnnc_lut_avx2 *t, const uint8_t *lut) {
    for (int i = 0; i < 16; ++i)
        t->s[i] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(lut + 16 * i)));
}

/* lut[x] for each of the 32 bytes of x: every slice looked up by the low four bits (vpshufb;
 * the control's top bit masked off, since it would zero the byte), then four levels of
 * vpblendvb pick the slice by bits 4, 5, 6 and 7 of x, each shifted into the top bit of its
 * byte, which is the bit vpblendvb reads (a 16-bit shift moves no other byte's bit there). */
static inline __attribute__((always_inline)) __m256i qnnc_lut32_avx2(__m256i x,
                                                                const qnnc_lut_avx2 *t) {
    const __m256i ctl = _mm256_and_si256(x, _mm256_set1_epi8(0x0f));
    const __m256i b4 = _mm256_slli_epi16(x, 3), b5 = _mm256_slli_epi16(x, 2);
    const __m256i b6 = _mm256_slli_epi16(x, 1);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) {
        const __m256i *s = t->s + 4 * i;
        const __m256i s01 = _mm256_blendv_epi8(_mm256_shuffle_epi8(s[0], ctl),
                                               _mm256_shuffle_epi8(s[1], ctl), b4);
        const __m256i s23 = _mm256_blendv_epi8(_mm256_shuffle_epi8(s[2], ctl),
                                               _mm256_shuffle_epi8(s[3], ctl), b4);
        q[i] = _mm256_blendv_epi8(s01, s23, b5);
    }
    return _mm256_blendv_epi8(_mm256_blendv_epi8(q[0], q[1], b6),
                              _mm256_blendv_epi8(q[2], q[3], b6), x);
}

/* y[i] = lut[x[i]] over n contiguous bytes (x == y allowed), 32 at a time; the last 1-31
 * through a copy, so that no byte is looked up twice in place. */
static inline void qnnc_lut_n_avx2(const uint8_t *x, uint8_t *y, int n, const uint8_t *lut) {
    qnnc_lut_avx2 t;
    qnnc_lut_avx2_of(&t, lut);
    int i = 0;
    for (; i + 32 <= n; i += 32)
        _mm256_storeu_si256((__m256i *)(y + i),
                            qnnc_lut32_avx2(_mm256_loadu_si256((const __m256i *)(x + i)), &t));
    if (i < n) {
        uint8_t tail[32] = {0};
        memcpy(tail, x + i, (size_t)(n - i));
        _mm256_storeu_si256((__m256i *)tail,
                            qnnc_lut32_avx2(_mm256_loadu_si256((const __m256i *)tail), &t));
        memcpy(y + i, tail, (size_t)(n - i));
    }
}
#endif

static inline void qnnc_lut_n(void *y, int n, ptrdiff_t stride, const uint8_t *lut) {
    uint8_t *b = (uint8_t *)y;
#if defined(QNNC_VBMI)
    if (stride == 1 && n >= 16 && qnnc_vbmi()) {
        qnnc_lut_n_vbmi(b, b, n, lut);
        return;
    }
#endif
#if defined(__AVX2__)
    if (stride == 1 && n >= 32) {
        qnnc_lut_n_avx2(b, b, n, lut);
        return;
    }
#endif
    for (int i = 0; i < n; ++i) b[i * stride] = lut[b[i * stride]];
}

/* y[i] = lut[x[i]] over n bytes (a QLut between 8-bit codes, its table indexed by the byte;
 * x == y allowed). */
static inline void qnnc_lut_copy(const void *x, void *y, int n, const uint8_t *lut) {
#if defined(QNNC_VBMI)
    if (qnnc_vbmi()) {
        qnnc_lut_n_vbmi((const uint8_t *)x, (uint8_t *)y, n, lut);
        return;
    }
#endif
#if defined(__AVX2__)
    qnnc_lut_n_avx2((const uint8_t *)x, (uint8_t *)y, n, lut);
#else
    const uint8_t *s = (const uint8_t *)x;
    uint8_t *d = (uint8_t *)y;
    for (int i = 0; i < n; ++i) d[i] = lut[s[i]];
#endif
}

/* qnnc_q8_store (stride 1) and then the table over the n bytes it stored. With VBMI and
 * n >= 32 (qnnc_q8_store's high-half form), 64 results at a time are requantised, looked up
 * and stored from registers: storing the bytes and loading them back for the table stalls
 * where the store is masked (a row's last block) or narrowing. */
#if defined(QNNC_VBMI)
static QNNC_VBMI_FN void qnnc_q8_store_lut_vbmi(const int32_t *QNNC_RESTRICT acc, int n,
                                                int64_t bias, int32_t m0, int nsh, int32_t zp,
                                                int32_t lo, int32_t hi, uint8_t *QNNC_RESTRICT y,
                                                const uint8_t *lut) {
    const __m512i t[4] = {_mm512_loadu_si512(lut), _mm512_loadu_si512(lut + 64),
                          _mm512_loadu_si512(lut + 128), _mm512_loadu_si512(lut + 192)};
    const __m512i m = _mm512_set1_epi32(m0);
    const __m512i rb = _mm512_set1_epi64(bias * m0 + ((int64_t)1 << (nsh - 1)));
    const __m128i sh = _mm_cvtsi32_si128(nsh - 32);
    const __m512i vlo = _mm512_set1_epi32(lo - zp), vhi = _mm512_set1_epi32(hi - zp);
    const __m512i vzp = _mm512_set1_epi32(zp);
#define QNNC_Q8_BLOCK16(at)                                                                  \
    ((at) >= n ? _mm_setzero_si128()                                                         \
               : _mm512_cvtepi32_epi8(_mm512_add_epi32(                                      \
                     _mm512_min_epi32(                                                       \
                         _mm512_max_epi32(                                                   \
                             qnnc_q8_req16_hi(                                               \
                                 n - (at) >= 16                                              \
                                     ? _mm512_loadu_si512((const void *)(acc + (at)))        \
                                     : _mm512_maskz_loadu_epi32(                             \
                                           (__mmask16)((1u << (n - (at))) - 1u), acc + (at)), \
                                 m, rb, sh),                                                 \
                             vlo),                                                           \
                         vhi),                                                               \
                     vzp)))
    for (int c = 0; c < n; c += 64) {
        const __m512i bytes = _mm512_inserti32x4(
            _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(QNNC_Q8_BLOCK16(c)),
                                                  QNNC_Q8_BLOCK16(c + 16), 1),
                               QNNC_Q8_BLOCK16(c + 32), 2),
            QNNC_Q8_BLOCK16(c + 48), 3);
        const int left = n - c;
        const __mmask64 k = left >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << left) - 1;
        _mm512_mask_storeu_epi8(y + c, k, qnnc_lut64_vbmi(bytes, t));
    }
#undef QNNC_Q8_BLOCK16
}
#endif

static inline void qnnc_q8_store_lut(const int32_t *QNNC_RESTRICT acc, int n, int64_t bias,
                                     int32_t m0, int nsh, int32_t zp, int32_t lo, int32_t hi,
                                     void *QNNC_RESTRICT y, int sgn, const uint8_t *lut) {
#if defined(QNNC_VBMI)
    if (nsh >= 32 && bias >= INT32_MIN && bias <= INT32_MAX && qnnc_vbmi()) {
        qnnc_q8_store_lut_vbmi(acc, n, bias, m0, nsh, zp, lo, hi, (uint8_t *)y, lut);
        return;
    }
#endif
    qnnc_q8_store(acc, n, bias, m0, nsh, zp, lo, hi, y, 1, sgn);
    qnnc_lut_n(y, n, 1, lut);
}

/* What a layer's tiles store: per output channel ch, y = clamp(zp + requant(acc + bias[ch]))
 * with (m0, n) = (m0[ch], nsh[ch]) per channel, or m0[0], nsh[0] for all when per_channel
 * is 0, then lut[y] when lut is not NULL. Every n is in [31, 62] and every bias fits int32
 * (the emitter checks both). */
typedef struct {
    const int32_t *bias;
    const int32_t *m0;
    const int8_t *nsh;
    int32_t zp, lo, hi;
    int per_channel, sgn;
    const uint8_t *lut;
    /* per channel (per-channel epilogues only), qnnc_q8_round_term where n >= 32, made once
     * per layer call so that a row reads it instead of computing it (qnnc_q8_round_terms);
     * NULL: each row computes it */
    const int64_t *rb;
} qnnc_q8_epilogue;

/* The high-half form's rounding term of a channel with n >= 32: bias * m0 + 2^(n-1). */
static inline int64_t qnnc_q8_round_term(int32_t bias, int32_t m0, int n) {
    return (int64_t)bias * m0 + ((int64_t)1 << (n - 1));
}

/* The m channels' rounding terms into rb (0 for n < 32), which the AVX2 and AVX-512 row stores read:
 * returns rb there, and elsewhere NULL without computing them. */
static inline const int64_t *qnnc_q8_round_terms(int64_t *rb, const int32_t *bias,
                                                 const int32_t *m0, const int8_t *nsh, int m) {
#if defined(__AVX2__)
    for (int c = 0; c < m; ++c)
        rb[c] = nsh[c] >= 32 ? qnnc_q8_round_term(bias[c], m0[c], nsh[c]) : 0;
    return rb;
#else
    (void)rb, (void)bias, (void)m0, (void)nsh, (void)m;
    return NULL;
#endif
}

/* C[rows][cols] of one tile (channels ch0 .. ch0+rows-1, rows <= MR, cols <= NR), requantised
 * and stored at y + r * ldy + c (bytes). */
static inline void qnnc_q8_tile_store_c(const int32_t *QNNC_RESTRICT acc,
                                        const qnnc_q8_epilogue *ep, int ch0, int rows,
                                        int cols, void *QNNC_RESTRICT y, ptrdiff_t ldy) {
    for (int r = 0; r < rows; ++r) {
        const int ch = ch0 + r, q = ep->per_channel ? ch : 0;
        qnnc_q8_store(acc + r * QNNC_Q8_NR, cols, ep->bias[ch], ep->m0[q], ep->nsh[q], ep->zp,
                      ep->lo, ep->hi, (uint8_t *)y + r * ldy, 1, ep->sgn);
        if (ep->lut) qnnc_lut_n((uint8_t *)y + r * ldy, cols, 1, ep->lut);
    }
}

#if defined(__AVX2__)
/* Requantised row r of a tile as 16 bytes, the row's accumulators at acc + 16r: n >= 32 in
 * the high-half form (bias folded into the rounding term, clamped only for a fused
 * activation's bounds: the type's own range is the saturating conversion's), n = 31 in the
 * sign-trick form (qnnc_q8_req8_apply, clamped there). AVX-512 builds take the row's 16
 * columns in one zmm register and convert with vpmovsdb / vpmovusdb; AVX2 in two ymm and
 * packs. */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
/* One row's 16 accumulators at acc in the high-half form (n >= 32) plus zp, clamped to
 * [lo, hi] if clamp, as int32 lanes. */
static inline __m512i qnnc_q8_row_hi(const int32_t *acc, int32_t m0, int n, int64_t rb,
                                     __m512i zp, __m512i lo, __m512i hi, int clamp) {
    const __m512i res = _mm512_add_epi32(
        qnnc_q8_req16_hi(_mm512_loadu_si512((const void *)acc), _mm512_set1_epi32(m0),
                         _mm512_set1_epi64(rb), _mm_cvtsi32_si128(n - 32)), zp);
    return clamp ? _mm512_min_epi32(_mm512_max_epi32(res, lo), hi) : res;
}

/* int32 lanes already within the output type's range after a clamp, or not yet clamped to
 * it (the saturating conversion does that), as 16 bytes */
static inline __m128i qnnc_q8_bytes16(__m512i res, int sgn) {
    return sgn ? _mm512_cvtsepi32_epi8(res)
               : _mm512_cvtusepi32_epi8(_mm512_max_epi32(res, _mm512_setzero_si512()));
}

static inline __m128i qnnc_q8_row_bytes(const int32_t *acc, int32_t m0, int n, int32_t bias,
                                        qnnc_q8_req8 *c, int32_t zp, int32_t lo, int32_t hi,
                                        int clamp, int sgn) {
    __m512i res;
    if (n >= 32) {
        res = qnnc_q8_row_hi(acc, m0, n, qnnc_q8_round_term(bias, m0, n),
                             _mm512_set1_epi32(zp), _mm512_set1_epi32(lo),
                             _mm512_set1_epi32(hi), clamp);
    } else {
        const __m512i v = _mm512_loadu_si512((const void *)acc);
        qnnc_q8_req8_mult(c, m0, n);
        const __m256i b = _mm256_set1_epi32(bias);
        const __m256i r0 = qnnc_q8_req8_apply(_mm256_add_epi32(_mm512_castsi512_si256(v), b), c);
        const __m256i r1 = qnnc_q8_req8_apply(
            _mm256_add_epi32(_mm512_extracti64x4_epi64(v, 1), b), c);
        res = _mm512_inserti64x4(_mm512_castsi256_si512(r0), r1, 1);
    }
    return qnnc_q8_bytes16(res, sgn);
}
#else
static inline __m128i qnnc_q8_row_bytes(const int32_t *acc, int32_t m0, int n, int32_t bias,
                                        qnnc_q8_req8 *c, int32_t zp, int32_t lo, int32_t hi,
                                        int clamp, int sgn) {
    const __m256i v0 = _mm256_loadu_si256((const __m256i *)acc);
    const __m256i v1 = _mm256_loadu_si256((const __m256i *)(acc + 8));
    __m256i r0, r1;
    if (n >= 32) {
        const __m256i m = _mm256_set1_epi32(m0);
        const __m256i rb = _mm256_set1_epi64x(qnnc_q8_round_term(bias, m0, n));
        const __m128i sh = _mm_cvtsi32_si128(n - 32);
        r0 = _mm256_add_epi32(qnnc_q8_req8_hi(v0, m, rb, sh), _mm256_set1_epi32(zp));
        r1 = _mm256_add_epi32(qnnc_q8_req8_hi(v1, m, rb, sh), _mm256_set1_epi32(zp));
        if (clamp) {
            const __m256i vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
            r0 = _mm256_min_epi32(_mm256_max_epi32(r0, vlo), vhi);
            r1 = _mm256_min_epi32(_mm256_max_epi32(r1, vlo), vhi);
        }
    } else {
        qnnc_q8_req8_mult(c, m0, n);
        const __m256i b = _mm256_set1_epi32(bias);
        r0 = qnnc_q8_req8_apply(_mm256_add_epi32(v0, b), c);
        r1 = qnnc_q8_req8_apply(_mm256_add_epi32(v1, b), c);
    }
    /* int32 -> int16 packs per 128-bit lane; 0xD8 puts columns 0-7 before 8-15 */
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xD8);
    const __m128i w0 = _mm256_castsi256_si128(w), w1 = _mm256_extracti128_si256(w, 1);
    return sgn ? _mm_packs_epi16(w0, w1) : _mm_packus_epi16(w0, w1);
}
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
/* Rows without a table in the high-half form (every n >= 32), the common case of
 * qnnc_q8_rows_store, as a short loop: clamp and sgn are constants where it is inlined (one
 * copy per combination), and the output's constants stay in registers. Each row's first
 * cols columns are stored (a byte-masked store below 16: a chunk's last few). Returns the
 * first row it did not store (a row with n = 31 is left to the general loop). */
QNNC_HOT int qnnc_q8_rows_hi(const int32_t *acc, const int32_t *bias, const int32_t *m0,
                             const int8_t *nsh, int per_channel, int ch0, int rows, int cols,
                             int32_t zp, int32_t lo, int32_t hi, const int clamp,
                             const int sgn, uint8_t *y, ptrdiff_t ldy, const int64_t *rbs) {
    const __m512i vzp = _mm512_set1_epi32(zp), vlo = _mm512_set1_epi32(lo);
    const __m512i vhi = _mm512_set1_epi32(hi);
    const __mmask16 keep = (__mmask16)((1u << cols) - 1u);
    int r = 0;
    for (; r < rows; ++r) {
        const int ch = ch0 + r, q = per_channel ? ch : 0, n = nsh[q];
        if (n < 32) break;
        const int64_t rb = rbs != NULL ? rbs[ch] : qnnc_q8_round_term(bias[ch], m0[q], n);
        const __m512i res = qnnc_q8_row_hi(acc + QNNC_Q8_NR * r, m0[q], n, rb, vzp, vlo, vhi,
                                           clamp);
        if (cols == QNNC_Q8_NR)
            _mm_storeu_si128((__m128i *)(y + r * ldy), qnnc_q8_bytes16(res, sgn));
        else  /* a chunk's last few columns */
            _mm_mask_storeu_epi8(y + r * ldy, keep, qnnc_q8_bytes16(res, sgn));
    }
    return r;
}
#endif

#if defined(__AVX2__) && !(defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__))
/* Rows without a table in the high-half form, as qnnc_q8_rows_hi does on AVX-512, with the
 * per-layer rounding terms (rbs: every channel's, or NULL for one shared term): two rows a
 * step, their 32 int32 lanes narrowed by two packs to one register of bytes that one vpermd
 * puts in column order. Only whole rows (cols is 16); returns the first row it did not store. */
QNNC_HOT int qnnc_q8_rows_hi_avx2(const int32_t *acc, const int32_t *bias, const int32_t *m0,
                                  const int8_t *nsh, int per_channel, int ch0, int rows,
                                  int cols, int32_t zp, int32_t lo, int32_t hi, const int clamp,
                                  const int sgn, uint8_t *y, ptrdiff_t ldy, const int64_t *rbs) {
    const __m256i vzp = _mm256_set1_epi32(zp), vlo = _mm256_set1_epi32(lo);
    const __m256i vhi = _mm256_set1_epi32(hi);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    (void)cols;
    int r = 0;
    for (; r + 2 <= rows; r += 2) {
        __m256i v[4];
        for (int h = 0; h < 2; ++h) {
            const int ch = ch0 + r + h, q = per_channel ? ch : 0, n = nsh[q];
            if (n < 32) return r;
            const int64_t rb = rbs != NULL ? rbs[ch] : qnnc_q8_round_term(bias[ch], m0[q], n);
            const __m256i m = _mm256_set1_epi32(m0[q]), vrb = _mm256_set1_epi64x(rb);
            const __m128i sh = _mm_cvtsi32_si128(n - 32);
            for (int k = 0; k < 2; ++k) {
                const __m256i a = _mm256_loadu_si256(
                    (const __m256i *)(acc + QNNC_Q8_NR * (r + h) + 8 * k));
                __m256i t = _mm256_add_epi32(qnnc_q8_req8_hi(a, m, vrb, sh), vzp);
                if (clamp) t = _mm256_min_epi32(_mm256_max_epi32(t, vlo), vhi);
                v[2 * h + k] = t;
            }
        }
        /* words: row r's columns 0-3, 8-11 | 4-7, 12-15; then r+1's beside them as bytes */
        const __m256i w0 = _mm256_packs_epi32(v[0], v[1]), w1 = _mm256_packs_epi32(v[2], v[3]);
        const __m256i b = _mm256_permutevar8x32_epi32(
            sgn ? _mm256_packs_epi16(w0, w1) : _mm256_packus_epi16(w0, w1), order);
        _mm_storeu_si128((__m128i *)(y + r * ldy), _mm256_castsi256_si128(b));
        _mm_storeu_si128((__m128i *)(y + (r + 1) * ldy), _mm256_extracti128_si256(b, 1));
    }
    return r;
}
#endif

#if defined(QNNC_VBMI)
/* qnnc_q8_rows_store's rows with an epilogue table, the table looked up in registers */
static QNNC_VBMI_FN __attribute__((noinline)) void qnnc_q8_rows_lut_vbmi(
    const int32_t *acc, const qnnc_q8_epilogue *ep, int ch0, int rows, int cols, uint8_t *y,
    ptrdiff_t ldy) {
    const int per_channel = ep->per_channel, sgn = ep->sgn;
    const int32_t zp = ep->zp, lo = ep->lo, hi = ep->hi;
    const __m512i t[4] = {_mm512_loadu_si512(ep->lut), _mm512_loadu_si512(ep->lut + 64),
                          _mm512_loadu_si512(ep->lut + 128), _mm512_loadu_si512(ep->lut + 192)};
    qnnc_q8_req8 c;
    qnnc_q8_req8_out(&c, zp, lo, hi);
    const int clamp = lo > (sgn ? -128 : 0) || hi < (sgn ? 127 : 255);
    for (int r = 0; r < rows; ++r) {
        const int q = per_channel ? ch0 + r : 0;
        const __m128i bytes = qnnc_q8_row_bytes(acc + QNNC_Q8_NR * r, ep->m0[q], ep->nsh[q],
                                                ep->bias[ch0 + r], &c, zp, lo, hi, clamp, sgn);
        const __m128i out = _mm512_castsi512_si128(
            qnnc_lut64_vbmi(_mm512_castsi128_si512(bytes), t));
        uint8_t *yr = y + r * ldy;
        if (cols == QNNC_Q8_NR) {
            _mm_storeu_si128((__m128i *)yr, out);
        } else {
            uint8_t tmp[QNNC_Q8_NR];
            _mm_storeu_si128((__m128i *)tmp, out);
            memcpy(yr, tmp, (size_t)cols);
        }
    }
}
#endif

/* The requantised rows of a tile whose accumulators are at acc (row r's 16 columns at
 * acc + 16r), stored as bytes at y + r * ldy (the first cols of each row), through the
 * epilogue's table when it has one. Out of line, so that the tile's k loop has the
 * registers to itself; the epilogue's fields are read once into locals (a byte store may
 * alias anything, so reading them through ep would repeat the loads for every row). */
QNNC_Q8_TILE_KERNEL void qnnc_q8_rows_store(const int32_t *acc, const qnnc_q8_epilogue *ep,
                                           int ch0, int rows, int cols, uint8_t *y,
                                           ptrdiff_t ldy) {
    const int per_channel = ep->per_channel, sgn = ep->sgn;
    const int32_t *const bias = ep->bias;
    const int32_t *const m0 = ep->m0;
    const int8_t *const nsh = ep->nsh;
    const uint8_t *const lut = ep->lut;
    const int32_t zp = ep->zp, lo = ep->lo, hi = ep->hi;
#if defined(QNNC_VBMI)
    if (lut && qnnc_vbmi()) {
        qnnc_q8_rows_lut_vbmi(acc, ep, ch0, rows, cols, y, ldy);
        return;
    }
#endif
    qnnc_q8_req8 c;
    qnnc_q8_req8_out(&c, zp, lo, hi);
    const int clamp = lo > (sgn ? -128 : 0) || hi < (sgn ? 127 : 255);
    int r0 = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define QNNC_Q8_ROWS_HI_FN qnnc_q8_rows_hi
    const int rows_hi = !lut;
#elif defined(__AVX2__)
#define QNNC_Q8_ROWS_HI_FN qnnc_q8_rows_hi_avx2
    const int rows_hi = !lut && cols == QNNC_Q8_NR;  /* whole rows only */
#endif
#if defined(QNNC_Q8_ROWS_HI_FN)
    if (rows_hi) {
#define QNNC_Q8_ROWS_HI(cl, sg)                                                                  \
    r0 = QNNC_Q8_ROWS_HI_FN(acc, bias, m0, nsh, per_channel, ch0, rows, cols, zp, lo, hi, cl, sg, \
                            y, ldy, ep->rb)
        if (clamp) {
            if (sgn) QNNC_Q8_ROWS_HI(1, 1);
            else QNNC_Q8_ROWS_HI(1, 0);
        } else {
            if (sgn) QNNC_Q8_ROWS_HI(0, 1);
            else QNNC_Q8_ROWS_HI(0, 0);
        }
#undef QNNC_Q8_ROWS_HI
    }
#undef QNNC_Q8_ROWS_HI_FN
#endif
    if (lut) {  /* two rows' bytes at a time through the table in registers */
        qnnc_lut_avx2 t;
        qnnc_lut_avx2_of(&t, lut);
        for (int r = r0; r < rows; r += 2) {
            __m128i b[2] = {_mm_setzero_si128(), _mm_setzero_si128()};
            for (int h = 0; h < 2 && r + h < rows; ++h) {
                const int q = per_channel ? ch0 + r + h : 0;
                b[h] = qnnc_q8_row_bytes(acc + QNNC_Q8_NR * (r + h), m0[q], nsh[q],
                                         bias[ch0 + r + h], &c, zp, lo, hi, clamp, sgn);
            }
            uint8_t t2[2 * QNNC_Q8_NR];
            _mm256_storeu_si256((__m256i *)t2,
                                qnnc_lut32_avx2(_mm256_set_m128i(b[1], b[0]), &t));
            for (int h = 0; h < 2 && r + h < rows; ++h)
                memcpy(y + (r + h) * ldy, t2 + QNNC_Q8_NR * h, (size_t)cols);
        }
        return;
    }
    for (int r = r0; r < rows; ++r) {
        const int q = per_channel ? ch0 + r : 0;
        const __m128i bytes = qnnc_q8_row_bytes(acc + QNNC_Q8_NR * r, m0[q], nsh[q],
                                                bias[ch0 + r], &c, zp, lo, hi, clamp, sgn);
        uint8_t *yr = y + r * ldy;
        if (!lut && cols == QNNC_Q8_NR) {
            _mm_storeu_si128((__m128i *)yr, bytes);
            continue;
        }
        uint8_t t[QNNC_Q8_NR];
        _mm_storeu_si128((__m128i *)t, bytes);
        if (lut) {
            for (int e = 0; e < cols; ++e) yr[e] = lut[t[e]];
        } else {
            memcpy(yr, t, (size_t)cols);
        }
    }
}

/* qnnc_q8_tile (AVX2 or VNNI) and then its epilogue: the int32 tile stays in an L1-resident
 * array between the two (requantising straight from the 12 accumulator registers made GCC keep
 * two of them on the stack inside the k loop), and the rows are stored with the epilogue's
 * constants read once per tile, not through a call per row. */
static inline void qnnc_q8_tile_req(int K2, const int16_t *QNNC_RESTRICT A,
                                    const int16_t *QNNC_RESTRICT B, const qnnc_q8_epilogue *ep,
                                    int ch0, int rows, int cols, void *QNNC_RESTRICT y,
                                    ptrdiff_t ldy) {
    __m256i acc[2 * QNNC_Q8_MR];
    qnnc_q8_tile(K2, A, B, (int32_t *)acc);
    qnnc_q8_rows_store((const int32_t *)acc, ep, ch0, rows, cols, (uint8_t *)y, ldy);
}
#else
/* elsewhere: the tile through memory, then the shared epilogue */
static inline void qnnc_q8_tile_req(int K2, const int16_t *QNNC_RESTRICT A,
                                    const int16_t *QNNC_RESTRICT B, const qnnc_q8_epilogue *ep,
                                    int ch0, int rows, int cols, void *QNNC_RESTRICT y,
                                    ptrdiff_t ldy) {
    int32_t acc[QNNC_Q8_MR * QNNC_Q8_NR];
    qnnc_q8_tile(K2, A, B, acc);
    qnnc_q8_tile_store_c(acc, ep, ch0, rows, cols, y, ldy);
}
#endif

/* -- depthwise taps ----------------------------------------------------------------------- */

/* acc[o] = sum over t < taps of w[t] * x[off[t] + o], for o < n (rounded up to 16: acc has
 * room for the whole last block, and x readable that far, zero past its data). The depthwise
 * convolution's taps over one output row or one flattened plane of the int16 padded planes
 * (targets/c/ops_quant_conv.py). AVX2 takes the taps two at a time: the two taps' inputs
 * interleaved as int16 pairs and vpmaddwd by the pair of weights, sixteen outputs a step,
 * summed in registers over every tap (the interleave puts outputs 0-3 and 8-11 in one
 * register, 4-7 and 12-15 in the other; two lane swaps restore the order). AVX-512 does the
 * same 32 outputs a step (vpdpwssd adds the pair products where VNNI is there), while at
 * least 17 are left: the last block of 16 is AVX2's, so nothing past n rounded up to 16 is
 * read or written. Integer sums, exact in any order: the emitter checks that no sum leaves
 * int32. */
#if defined(__AVX512F__) && defined(__AVX512BW__)
static inline __m512i qnnc_dw_pair512(__m512i acc, __m512i pairs, __m512i w) {
#if defined(__AVX512VNNI__)
    return _mm512_dpwssd_epi32(acc, pairs, w);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, w));
#endif
}
#endif

QNNC_HOT void qnnc_dw_taps(const int16_t *x, const int32_t *off, const int16_t *w,
                           int taps, int n, int32_t *acc) {
    int o = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__)
    /* lo holds outputs 0-3, 8-11, 16-19, 24-27 (four per 128-bit lane), hi the other four of
     * each lane: these qword indices put them back in order, 16 outputs each */
    const __m512i first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    const __m512i second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    for (; o + 16 < n; o += 32) {
        __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
        int t = 0;
        for (; t + 1 < taps; t += 2) {
            const __m512i a = _mm512_loadu_si512((const void *)(x + off[t] + o));
            const __m512i b = _mm512_loadu_si512((const void *)(x + off[t + 1] + o));
            const __m512i wp = _mm512_set1_epi32((int32_t)(((uint32_t)(uint16_t)w[t + 1] << 16) |
                                                           (uint16_t)w[t]));
            lo = qnnc_dw_pair512(lo, _mm512_unpacklo_epi16(a, b), wp);
            hi = qnnc_dw_pair512(hi, _mm512_unpackhi_epi16(a, b), wp);
        }
        if (t < taps) {
            const __m512i a = _mm512_loadu_si512((const void *)(x + off[t] + o));
            const __m512i wp = _mm512_set1_epi32((int32_t)(uint16_t)w[t]);
            const __m512i z = _mm512_setzero_si512();
            lo = qnnc_dw_pair512(lo, _mm512_unpacklo_epi16(a, z), wp);
            hi = qnnc_dw_pair512(hi, _mm512_unpackhi_epi16(a, z), wp);
        }
        _mm512_storeu_si512((void *)(acc + o), _mm512_permutex2var_epi64(lo, first, hi));
        _mm512_storeu_si512((void *)(acc + o + 16), _mm512_permutex2var_epi64(lo, second, hi));
    }
#endif
#if defined(__AVX2__)
    for (; o < n; o += 16) {
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        int t = 0;
        for (; t + 1 < taps; t += 2) {
            const __m256i a = _mm256_loadu_si256((const __m256i *)(x + off[t] + o));
            const __m256i b = _mm256_loadu_si256((const __m256i *)(x + off[t + 1] + o));
            const __m256i wp = _mm256_set1_epi32((int32_t)(((uint32_t)(uint16_t)w[t + 1] << 16) |
                                                           (uint16_t)w[t]));
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), wp));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), wp));
        }
        if (t < taps) {
            const __m256i a = _mm256_loadu_si256((const __m256i *)(x + off[t] + o));
            const __m256i wp = _mm256_set1_epi32((int32_t)(uint16_t)w[t]);
            const __m256i z = _mm256_setzero_si256();
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, z), wp));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, z), wp));
        }
        _mm256_storeu_si256((__m256i *)(acc + o), _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_storeu_si256((__m256i *)(acc + o + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
#endif
    for (; o < n; ++o) {
        int32_t sum = 0;
        for (int t = 0; t < taps; ++t) sum += (int32_t)w[t] * x[off[t] + o];
        acc[o] = sum;
    }
}

/* -- depthwise taps on byte quads (vpdpbusd) ---------------------------------------------- */

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
/* Both built only where vpdpbusd is: the emitter takes this path for VNNI builds alone, and
 * such a layer refuses to compile elsewhere. */

/* One row of a depthwise convolution's quad plane from a row r of its padded byte plane
 * (qnnc_q8_pad_planes): q[4i + e] = r[s*i + e] ^ flip for i < n, e < 4, s = 1 or 2 (flip
 * 0x80 turns int8 codes into the bytes vpdpbusd reads as unsigned). Reads r[0 .. s*(n-1)+3]
 * only; writes whole blocks of 16 quads (q needs room for n rounded up to 16). 16 quads
 * come from one masked load: vpermd gives each 128-bit lane the source dwords its four
 * quads start in, vpshufb picks the bytes. */
static inline void qnnc_dw_quad_row(uint8_t *QNNC_RESTRICT q, const uint8_t *QNNC_RESTRICT r,
                                    int n, int s, int flip) {
    const __m512i fl = _mm512_set1_epi8((char)flip);
    const __m512i dw = s == 1 ? _mm512_setr_epi32(0, 1, 0, 0, 1, 2, 0, 0, 2, 3, 0, 0, 3, 4, 0, 0)
                              : _mm512_setr_epi32(0, 1, 2, 0, 2, 3, 4, 0, 4, 5, 6, 0, 6, 7, 8, 0);
    const __m128i p1 = _mm_setr_epi8(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6);
    const __m128i p2 = _mm_setr_epi8(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9);
    const __m512i pick = _mm512_broadcast_i32x4(s == 1 ? p1 : p2);
    for (int i = 0; i < n; i += 16) {
        const int last = s * ((n - i < 16 ? n - i : 16) - 1) + 3;  /* bytes 0 .. last */
        const __mmask64 k = last >= 63 ? ~(__mmask64)0 : ((__mmask64)1 << (last + 1)) - 1;
        const __m512i src = _mm512_maskz_loadu_epi8(k, r + s * i);
        const __m512i quads = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(dw, src), pick);
        _mm512_storeu_si512((void *)(q + 4 * i), _mm512_xor_si512(quads, fl));
    }
}

/* acc[o] = sum over kh < KH and g < G of the four byte products of quad (o + g * gstep) of
 * quad row kh (q + kh * qrs bytes) with the packed int8 weights wq[kh * G + g], for o < n,
 * rounded up to 16 (acc has room; the quad rows hold that many quads past o + (G-1)*gstep).
 * Taps past the kernel's width have weight 0. Integer sums, exact in any order (the emitter
 * checks that they fit int32): vpdpbusd sixteen outputs a step, two blocks at a time. */
static inline void qnnc_dw_quad_taps(const uint8_t *QNNC_RESTRICT q, ptrdiff_t qrs, int KH,
                                     int G, int gstep, const int32_t *QNNC_RESTRICT wq, int n,
                                     int32_t *QNNC_RESTRICT acc) {
    int o = 0;
    for (; o + 16 < n; o += 32) {
        __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
        for (int kh = 0; kh < KH; ++kh)
            for (int g = 0; g < G; ++g) {
                const uint8_t *at = q + kh * qrs + 4 * (o + g * gstep);
                const __m512i w = _mm512_set1_epi32(wq[kh * G + g]);
                a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512((const void *)at), w);
                b = _mm512_dpbusd_epi32(b, _mm512_loadu_si512((const void *)(at + 64)), w);
            }
        _mm512_storeu_si512((void *)(acc + o), a);
        _mm512_storeu_si512((void *)(acc + o + 16), b);
    }
    for (; o < n; o += 16) {
        __m512i a = _mm512_setzero_si512();
        for (int kh = 0; kh < KH; ++kh)
            for (int g = 0; g < G; ++g)
                a = _mm512_dpbusd_epi32(
                    a, _mm512_loadu_si512((const void *)(q + kh * qrs + 4 * (o + g * gstep))),
                    _mm512_set1_epi32(wq[kh * G + g]));
        _mm512_storeu_si512((void *)(acc + o), a);
    }
}
#endif

/* -- nearest 2x upsampling ---------------------------------------------------------------- */

/* y[j] = x[j / 2] for j < n, bytes: a row of a nearest Resize that doubles the last axis
 * (an FPN's upsampling). AVX2 doubles 16 bytes into 32 a step and 8 into 16 (each byte
 * unpacked with itself). Reads x[0 .. (n-1)/2] only. */
static inline void qnnc_upsample2_row8(void *QNNC_RESTRICT yv, const void *QNNC_RESTRICT xv,
                                       int n) {
    uint8_t *y = (uint8_t *)yv;
    const uint8_t *x = (const uint8_t *)xv;
    int j = 0;
#if defined(__AVX2__)
    for (; j + 32 <= n; j += 32) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(x + j / 2));
        _mm_storeu_si128((__m128i *)(y + j), _mm_unpacklo_epi8(v, v));
        _mm_storeu_si128((__m128i *)(y + j + 16), _mm_unpackhi_epi8(v, v));
    }
    for (; j + 16 <= n; j += 16) {
        const __m128i v = _mm_loadl_epi64((const __m128i *)(x + j / 2));
        _mm_storeu_si128((__m128i *)(y + j), _mm_unpacklo_epi8(v, v));
    }
#endif
    for (; j < n; ++j) y[j] = x[j / 2];
}

/* -- MaxPool ------------------------------------------------------------------------------ */

/* One output row of an 8-bit MaxPool from its row buffer w (the elementwise max of the
 * window's input rows, in padded coordinates; targets/c/ops_pool.py): y[o] = max(w[o * sw ..
 * o * sw + kw - 1]) for o < n, signed bytes if sgn. Reads w[0 .. (n - 1) * sw + kw - 1] only.
 * AVX2 runs stride 1 as kw shifted loads (32, then 16 outputs a step) and stride 2 with kw = 2 or 3
 * on 16-bit words (each word's low byte is an even cell, its high byte the odd one after it:
 * 16 outputs a step); other windows and the tails go one output at a time. Max is exact, so
 * every path gives the same bytes. */
static inline void qnnc_maxpool_row8(const void *wv, void *yv, int n, int kw, int sw, int sgn) {
    const uint8_t *w = (const uint8_t *)wv;
    uint8_t *y = (uint8_t *)yv;
    int o = 0;
#if defined(__AVX2__)
    const int cells = (n - 1) * sw + kw;
    if (sw == 1) {
        for (; o + 31 + kw <= cells; o += 32) {
            __m256i m = _mm256_loadu_si256((const __m256i *)(w + o));
            for (int k = 1; k < kw; ++k) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(w + o + k));
                m = sgn ? _mm256_max_epi8(m, v) : _mm256_max_epu8(m, v);
            }
            _mm256_storeu_si256((__m256i *)(y + o), m);
        }
        for (; o + 15 + kw <= cells; o += 16) {  /* short rows (13, 27 wide): 16 a step */
            __m128i m = _mm_loadu_si128((const __m128i *)(w + o));
            for (int k = 1; k < kw; ++k) {
                const __m128i v = _mm_loadu_si128((const __m128i *)(w + o + k));
                m = sgn ? _mm_max_epi8(m, v) : _mm_max_epu8(m, v);
            }
            _mm_storeu_si128((__m128i *)(y + o), m);
        }
    } else if (sw == 2 && (kw == 2 || kw == 3)) {
        for (; 2 * o + 34 <= cells; o += 16) {
            const __m256i a = _mm256_loadu_si256((const __m256i *)(w + 2 * o));
            __m256i ev, od;
            if (sgn) {
                ev = _mm256_srai_epi16(_mm256_slli_epi16(a, 8), 8);
                od = _mm256_srai_epi16(a, 8);
            } else {
                ev = _mm256_and_si256(a, _mm256_set1_epi16(0xFF));
                od = _mm256_srli_epi16(a, 8);
            }
            __m256i m = _mm256_max_epi16(ev, od);
            if (kw == 3) {
                const __m256i b = _mm256_loadu_si256((const __m256i *)(w + 2 * o + 2));
                m = _mm256_max_epi16(m, sgn ? _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8)
                                            : _mm256_and_si256(b, _mm256_set1_epi16(0xFF)));
            }
            const __m256i p = sgn ? _mm256_packs_epi16(m, m) : _mm256_packus_epi16(m, m);
            _mm_storeu_si128((__m128i *)(y + o),
                             _mm256_castsi256_si128(_mm256_permute4x64_epi64(p, 0x08)));
        }
    }
#endif
    for (; o < n; ++o) {
        const uint8_t *c = w + o * sw;
        if (sgn) {
            int8_t m = (int8_t)c[0];
            for (int k = 1; k < kw; ++k) m = (int8_t)c[k] > m ? (int8_t)c[k] : m;
            y[o] = (uint8_t)m;
        } else {
            uint8_t m = c[0];
            for (int k = 1; k < kw; ++k) m = c[k] > m ? c[k] : m;
            y[o] = m;
        }
    }
}

#endif /* QNNC_INT8_H */
