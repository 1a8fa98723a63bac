/* qnnc_int8_u8s8.h - the u8 x s8 GEMM tile, for weights whose pairs cannot saturate.
 *
 * vpmaddubsw multiplies 32 unsigned bytes by 32 signed bytes and adds adjacent products into
 * 16 int16 lanes, saturating. With activation bytes in [0, 255] the pair sum
 * x0 * w0 + x1 * w1 lies in [-255 * (n0 + n1), 255 * (p0 + p1)], where p and n are the
 * positive and negative parts of the two weights; it fits int16 for every input exactly when
 * p0 + p1 <= 128 and n0 + n1 <= 128 (255 * 128 = 32640). The emitter checks that bound on
 * every aligned weight pair at compile time (q8_gemm.quads_fit) and uses this tile only
 * then, so the results never depend on the data: exact, like the int16 tile, at nearly
 * twice its multiply rate (vpmaddwd by ones then widens each pair of pair sums into int32).
 *
 * Activations are raw bytes: an int8 tensor is moved to [0, 255] by flipping its top bit
 * (x + 128), and the emitter folds 128 * sum_k w into the bias. Packed layouts (MR = 6,
 * NR = 16, four k per step):
 *
 *   A (weights, packed at compile time): [M/6 tiles][K4][6 rows][4]  int8, K4 = ceil(K/4)
 *   B (activations, packed per call):    [N/16 panels][K4][16 cols][4] uint8
 *
 * Weights past K are zero, so B's bytes there only need to be defined (they are zero). */
#ifndef QNNC_INT8_U8S8_H
#define QNNC_INT8_U8S8_H

/* How far ahead of its k quad a tile asks for its weight rows (bytes; 32 k quads): a large
 * layer's weights stream from L3 (ResNet-50's 7x7 stage: 2.4 MB a layer, each byte read by
 * three tiles), and the tiles waited on their broadcasts of them. ResNet-50 on one Zen 4
 * core went from 23.56 to 22.92 ms with it (any distance from 384 to 1536 bytes did as well
 * in single layers). */
#define QNNC_Q8U_AHEAD 768

/* -- packing ----------------------------------------------------------------------------- */

/* Rows k .. k+3 of B as 8-bit codes (r1 .. r3 NULL for rows past K), top bit flipped by
 * `flip` (0x80 for int8 codes, else 0), interleaved into this k quad's slot of the packed
 * panels at dst (panels `pstride` bytes apart). Columns n .. 16*ceil(n/16) are zero. */
static inline void qnnc_q8u_pack_quad(uint8_t *QNNC_RESTRICT dst, const void *r0,
                                      const void *r1, const void *r2, const void *r3,
                                      int flip, int n, ptrdiff_t pstride) {
    const uint8_t *rows[4] = {(const uint8_t *)r0, (const uint8_t *)r1, (const uint8_t *)r2,
                              (const uint8_t *)r3};
    int p = 0;
#if defined(__AVX2__)
    const int full = n / QNNC_Q8_NR;
    {
        /* 32 columns (two panels) per step: the in-lane unpacks give quads of columns 0-3 and
         * 16-19 in one register, 4-7 and 20-23 in the next, ...; swapping 128-bit halves
         * puts each panel's four quarters together. Each row is flipped as it is loaded, and
         * a row past K is zero (not flipped). */
        const __m256i f2 = _mm256_set1_epi8((char)flip);
#define QNNC_Q8U_ROW32(e, o)                                                              \
    (rows[e] ? _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(rows[e] + (o))), f2) \
             : _mm256_setzero_si256())
        for (; p + 2 <= full; p += 2) {
            const ptrdiff_t o = (ptrdiff_t)p * QNNC_Q8_NR;
            const __m256i a = QNNC_Q8U_ROW32(0, o), b = QNNC_Q8U_ROW32(1, o);
            const __m256i c = QNNC_Q8U_ROW32(2, o), d = QNNC_Q8U_ROW32(3, o);
            const __m256i ab0 = _mm256_unpacklo_epi8(a, b), ab1 = _mm256_unpackhi_epi8(a, b);
            const __m256i cd0 = _mm256_unpacklo_epi8(c, d), cd1 = _mm256_unpackhi_epi8(c, d);
            const __m256i q0 = _mm256_unpacklo_epi16(ab0, cd0);  /* cols 0-3 | 16-19 */
            const __m256i q1 = _mm256_unpackhi_epi16(ab0, cd0);  /* cols 4-7 | 20-23 */
            const __m256i q2 = _mm256_unpacklo_epi16(ab1, cd1);  /* cols 8-11 | 24-27 */
            const __m256i q3 = _mm256_unpackhi_epi16(ab1, cd1);  /* cols 12-15 | 28-31 */
            uint8_t *p0 = dst + p * pstride, *p1 = p0 + pstride;
            _mm256_storeu_si256((__m256i *)p0, _mm256_permute2x128_si256(q0, q1, 0x20));
            _mm256_storeu_si256((__m256i *)(p0 + 32), _mm256_permute2x128_si256(q2, q3, 0x20));
            _mm256_storeu_si256((__m256i *)p1, _mm256_permute2x128_si256(q0, q1, 0x31));
            _mm256_storeu_si256((__m256i *)(p1 + 32), _mm256_permute2x128_si256(q2, q3, 0x31));
        }
#undef QNNC_Q8U_ROW32
        /* one panel at a time, the last one partial: its columns from n on zero */
        const __m128i f = _mm_set1_epi8((char)flip);
        for (; p * QNNC_Q8_NR < n; ++p) {
            const ptrdiff_t o = (ptrdiff_t)p * QNNC_Q8_NR;
            const int m = n - (int)o < QNNC_Q8_NR ? n - (int)o : QNNC_Q8_NR;
            __m128i v[4];
            for (int e = 0; e < 4; ++e) {
                if (!rows[e]) {
                    v[e] = _mm_setzero_si128();
                } else if (m == QNNC_Q8_NR) {
                    v[e] = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(rows[e] + o)), f);
                } else {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
                    const __mmask16 k = (__mmask16)((1u << m) - 1u);
                    const __m128i raw = _mm_maskz_loadu_epi8(k, rows[e] + o);
                    v[e] = _mm_maskz_mov_epi8(k, _mm_xor_si128(raw, f));
#else
                    uint8_t t[QNNC_Q8_NR] = {0};
                    for (int c = 0; c < m; ++c) t[c] = (uint8_t)(rows[e][o + c] ^ flip);
                    v[e] = _mm_loadu_si128((const __m128i *)t);
#endif
                }
            }
            const __m128i ab0 = _mm_unpacklo_epi8(v[0], v[1]), ab1 = _mm_unpackhi_epi8(v[0], v[1]);
            const __m128i cd0 = _mm_unpacklo_epi8(v[2], v[3]), cd1 = _mm_unpackhi_epi8(v[2], v[3]);
            uint8_t *q = dst + p * pstride;
            _mm_storeu_si128((__m128i *)q, _mm_unpacklo_epi16(ab0, cd0));
            _mm_storeu_si128((__m128i *)(q + 16), _mm_unpackhi_epi16(ab0, cd0));
            _mm_storeu_si128((__m128i *)(q + 32), _mm_unpacklo_epi16(ab1, cd1));
            _mm_storeu_si128((__m128i *)(q + 48), _mm_unpackhi_epi16(ab1, cd1));
        }
    }
#endif
    for (; p * QNNC_Q8_NR < n; ++p) {
        uint8_t *q = dst + p * pstride;
        for (int c = 0; c < QNNC_Q8_NR; ++c) {
            const ptrdiff_t i = (ptrdiff_t)p * QNNC_Q8_NR + c;
            for (int e = 0; e < 4; ++e)
                q[4 * c + e] = (i < n && rows[e]) ? (uint8_t)(rows[e][i] ^ flip) : 0;
        }
    }
}

/* Quad slot kq of B straight from the zero-padded planes of a convolution with column
 * stride 1 (qnnc_q8_pad_planes): column j, output position p0 + j at (oh, ow), gets the bytes
 * xp[oh * SH * WP + ow + off[e]] for e < 4 (off[e] < 0: a row past K, zero), top bit flipped
 * by `flip`; columns n .. the panel's end are zero. The panels qnnc_q8_im2row_padded's four
 * rows and qnnc_q8u_pack_quad make, in one pass: a panel whose 16 positions lie in one output
 * row takes 16 bytes from each tap's source. */
static inline void qnnc_q8u_im2quad_s1(uint8_t *QNNC_RESTRICT dst,
                                       const uint8_t *QNNC_RESTRICT xp, const ptrdiff_t off[4],
                                       int p0, int n, int OW, int WP, int SH, int flip,
                                       ptrdiff_t pstride) {
    int oh = p0 / OW, ow = p0 - oh * OW;
    for (int j = 0; j < n; j += QNNC_Q8_NR) {
        uint8_t *q = dst + (ptrdiff_t)(j / QNNC_Q8_NR) * pstride;
#if defined(__AVX2__)
        if (ow + QNNC_Q8_NR <= OW && j + QNNC_Q8_NR <= n) {
            const uint8_t *src = xp + (ptrdiff_t)oh * SH * WP + ow;
            const __m128i f = _mm_set1_epi8((char)flip);
            __m128i r[4];
            for (int e = 0; e < 4; ++e)  /* a missing row as flip: zero once flipped */
                r[e] = off[e] < 0 ? f : _mm_loadu_si128((const __m128i *)(src + off[e]));
            const __m128i ab0 = _mm_unpacklo_epi8(r[0], r[1]), ab1 = _mm_unpackhi_epi8(r[0], r[1]);
            const __m128i cd0 = _mm_unpacklo_epi8(r[2], r[3]), cd1 = _mm_unpackhi_epi8(r[2], r[3]);
            _mm_storeu_si128((__m128i *)q, _mm_xor_si128(_mm_unpacklo_epi16(ab0, cd0), f));
            _mm_storeu_si128((__m128i *)(q + 16), _mm_xor_si128(_mm_unpackhi_epi16(ab0, cd0), f));
            _mm_storeu_si128((__m128i *)(q + 32), _mm_xor_si128(_mm_unpacklo_epi16(ab1, cd1), f));
            _mm_storeu_si128((__m128i *)(q + 48), _mm_xor_si128(_mm_unpackhi_epi16(ab1, cd1), f));
            ow += QNNC_Q8_NR;
            if (ow >= OW) ow -= OW, ++oh;
            continue;
        }
#endif
        for (int c = 0; c < QNNC_Q8_NR; ++c) {
            for (int e = 0; e < 4; ++e)
                q[4 * c + e] = j + c < n && off[e] >= 0
                    ? (uint8_t)(xp[(ptrdiff_t)oh * SH * WP + ow + off[e]] ^ flip) : 0;
            if (++ow == OW) ow = 0, ++oh;
        }
    }
}

/* Columns of B given as rows of x (x[j][k], row stride ldx: a fully connected layer's
 * input rows), n of them, K long, top bit flipped by `flip`, into the packed panels (panel
 * stride pstride bytes): column j's quad kq is x[j][4kq .. 4kq+3], zero past K and for the
 * columns from n to the panel's end. */
static inline void qnnc_q8u_pack_cols(uint8_t *QNNC_RESTRICT dst, const void *QNNC_RESTRICT x,
                                      int flip, int n, int K, ptrdiff_t ldx, ptrdiff_t pstride) {
    const int K4 = (K + 3) / 4, whole = K / 4;
    const uint32_t f = (uint32_t)flip * 0x01010101u;
    const int cols = (n + QNNC_Q8_NR - 1) / QNNC_Q8_NR * QNNC_Q8_NR;
    for (int j = 0; j < cols; ++j) {
        uint8_t *d = dst + (j / QNNC_Q8_NR) * pstride + (j % QNNC_Q8_NR) * 4;
        if (j >= n) {
            for (int kq = 0; kq < K4; ++kq) memset(d + kq * 4 * QNNC_Q8_NR, 0, 4);
            continue;
        }
        const uint8_t *xr = (const uint8_t *)x + j * ldx;
        for (int kq = 0; kq < whole; ++kq) {
            uint32_t v;
            memcpy(&v, xr + 4 * kq, 4);
            v ^= f;
            memcpy(d + kq * 4 * QNNC_Q8_NR, &v, 4);
        }
        if (whole < K4) {
            uint8_t *q = d + whole * 4 * QNNC_Q8_NR;
            for (int e = 0; e < 4; ++e)
                q[e] = 4 * whole + e < K ? (uint8_t)(xr[4 * whole + e] ^ flip) : 0;
        }
    }
}

/* -- the micro-kernel: C[6][16] = A tile (K4 quads) x B panel (K4 quads) ----------------- */

QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile_c(int K4, const int8_t *QNNC_RESTRICT A,
                                        const uint8_t *QNNC_RESTRICT B,
                                        int32_t *QNNC_RESTRICT C) {
    int32_t acc[QNNC_Q8_MR * QNNC_Q8_NR] = {0};
    for (int kq = 0; kq < K4; ++kq) {
        const int8_t *a = A + kq * 4 * QNNC_Q8_MR;
        const uint8_t *b = B + kq * 4 * QNNC_Q8_NR;
        for (int r = 0; r < QNNC_Q8_MR; ++r)
            for (int c = 0; c < QNNC_Q8_NR; ++c)
                acc[r * QNNC_Q8_NR + c] += a[4 * r] * b[4 * c] + a[4 * r + 1] * b[4 * c + 1] +
                                           a[4 * r + 2] * b[4 * c + 2] +
                                           a[4 * r + 3] * b[4 * c + 3];
    }
    memcpy(C, acc, sizeof acc);
}

/* -- register epilogues: the plain-C conditions ------------------------------------------ */

/* Whether an epilogue's bounds clamp more than its output type's range does (a fused
 * activation); else the saturating conversion to bytes is the clamp. */
static inline int qnnc_q8_clamps(const qnnc_q8_epilogue *ep) {
    return ep->lo > (ep->sgn ? -128 : 0) || ep->hi < (ep->sgn ? 127 : 255);
}

/* CALL(cl, sg) with the epilogue's clamp and sign flags as literals: the register
 * epilogues are inlined once per combination, each with its checks folded away. */
#define QNNC_Q8U_BY_FLAGS(clamp, sgn, CALL) \
    do {                                    \
        if (clamp) {                        \
            if (sgn) CALL(1, 1);            \
            else CALL(1, 0);                \
        } else {                            \
            if (sgn) CALL(0, 1);            \
            else CALL(0, 0);                \
        }                                   \
    } while (0)

/* The largest n whose rounding term also carries the output's zero point (qnnc_q8u_rbz):
 * with |acc * m0| < 2^62, 2^(n-1) + |zp| * 2^n stays below 2^61 up to n = 53, so the sum
 * stays inside int64. */
#define QNNC_Q8U_RBZ_MAX_N 53

/* Channel ch's rounding term with the zero point in it: for integers,
 * floor((p + rb + zp * 2^n) / 2^n) = floor((p + rb) / 2^n) + zp, so the register epilogue
 * adds no zero point. */
static inline int64_t qnnc_q8u_rbz(const qnnc_q8_epilogue *ep, int ch) {
    return ep->rb[ch] + (int64_t)ep->zp * ((int64_t)1 << ep->nsh[ch]);
}

/* Whether the six rows of channels ch0 .. ch0+5 take the register epilogue: a per-channel
 * epilogue with its round terms made, and every row's n in [32, QNNC_Q8U_RBZ_MAX_N]. */
static inline int qnnc_q8u_tile2_hi_rows(const qnnc_q8_epilogue *ep, int ch0) {
    if (!ep->rb || !ep->per_channel) return 0;
    for (int r = 0; r < QNNC_Q8_MR; ++r)
        if (ep->nsh[ch0 + r] < 32 || ep->nsh[ch0 + r] > QNNC_Q8U_RBZ_MAX_N) return 0;
    return 1;
}

/* Whether the VNNI register epilogue (qnnc_q8u_tile2_st_vnni) stores the tile of channels
 * ch0 .. ch0+5: such rows and no table (the AVX2 one takes tables too). */
static inline int qnnc_q8u_tile2_hi_ok(const qnnc_q8_epilogue *ep, int ch0) {
    return !ep->lut && qnnc_q8u_tile2_hi_rows(ep, ch0);
}

#if defined(__AVX2__)
/* One weight row's quad, broadcast to every lane. */
static inline __m256i qnnc_q8u_quad(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

/* k quad kq's two 8-column halves of the panel, then row r's quad times both into (c, d) */
#define QNNC_Q8U_LOADS                                                             \
    const int8_t *a = A + kq * 4 * QNNC_Q8_MR;                                     \
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(B + kq * 4 * QNNC_Q8_NR)); \
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(B + kq * 4 * QNNC_Q8_NR + 32))
#define QNNC_Q8U_ROW(c, d, r)                                                      \
    do {                                                                           \
        const __m256i w_ = qnnc_q8u_quad(a + 4 * (r));                             \
        c = _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(b0, w_), ones)); \
        d = _mm256_add_epi32(d, _mm256_madd_epi16(_mm256_maddubs_epi16(b1, w_), ones)); \
    } while (0)
/* The six-row tile's k loop over the panel at B (A, B, K4 and `ones` in scope), the weight
 * rows prefetched QNNC_Q8U_AHEAD bytes on: row r's columns 0-7 in cr0, 8-15 in cr1. */
#define QNNC_Q8U_AVX2_TILE                                                              \
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00;    \
    __m256i c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00; \
    for (int kq = 0; kq < K4; ++kq) {                                                   \
        QNNC_Q8U_LOADS;                                                                 \
        _mm_prefetch((const char *)(a + QNNC_Q8U_AHEAD), _MM_HINT_T0);                  \
        QNNC_Q8U_ROW(c00, c01, 0);                                                      \
        QNNC_Q8U_ROW(c10, c11, 1);                                                      \
        QNNC_Q8U_ROW(c20, c21, 2);                                                      \
        QNNC_Q8U_ROW(c30, c31, 3);                                                      \
        QNNC_Q8U_ROW(c40, c41, 4);                                                      \
        QNNC_Q8U_ROW(c50, c51, 5);                                                      \
    }

/* Row r's columns 0-7 at C + 16r, 8-15 at C + 16r + 8, as qnnc_q8_tile_avx2 stores them. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile_avx2(int K4, const int8_t *QNNC_RESTRICT A,
                                           const uint8_t *QNNC_RESTRICT B,
                                           int32_t *QNNC_RESTRICT C) {
    _Static_assert(QNNC_Q8_MR == 6, "the AVX2 tile holds six rows of accumulators");
    const __m256i ones = _mm256_set1_epi16(1);
    QNNC_Q8U_AVX2_TILE
    /* stored one by one: from an array of them GCC made a stack copy and a rep movsq */
#define QNNC_Q8U_ST(i, v) _mm256_storeu_si256((__m256i *)(C + 8 * (i)), v)
    QNNC_Q8U_ST(0, c00), QNNC_Q8U_ST(1, c01), QNNC_Q8U_ST(2, c10), QNNC_Q8U_ST(3, c11);
    QNNC_Q8U_ST(4, c20), QNNC_Q8U_ST(5, c21), QNNC_Q8U_ST(6, c30), QNNC_Q8U_ST(7, c31);
    QNNC_Q8U_ST(8, c40), QNNC_Q8U_ST(9, c41), QNNC_Q8U_ST(10, c50), QNNC_Q8U_ST(11, c51);
}

/* Rows ch and ch + 1 of a tile (a0, a1: row ch's columns 0-7 and 8-15; b0, b1: row
 * ch + 1's) requantised where they are, in the high-half form with the zero point in the
 * rounding term (qnnc_q8u_rbz), and stored as 16 bytes each at y and y + ldy: two packs
 * narrow the four registers with the output type's saturation, and two dword unpacks of the
 * result's halves put the columns in order. Every constant is read through ep here, after
 * the k loop, so that none holds a register inside it (the loop's 12 accumulators, two
 * panel halves, a broadcast, a product and `ones` are already one more than the 16: GCC
 * keeps one accumulator on the stack there, in qnnc_q8u_tile_avx2 as here). */
static inline __attribute__((always_inline)) void qnnc_q8u_rows2_st_avx2(
    __m256i a0, __m256i a1, __m256i b0, __m256i b1, const qnnc_q8_epilogue *ep, int ch,
    const int clamp, const int sgn, const qnnc_lut_avx2 *lut, uint8_t *y, ptrdiff_t ldy) {
    __m256i v[4] = {a0, a1, b0, b1};
    for (int h = 0; h < 2; ++h) {
        const __m256i m = _mm256_set1_epi32(ep->m0[ch + h]);
        const __m256i rbz = _mm256_set1_epi64x(qnnc_q8u_rbz(ep, ch + h));
        const __m128i sh = _mm_cvtsi32_si128(ep->nsh[ch + h] - 32);
        for (int k = 2 * h; k < 2 * h + 2; ++k) {
            v[k] = qnnc_q8_req8_hi(v[k], m, rbz, sh);
            if (clamp)
                v[k] = _mm256_min_epi32(_mm256_max_epi32(v[k], _mm256_set1_epi32(ep->lo)),
                                        _mm256_set1_epi32(ep->hi));
        }
    }
    /* words: row ch's columns 0-3, 8-11 | 4-7, 12-15; the bytes then hold, as dwords,
     * ch's 0-3, 8-11, ch+1's 0-3, 8-11 | ch's 4-7, 12-15, ch+1's 4-7, 12-15 */
    const __m256i w0 = _mm256_packs_epi32(v[0], v[1]), w1 = _mm256_packs_epi32(v[2], v[3]);
    __m256i b = sgn ? _mm256_packs_epi16(w0, w1) : _mm256_packus_epi16(w0, w1);
    if (lut) b = qnnc_lut32_avx2(b, lut);  /* a byte's table entry, wherever the byte is */
    const __m128i lo = _mm256_castsi256_si128(b), hi = _mm256_extracti128_si256(b, 1);
    _mm_storeu_si128((__m128i *)y, _mm_unpacklo_epi32(lo, hi));
    _mm_storeu_si128((__m128i *)(y + ldy), _mm_unpackhi_epi32(lo, hi));
}

/* qnnc_q8u_tile_avx2 over `panels` panels from B on (pstride apart), each tile's rows
 * requantised in registers and stored as 16 bytes at y + r * ldy, then y + 16: no int32
 * tile in memory and one call per row of tiles (clamp and sgn constants where inlined). */
static inline __attribute__((always_inline)) void qnnc_q8u_tile_st_body_avx2(
    int K4, const int8_t *QNNC_RESTRICT A, const uint8_t *QNNC_RESTRICT B, ptrdiff_t pstride,
    const qnnc_q8_epilogue *ep, int ch0, const int clamp, const int sgn,
    const qnnc_lut_avx2 *lut, uint8_t *y, ptrdiff_t ldy, int panels) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int p = 0; p < panels; ++p, B += pstride, y += QNNC_Q8_NR) {
        QNNC_Q8U_AVX2_TILE
        qnnc_q8u_rows2_st_avx2(c00, c01, c10, c11, ep, ch0, clamp, sgn, lut, y, ldy);
        qnnc_q8u_rows2_st_avx2(c20, c21, c30, c31, ep, ch0 + 2, clamp, sgn, lut, y + 2 * ldy,
                               ldy);
        qnnc_q8u_rows2_st_avx2(c40, c41, c50, c51, ep, ch0 + 4, clamp, sgn, lut, y + 4 * ldy,
                               ldy);
    }
}

/* Whole six-row tiles of a layer whose rows all take the high-half form
 * (qnnc_q8u_tile2_hi_rows), their epilogue in registers: qnnc_q8u_tile2_st_vnni's AVX2 form,
 * one panel a tile, with the epilogue's table looked up in registers too (qnnc_lut32_avx2)
 * where the layer has one. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile_st_avx2(int K4, const int8_t *QNNC_RESTRICT A,
                                              const uint8_t *QNNC_RESTRICT B,
                                              ptrdiff_t pstride, const qnnc_q8_epilogue *ep,
                                              int ch0, uint8_t *y, ptrdiff_t ldy, int panels) {
    qnnc_lut_avx2 table;
    if (ep->lut) qnnc_lut_avx2_of(&table, ep->lut);
    const qnnc_lut_avx2 *lut = ep->lut ? &table : NULL;
#define QNNC_Q8U_ST_AVX2(cl, sg) \
    qnnc_q8u_tile_st_body_avx2(K4, A, B, pstride, ep, ch0, cl, sg, lut, y, ldy, panels)
    QNNC_Q8U_BY_FLAGS(qnnc_q8_clamps(ep), ep->sgn, QNNC_Q8U_ST_AVX2);
#undef QNNC_Q8U_ST_AVX2
}

/* qnnc_q8u_tile_avx2 for a last weight tile of at most 4 (rows4) or 2 (else) rows of its six
 * (the rest are zero padding), as qnnc_q8u_tile2_few_vnni does on AVX-512 VNNI; only the
 * tile's rows are stored. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile_few_avx2(int K4, const int8_t *QNNC_RESTRICT A,
                                               const uint8_t *QNNC_RESTRICT B, int rows4,
                                               int32_t *QNNC_RESTRICT C) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00;
    __m256i c21 = c00, c30 = c00, c31 = c00;
    if (rows4) {
        for (int kq = 0; kq < K4; ++kq) {
            QNNC_Q8U_LOADS;
            QNNC_Q8U_ROW(c00, c01, 0);
            QNNC_Q8U_ROW(c10, c11, 1);
            QNNC_Q8U_ROW(c20, c21, 2);
            QNNC_Q8U_ROW(c30, c31, 3);
        }
    } else {
        for (int kq = 0; kq < K4; ++kq) {
            QNNC_Q8U_LOADS;
            QNNC_Q8U_ROW(c00, c01, 0);
            QNNC_Q8U_ROW(c10, c11, 1);
        }
    }
#undef QNNC_Q8U_AVX2_TILE
#undef QNNC_Q8U_ROW
#undef QNNC_Q8U_LOADS
    QNNC_Q8U_ST(0, c00), QNNC_Q8U_ST(1, c01), QNNC_Q8U_ST(2, c10), QNNC_Q8U_ST(3, c11);
    if (rows4) QNNC_Q8U_ST(4, c20), QNNC_Q8U_ST(5, c21), QNNC_Q8U_ST(6, c30), QNNC_Q8U_ST(7, c31);
#undef QNNC_Q8U_ST
}

/* The first 8 columns of a panel (a chunk's last 2-8, e.g. a 14x14 map's 196 = 12 x 16 + 4),
 * where a 16-column tile would spend a whole panel's products on them: qnnc_q8u_tile_avx2's
 * k loop on the panel's first half only. Row r's columns 0-7 at C + 16r, 8-15 zero. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile8_avx2(int K4, const int8_t *QNNC_RESTRICT A,
                                            const uint8_t *QNNC_RESTRICT B,
                                            int32_t *QNNC_RESTRICT C) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
#define QNNC_Q8U_ROW8(c, r)                                                               \
    c = _mm256_add_epi32(                                                                 \
        c, _mm256_madd_epi16(_mm256_maddubs_epi16(b0, qnnc_q8u_quad(a + 4 * (r))), ones))
    for (int kq = 0; kq < K4; ++kq) {
        const int8_t *a = A + kq * 4 * QNNC_Q8_MR;
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(B + kq * 4 * QNNC_Q8_NR));
        QNNC_Q8U_ROW8(c0, 0);
        QNNC_Q8U_ROW8(c1, 1);
        QNNC_Q8U_ROW8(c2, 2);
        QNNC_Q8U_ROW8(c3, 3);
        QNNC_Q8U_ROW8(c4, 4);
        QNNC_Q8U_ROW8(c5, 5);
    }
#undef QNNC_Q8U_ROW8
    const __m256i acc[QNNC_Q8_MR] = {c0, c1, c2, c3, c4, c5};
    for (int i = 0; i < QNNC_Q8_MR; ++i) {
        _mm256_storeu_si256((__m256i *)(C + QNNC_Q8_NR * i), acc[i]);
        _mm256_storeu_si256((__m256i *)(C + QNNC_Q8_NR * i + 8), _mm256_setzero_si256());
    }
}

/* A packed panel's first column's quads moved to the panel's start, dense (quad kq at
 * 4kq), for the one-column tiles (qnnc_q8u_tile1_avx2, qnnc_q8u_tile1_vnni): the emitter
 * does this once per chunk whose last panel holds one column, after packing it (in place:
 * quad kq's bytes go to or before where they were). */
static inline void qnnc_q8u_dense_col1(uint8_t *panel, int K4) {
    for (int kq = 1; kq < K4; ++kq) memcpy(panel + 4 * kq, panel + 4 * QNNC_Q8_NR * kq, 4);
}

/* The one column of a chunk's last panel when that panel holds one column (a 7x7 feature
 * map's 49 = 3 x 16 + 1), its quads dense (qnnc_q8u_dense_col1), where a 16-column tile
 * would spend a whole panel's products on it: per k quad, the six rows' weight quads (24
 * bytes; lanes 6 and 7 masked off) against the column's quad broadcast, vpmaddubsw then
 * vpmaddwd by ones, so lane r is row r's sum. The byte pairs are the tile's (bytes 0-1 and
 * 2-3 of a row's quad), so weights within the pair rule stay exact. Four chains of k quads;
 * row r's value lands at C + 16r, the rest of its row zero. */
/* Lane r of s (r < 6), row r's value of a one-column tile, at C + 16r; the rest of the row
 * zero. */
static inline void qnnc_q8u_col1_store(__m256i s, int32_t *C) {
    int32_t r[8];
    _mm256_storeu_si256((__m256i *)r, s);
    for (int i = 0; i < QNNC_Q8_MR; ++i) {
        _mm256_storeu_si256((__m256i *)(C + QNNC_Q8_NR * i), _mm256_setr_epi32(r[i], 0, 0, 0,
                                                                                0, 0, 0, 0));
        _mm256_storeu_si256((__m256i *)(C + QNNC_Q8_NR * i + 8), _mm256_setzero_si256());
    }
}

/* A one-column tile's k loop (K4, C in scope): STEP(c, q) adds k quad q's six row sums into
 * the lanes of c, over four chains of k quads, whose sum is then stored by
 * qnnc_q8u_col1_store. */
#define QNNC_Q8U_COL1_TILE(STEP)                                                          \
    do {                                                                                  \
        __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0;                   \
        int kq = 0;                                                                       \
        for (; kq + 4 <= K4; kq += 4) {                                                   \
            STEP(c0, kq);                                                                 \
            STEP(c1, kq + 1);                                                             \
            STEP(c2, kq + 2);                                                             \
            STEP(c3, kq + 3);                                                             \
        }                                                                                 \
        for (; kq < K4; ++kq) STEP(c0, kq);                                               \
        qnnc_q8u_col1_store(                                                              \
            _mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)), C);     \
    } while (0)

QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile1_avx2(int K4, const int8_t *QNNC_RESTRICT A,
                                            const uint8_t *QNNC_RESTRICT B,
                                            int32_t *QNNC_RESTRICT C) {
    const __m256i ones = _mm256_set1_epi16(1), six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1,
                                                                         0, 0);
#define QNNC_Q8U_COL1A(c, q)                                                              \
    c = _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(                       \
            qnnc_q8u_quad((const int8_t *)B + (q) * 4),                                    \
            _mm256_maskload_epi32((const int *)(A + (q) * 4 * QNNC_Q8_MR), six)), ones))
    QNNC_Q8U_COL1_TILE(QNNC_Q8U_COL1A);
#undef QNNC_Q8U_COL1A
}
#endif

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
/* vpdpbusd: the four u8 x s8 products of a column's quad added straight into its int32 lane
 * (no int16 step, so no saturation: exact for any int8 weights), 16 columns per zmm. Rows
 * land as the AVX2 tile stores them (row r's 16 columns at C + 16r). */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile_vnni(int K4, const int8_t *QNNC_RESTRICT A,
                                           const uint8_t *QNNC_RESTRICT B,
                                           int32_t *QNNC_RESTRICT C) {
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    for (int kq = 0; kq < K4; ++kq) {
        const int8_t *a = A + kq * 4 * QNNC_Q8_MR;
        _mm_prefetch((const char *)(a + QNNC_Q8U_AHEAD), _MM_HINT_T0);
        const __m512i b = _mm512_loadu_si512((const void *)(B + kq * 4 * QNNC_Q8_NR));
        /* each row's quad broadcast straight from memory (a copy of the six quads to the
         * stack first made GCC store and reload them every step) */
        c0 = _mm512_dpbusd_epi32(c0, b, qnnc_q8_bcast512(a));
        c1 = _mm512_dpbusd_epi32(c1, b, qnnc_q8_bcast512(a + 4));
        c2 = _mm512_dpbusd_epi32(c2, b, qnnc_q8_bcast512(a + 8));
        c3 = _mm512_dpbusd_epi32(c3, b, qnnc_q8_bcast512(a + 12));
        c4 = _mm512_dpbusd_epi32(c4, b, qnnc_q8_bcast512(a + 16));
        c5 = _mm512_dpbusd_epi32(c5, b, qnnc_q8_bcast512(a + 20));
    }
    _mm512_storeu_si512((void *)C, c0);
    _mm512_storeu_si512((void *)(C + 16), c1);
    _mm512_storeu_si512((void *)(C + 32), c2);
    _mm512_storeu_si512((void *)(C + 48), c3);
    _mm512_storeu_si512((void *)(C + 64), c4);
    _mm512_storeu_si512((void *)(C + 80), c5);
}

/* The first 8 columns of a panel in ymm registers, for a chunk's last few columns: on Zen 4
 * a ymm vpdpbusd issues at nearly twice the rate of a zmm one, so 8 columns cost about half
 * of 16 (a 14x14 feature map's 196 columns: twelve 16-column panels and one of these). Row
 * r's 8 values land at C + 16r, its other 8 are zero. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile8_vnni(int K4, const int8_t *QNNC_RESTRICT A,
                                            const uint8_t *QNNC_RESTRICT B,
                                            int32_t *QNNC_RESTRICT C) {
    __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    for (int kq = 0; kq < K4; ++kq) {
        const int8_t *a = A + kq * 4 * QNNC_Q8_MR;
        const __m256i b = _mm256_loadu_si256((const __m256i *)(B + kq * 4 * QNNC_Q8_NR));
        c0 = _mm256_dpbusd_epi32(c0, b, qnnc_q8_bcast256(a));
        c1 = _mm256_dpbusd_epi32(c1, b, qnnc_q8_bcast256(a + 4));
        c2 = _mm256_dpbusd_epi32(c2, b, qnnc_q8_bcast256(a + 8));
        c3 = _mm256_dpbusd_epi32(c3, b, qnnc_q8_bcast256(a + 12));
        c4 = _mm256_dpbusd_epi32(c4, b, qnnc_q8_bcast256(a + 16));
        c5 = _mm256_dpbusd_epi32(c5, b, qnnc_q8_bcast256(a + 20));
    }
    const __m256i acc[QNNC_Q8_MR] = {c0, c1, c2, c3, c4, c5};
    for (int i = 0; i < QNNC_Q8_MR; ++i) {
        _mm256_storeu_si256((__m256i *)(C + 16 * i), acc[i]);
        _mm256_storeu_si256((__m256i *)(C + 16 * i + 8), _mm256_setzero_si256());
    }
}

/* The one column of a chunk's last panel when that panel holds one column (a 7x7 feature
 * map's 49 = 3 x 16 + 1), its quads dense (qnnc_q8u_dense_col1: 4 bytes a k quad instead
 * of 64, so the loop reads a sixteenth of the cache lines): per k quad, the six rows' weight
 * quads (24 bytes) against the column's quad broadcast, in one ymm vpdpbusd whose lane r is
 * row r's sum (lanes 6 and 7 are masked off). Four chains of k quads. Row r's value lands at
 * C + 16r, the rest of its row zero. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile1_vnni(int K4, const int8_t *QNNC_RESTRICT A,
                                            const uint8_t *QNNC_RESTRICT B,
                                            int32_t *QNNC_RESTRICT C) {
#define QNNC_Q8U_COL1(c, q)                                                              \
    c = _mm256_dpbusd_epi32(c, qnnc_q8_bcast256(B + (q) * 4), \
                            _mm256_maskz_loadu_epi32(0x3F, A + (q) * 4 * QNNC_Q8_MR))
    QNNC_Q8U_COL1_TILE(QNNC_Q8U_COL1);
#undef QNNC_Q8U_COL1
}

/* A panel's 16 columns and the one column after them (a 7x7 feature map's 49 = 32 +
 * 16 + 1) in one k loop: the panel at B as qnnc_q8u_tile_vnni takes it, and the column's
 * quads dense at col (qnnc_q8u_dense_col1) as qnnc_q8u_tile1_vnni takes them, its six rows'
 * sums in the lanes of two ymm chains (even and odd k quads). The column in a loop of its
 * own cost ResNet-50's 7x7 layers 8-21% of their time, most of it the second pass over the
 * weights and its call. Row r's 16 values land at C + 16r, the column's at C[96 + r]. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile17_vnni(int K4, const int8_t *QNNC_RESTRICT A,
                                             const uint8_t *QNNC_RESTRICT B,
                                             const uint8_t *QNNC_RESTRICT col,
                                             int32_t *QNNC_RESTRICT C) {
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    __m256i e0 = _mm256_setzero_si256(), e1 = e0;
#define QNNC_Q8U_T17(e, q)                                                                 \
    do {                                                                                 \
        const int8_t *a = A + (q) * 4 * QNNC_Q8_MR;                                      \
        _mm_prefetch((const char *)(a + QNNC_Q8U_AHEAD), _MM_HINT_T0);                  \
        const __m512i b = _mm512_loadu_si512((const void *)(B + (q) * 4 * QNNC_Q8_NR));  \
        c0 = _mm512_dpbusd_epi32(c0, b, qnnc_q8_bcast512(a));                           \
        c1 = _mm512_dpbusd_epi32(c1, b, qnnc_q8_bcast512(a + 4));                       \
        c2 = _mm512_dpbusd_epi32(c2, b, qnnc_q8_bcast512(a + 8));                       \
        c3 = _mm512_dpbusd_epi32(c3, b, qnnc_q8_bcast512(a + 12));                      \
        c4 = _mm512_dpbusd_epi32(c4, b, qnnc_q8_bcast512(a + 16));                      \
        c5 = _mm512_dpbusd_epi32(c5, b, qnnc_q8_bcast512(a + 20));                      \
        e = _mm256_dpbusd_epi32(e, qnnc_q8_bcast256(col + (q) * 4), \
                                _mm256_maskz_loadu_epi32(0x3F, a));                     \
    } while (0)
    int kq = 0;
    for (; kq + 2 <= K4; kq += 2) {
        QNNC_Q8U_T17(e0, kq);
        QNNC_Q8U_T17(e1, kq + 1);
    }
    if (kq < K4) QNNC_Q8U_T17(e0, kq);
#undef QNNC_Q8U_T17
    const __m512i acc[QNNC_Q8_MR] = {c0, c1, c2, c3, c4, c5};
    for (int i = 0; i < QNNC_Q8_MR; ++i) _mm512_storeu_si512((void *)(C + 16 * i), acc[i]);
    _mm256_storeu_si256((__m256i *)(C + 16 * QNNC_Q8_MR), _mm256_add_epi32(e0, e1));
}

/* A panel's 16 columns and the first 8 of the next (a chunk's last 17-24 columns, as 14x14
 * maps leave them) in one k loop: each row's broadcast quad serves both, the 8 in ymm
 * registers. Row r's 16 values land at C + 16r, the next 8 at C + 96 + 16r. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile24_vnni(int K4, const int8_t *QNNC_RESTRICT A,
                                             const uint8_t *QNNC_RESTRICT B,
                                             ptrdiff_t pstride, int32_t *QNNC_RESTRICT C) {
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    __m256i d0 = _mm256_setzero_si256(), d1 = d0, d2 = d0, d3 = d0, d4 = d0, d5 = d0;
    for (int kq = 0; kq < K4; ++kq) {
        const int8_t *a = A + kq * 4 * QNNC_Q8_MR;
        _mm_prefetch((const char *)(a + QNNC_Q8U_AHEAD), _MM_HINT_T0);
        const __m512i b = _mm512_loadu_si512((const void *)(B + kq * 4 * QNNC_Q8_NR));
        const __m256i e =
            _mm256_loadu_si256((const __m256i *)(B + pstride + kq * 4 * QNNC_Q8_NR));
#define QNNC_Q8U_T24(c, d, o)                                        \
    do {                                                             \
        const __m512i w_ = qnnc_q8_bcast512(a + (o));                \
        c = _mm512_dpbusd_epi32(c, b, w_);                           \
        d = _mm256_dpbusd_epi32(d, e, _mm512_castsi512_si256(w_));   \
    } while (0)
        QNNC_Q8U_T24(c0, d0, 0);
        QNNC_Q8U_T24(c1, d1, 4);
        QNNC_Q8U_T24(c2, d2, 8);
        QNNC_Q8U_T24(c3, d3, 12);
        QNNC_Q8U_T24(c4, d4, 16);
        QNNC_Q8U_T24(c5, d5, 20);
#undef QNNC_Q8U_T24
    }
    const __m512i acc[QNNC_Q8_MR] = {c0, c1, c2, c3, c4, c5};
    const __m256i tail[QNNC_Q8_MR] = {d0, d1, d2, d3, d4, d5};
    for (int i = 0; i < QNNC_Q8_MR; ++i) {
        _mm512_storeu_si512((void *)(C + 16 * i), acc[i]);
        _mm512_storeu_si512((void *)(C + 16 * (QNNC_Q8_MR + i)),
                            _mm512_zextsi256_si512(tail[i]));
    }
}

/* acc += the u8 x s8 quad products of b and w (vpdpbusd), with acc tied to its register:
 * GCC 12 copies every accumulator of a 12-register k loop through another register (and
 * spills one) when the intrinsic is used, 24 moves per 12 multiplies. */
#if defined(__GNUC__) && !defined(__clang__)
#define QNNC_DPBUSD(acc, b, w) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(b), "v"(w))
#else
#define QNNC_DPBUSD(acc, b, w) ((acc) = _mm512_dpbusd_epi32(acc, b, w))
#endif

/* One k quad of the two-panel tile: the six row quads at a_ broadcast in turn, each times
 * both panels' 16 columns (b_: panel B, e_: panel B + pstride) into c0-c5 and d0-d5. */
#define QNNC_Q8U_STEP12(a_, b_, e_)                                                      \
    do {                                                                                  \
        __m512i w_ = qnnc_q8_bcast512(a_);                                                \
        QNNC_DPBUSD(c0, b_, w_);                                                      \
        QNNC_DPBUSD(d0, e_, w_);                                                      \
        w_ = qnnc_q8_bcast512((a_) + 4);                                                  \
        QNNC_DPBUSD(c1, b_, w_);                                                      \
        QNNC_DPBUSD(d1, e_, w_);                                                      \
        w_ = qnnc_q8_bcast512((a_) + 8);                                                  \
        QNNC_DPBUSD(c2, b_, w_);                                                      \
        QNNC_DPBUSD(d2, e_, w_);                                                      \
        w_ = qnnc_q8_bcast512((a_) + 12);                                                 \
        QNNC_DPBUSD(c3, b_, w_);                                                      \
        QNNC_DPBUSD(d3, e_, w_);                                                      \
        w_ = qnnc_q8_bcast512((a_) + 16);                                                 \
        QNNC_DPBUSD(c4, b_, w_);                                                      \
        QNNC_DPBUSD(d4, e_, w_);                                                      \
        w_ = qnnc_q8_bcast512((a_) + 20);                                                 \
        QNNC_DPBUSD(c5, b_, w_);                                                      \
        QNNC_DPBUSD(d5, e_, w_);                                                      \
    } while (0)

/* The two-panel tile's 12 accumulators, declared here and zeroed. */
#define QNNC_Q8U_ACC12                                                                   \
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;     \
    __m512i d0 = c0, d1 = c0, d2 = c0, d3 = c0, d4 = c0, d5 = c0

/* The two-panel k loop: 12 accumulators c0-c5 (panel B) and d0-d5 (panel B + pstride),
 * declared here, for the six rows of the weight tile at A over K4 k quads. */
#define QNNC_Q8U_TWO_PANELS(K4, A, B, pstride)                                           \
    QNNC_Q8U_ACC12;                                                                       \
    for (int kq = 0; kq < (K4); ++kq) {                                                   \
        const int8_t *a_ = (A) + kq * 4 * QNNC_Q8_MR;                                     \
        _mm_prefetch((const char *)(a_ + QNNC_Q8U_AHEAD), _MM_HINT_T0);                  \
        const __m512i b_ = _mm512_loadu_si512((const void *)((B) + kq * 4 * QNNC_Q8_NR)); \
        const __m512i e_ =                                                                \
            _mm512_loadu_si512((const void *)((B) + (pstride) + kq * 4 * QNNC_Q8_NR));    \
        QNNC_Q8U_STEP12(a_, b_, e_);                                                      \
    }

/* Two adjacent panels (B and B + pstride) against one weight tile: 12 accumulators, and each
 * row's broadcast quad serves 32 columns instead of 16 (one broadcast per vpdpbusd was the
 * one-panel tile's limit; ResNet-50 on one Zen 4 core went from 31.6 to 28.7 ms with this).
 * C holds the first panel's 6 x 16 values, then the second's. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile2_vnni(int K4, const int8_t *QNNC_RESTRICT A,
                                            const uint8_t *QNNC_RESTRICT B, ptrdiff_t pstride,
                                            int32_t *QNNC_RESTRICT C) {
    QNNC_Q8U_TWO_PANELS(K4, A, B, pstride)
    const __m512i acc[2 * QNNC_Q8_MR] = {c0, c1, c2, c3, c4, c5, d0, d1, d2, d3, d4, d5};
    for (int i = 0; i < 2 * QNNC_Q8_MR; ++i) _mm512_storeu_si512((void *)(C + 16 * i), acc[i]);
}

/* A register epilogue's constants for the six rows of channels ch0 .. ch0 + 5, read once per
 * call: their multipliers and shifts, their rounding terms with the zero point in them
 * (qnnc_q8u_rbz), and the fused activation's bounds. */
typedef struct {
    const int32_t *m0;
    const int8_t *nsh;
    int64_t rbz[QNNC_Q8_MR];
    __m512i lo, hi;
} qnnc_q8u_rq;

static inline __attribute__((always_inline)) void qnnc_q8u_rq_of(
    qnnc_q8u_rq *q, const qnnc_q8_epilogue *ep, int ch0) {
    q->m0 = ep->m0 + ch0;
    q->nsh = ep->nsh + ch0;
    for (int r = 0; r < QNNC_Q8_MR; ++r) q->rbz[r] = qnnc_q8u_rbz(ep, ch0 + r);
    q->lo = _mm512_set1_epi32(ep->lo);
    q->hi = _mm512_set1_epi32(ep->hi);
}

/* One row's 16 accumulators in the high-half form with the zero point in rbz, clamped to
 * [lo, hi] where clamp (a fused activation's bounds). */
static inline __attribute__((always_inline)) __m512i qnnc_q8u_req16(
    __m512i v, __m512i m, __m512i rbz, __m128i sh, __m512i lo, __m512i hi, const int clamp) {
    const __m512i r = qnnc_q8_req16_hi(v, m, rbz, sh);
    return clamp ? _mm512_min_epi32(_mm512_max_epi32(r, lo), hi) : r;
}

/* Rows r and r + 1 of a two-panel tile (c0, d0: row r's columns 0-15 and 16-31; c1, d1: row
 * r + 1's) requantised as 64 bytes, row r's 32 in the low half. Two packs narrow the four
 * registers with the output type's saturation (the clamp to its range), and one dword
 * permute puts back the column order the packs' 128-bit lanes interleave: 4 instructions for
 * 64 outputs, where converting each register (vpmovusdb after a max with 0) took 12. */
static inline __attribute__((always_inline)) __m512i qnnc_q8u_rows2_bytes(
    __m512i c0, __m512i d0, __m512i c1, __m512i d1, const qnnc_q8u_rq *q, int r,
    const int clamp, const int sgn) {
    const __m512i ma = _mm512_set1_epi32(q->m0[r]), mb = _mm512_set1_epi32(q->m0[r + 1]);
    const __m512i ra = _mm512_set1_epi64(q->rbz[r]), rb = _mm512_set1_epi64(q->rbz[r + 1]);
    const __m128i sa = _mm_cvtsi32_si128(q->nsh[r] - 32);
    const __m128i sb = _mm_cvtsi32_si128(q->nsh[r + 1] - 32);
    const __m512i wa = _mm512_packs_epi32(qnnc_q8u_req16(c0, ma, ra, sa, q->lo, q->hi, clamp),
                                          qnnc_q8u_req16(d0, ma, ra, sa, q->lo, q->hi, clamp));
    const __m512i wb = _mm512_packs_epi32(qnnc_q8u_req16(c1, mb, rb, sb, q->lo, q->hi, clamp),
                                          qnnc_q8u_req16(d1, mb, rb, sb, q->lo, q->hi, clamp));
    /* lane l of the packed bytes: row r's columns 4l..4l+3 and 16+4l..19+4l, then row
     * r + 1's: a 4 x 4 transpose of dwords */
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_epi32(order, sgn ? _mm512_packs_epi16(wa, wb)
                                               : _mm512_packus_epi16(wa, wb));
}

/* The six rows of accumulators c0-c5 / d0-d5 requantised two by two: STORE2(bytes, r) with
 * each pair's 64 bytes passed through MAP (the identity, or an epilogue table's lookup). */
#define QNNC_Q8U_NO_MAP(x) (x)
#define QNNC_Q8U_ROW_PAIRS(q, clamp, sgn, MAP, STORE2)                                   \
    do {                                                                                \
        STORE2(MAP(qnnc_q8u_rows2_bytes(c0, d0, c1, d1, q, 0, clamp, sgn)), 0);          \
        STORE2(MAP(qnnc_q8u_rows2_bytes(c2, d2, c3, d3, q, 2, clamp, sgn)), 2);          \
        STORE2(MAP(qnnc_q8u_rows2_bytes(c4, d4, c5, d5, q, 4, clamp, sgn)), 4);          \
    } while (0)

/* A row pair's 64 bytes stored whole: row r's 32 at y + r * ldy, row r + 1's after ldy. */
static inline __attribute__((always_inline)) void qnnc_q8u_store2(uint8_t *y, ptrdiff_t ldy,
                                                                  __m512i bytes) {
    _mm256_storeu_si256((__m256i *)y, _mm512_castsi512_si256(bytes));
    _mm256_storeu_si256((__m256i *)(y + ldy), _mm512_extracti64x4_epi64(bytes, 1));
}

/* The two-panel k loop over `pairs` panel pairs from B on, each pair's 12 accumulators
 * requantised where they are and each row stored as 32 bytes at y + r * ldy (clamp and sgn
 * are constants where it is inlined; per-channel epilogues). */
static inline __attribute__((always_inline)) void qnnc_q8u_tile2_st_body(
    int K4, const int8_t *QNNC_RESTRICT A, const uint8_t *QNNC_RESTRICT B, ptrdiff_t pstride,
    const qnnc_q8_epilogue *ep, int ch0, const int clamp, const int sgn, uint8_t *y,
    ptrdiff_t ldy, int pairs) {
    qnnc_q8u_rq q;
    qnnc_q8u_rq_of(&q, ep, ch0);
    for (int pair = 0; pair < pairs; ++pair, B += 2 * pstride, y += 2 * QNNC_Q8_NR) {
        QNNC_Q8U_TWO_PANELS(K4, A, B, pstride)
#define QNNC_Q8U_ST2(bytes, r) qnnc_q8u_store2(y + (r) * ldy, ldy, bytes)
        QNNC_Q8U_ROW_PAIRS(&q, clamp, sgn, QNNC_Q8U_NO_MAP, QNNC_Q8U_ST2);
#undef QNNC_Q8U_ST2
    }
}

/* Whole tiles (six rows, 32 columns: `pairs` of them, the panel pairs from B on, stored from
 * y on) with their epilogue in registers: no int32 tile in memory and one call per row of
 * tiles, for layers without a table whose six rows all take the high-half form
 * (qnnc_q8u_tile2_hi_ok). ResNet-50's 1x1 layers with K = 64 spend about a third of their
 * time in the epilogue and the calls. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile2_st_vnni(int K4, const int8_t *QNNC_RESTRICT A,
                                               const uint8_t *QNNC_RESTRICT B,
                                               ptrdiff_t pstride, const qnnc_q8_epilogue *ep,
                                               int ch0, uint8_t *y, ptrdiff_t ldy, int pairs) {
#define QNNC_Q8U_ST(cl, sg) \
    qnnc_q8u_tile2_st_body(K4, A, B, pstride, ep, ch0, cl, sg, y, ldy, pairs)
    QNNC_Q8U_BY_FLAGS(qnnc_q8_clamps(ep), ep->sgn, QNNC_Q8U_ST);
#undef QNNC_Q8U_ST
}

#if defined(QNNC_VBMI)
/* qnnc_q8u_tile2_st_vnni for a layer with an epilogue table (HardSwish, SiLU, ... fused into
 * it), where the CPU has VBMI: each pair of rows' 32 + 32 requantised bytes are looked up in
 * one 64-byte permute (qnnc_lut64_vbmi) and stored, with no int32 tile in memory. */
static QNNC_VBMI_FN inline __attribute__((always_inline)) void qnnc_q8u_tile2_lut_body(
    int K4, const int8_t *QNNC_RESTRICT A, const uint8_t *QNNC_RESTRICT B, ptrdiff_t pstride,
    const qnnc_q8_epilogue *ep, int ch0, const int clamp, const int sgn, uint8_t *y,
    ptrdiff_t ldy, int pairs) {
    qnnc_q8u_rq q;
    qnnc_q8u_rq_of(&q, ep, ch0);
    const __m512i t[4] = {_mm512_loadu_si512(ep->lut), _mm512_loadu_si512(ep->lut + 64),
                          _mm512_loadu_si512(ep->lut + 128), _mm512_loadu_si512(ep->lut + 192)};
    for (int pair = 0; pair < pairs; ++pair, B += 2 * pstride, y += 2 * QNNC_Q8_NR) {
        QNNC_Q8U_TWO_PANELS(K4, A, B, pstride)
#define QNNC_Q8U_LUT(x) qnnc_lut64_vbmi(x, t)
#define QNNC_Q8U_ST2(bytes, r) qnnc_q8u_store2(y + (r) * ldy, ldy, bytes)
        QNNC_Q8U_ROW_PAIRS(&q, clamp, sgn, QNNC_Q8U_LUT, QNNC_Q8U_ST2);
#undef QNNC_Q8U_ST2
#undef QNNC_Q8U_LUT
    }
}

static QNNC_VBMI_FN __attribute__((noinline)) void qnnc_q8u_tile2_lut_vbmi(
    int K4, const int8_t *QNNC_RESTRICT A, const uint8_t *QNNC_RESTRICT B, ptrdiff_t pstride,
    const qnnc_q8_epilogue *ep, int ch0, uint8_t *y, ptrdiff_t ldy, int pairs) {
#define QNNC_Q8U_LUT(cl, sg) \
    qnnc_q8u_tile2_lut_body(K4, A, B, pstride, ep, ch0, cl, sg, y, ldy, pairs)
    QNNC_Q8U_BY_FLAGS(qnnc_q8_clamps(ep), ep->sgn, QNNC_Q8U_LUT);
#undef QNNC_Q8U_LUT
}
#endif

/* k quad kq's row quads and its two panels' 16 columns, then one row times both */
#define QNNC_Q8U_LOADS2                                                          \
    const int8_t *a = A + kq * 4 * QNNC_Q8_MR;                                   \
    const __m512i b = _mm512_loadu_si512((const void *)(B + kq * 4 * QNNC_Q8_NR)); \
    const __m512i e = _mm512_loadu_si512((const void *)(B2 + kq * 4 * QNNC_Q8_NR))
#define QNNC_Q8U_ROW2(c, d, o)                                                   \
    do {                                                                         \
        const __m512i w_ = qnnc_q8_bcast512(a + (o));                            \
        QNNC_DPBUSD(c, b, w_);                                                   \
        QNNC_DPBUSD(d, e, w_);                                                   \
    } while (0)
/* qnnc_q8u_tile2_vnni for a last weight tile of at most 4 (rows4) or 2 (else) rows of its
 * six (the rest are zero padding): M = 32 or 64 output channels leave 2 or 4 rows there,
 * which the six-row tile computes at the cost of six. Only the tile's rows are stored. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_tile2_few_vnni(int K4, const int8_t *QNNC_RESTRICT A,
                                                const uint8_t *QNNC_RESTRICT B,
                                                ptrdiff_t pstride, int rows4,
                                                int32_t *QNNC_RESTRICT C) {
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
    __m512i d0 = c0, d1 = c0, d2 = c0, d3 = c0;
    const uint8_t *B2 = B + pstride;
    if (rows4) {
        for (int kq = 0; kq < K4; ++kq) {
            QNNC_Q8U_LOADS2;
            QNNC_Q8U_ROW2(c0, d0, 0);
            QNNC_Q8U_ROW2(c1, d1, 4);
            QNNC_Q8U_ROW2(c2, d2, 8);
            QNNC_Q8U_ROW2(c3, d3, 12);
        }
    } else {
        for (int kq = 0; kq < K4; ++kq) {
            QNNC_Q8U_LOADS2;
            QNNC_Q8U_ROW2(c0, d0, 0);
            QNNC_Q8U_ROW2(c1, d1, 4);
        }
    }
    /* stored one by one: from an array of them GCC made a stack copy and a rep movsq */
    _mm512_storeu_si512((void *)C, c0);
    _mm512_storeu_si512((void *)(C + 16), c1);
    _mm512_storeu_si512((void *)(C + 16 * QNNC_Q8_MR), d0);
    _mm512_storeu_si512((void *)(C + 16 * (QNNC_Q8_MR + 1)), d1);
    if (rows4) {
        _mm512_storeu_si512((void *)(C + 32), c2);
        _mm512_storeu_si512((void *)(C + 48), c3);
        _mm512_storeu_si512((void *)(C + 16 * (QNNC_Q8_MR + 2)), d2);
        _mm512_storeu_si512((void *)(C + 16 * (QNNC_Q8_MR + 3)), d3);
    }
}
#undef QNNC_Q8U_ROW2
#undef QNNC_Q8U_LOADS2
#define qnnc_q8u_tile qnnc_q8u_tile_vnni
/* the u8 tile is exact for any int8 weights (the emitter may then skip the pair rule) */
#define QNNC_Q8U_ANY_WEIGHTS 1
#elif defined(__AVX2__)
#define qnnc_q8u_tile qnnc_q8u_tile_avx2
#define QNNC_Q8U_ANY_WEIGHTS 0
#else
/* the one-column panel keeps its packed layout: only the AVX2 and VNNI tiles read it dense */
static inline void qnnc_q8u_dense_col1(uint8_t *panel, int K4) { (void)panel, (void)K4; }
#define qnnc_q8u_tile qnnc_q8u_tile_c
#define QNNC_Q8U_ANY_WEIGHTS 1
#endif

/* The tile of panels j and j + 1 of a chunk (B and B + pstride) where two are `left` and the
 * build has the two-panel vpdpbusd tile, else of panel j alone: C holds each panel's 6 x 16
 * values in turn (room for two). Returns the panels done. For layers that store each tile
 * row by row themselves (a fully connected layer's transposed output): the one-panel VNNI
 * tile has six accumulators, too few for vpdpbusd's latency at two a cycle. */
static inline int qnnc_q8u_tile_upto2(int K4, const int8_t *QNNC_RESTRICT A,
                                      const uint8_t *QNNC_RESTRICT B, ptrdiff_t pstride,
                                      int left, int32_t *QNNC_RESTRICT C) {
#if defined(__AVX512F__) && defined(__AVX512VNNI__)
    if (left >= 2) {
        qnnc_q8u_tile2_vnni(K4, A, B, pstride, C);
        return 2;
    }
#else
    (void)pstride, (void)left;
#endif
    qnnc_q8u_tile(K4, A, B, C);
    return 1;
}

/* -- matrix x vector on u8 quads ---------------------------------------------------------- */

/* C[16] = A . x for a fully connected layer with one input row, where the u8 tile takes any
 * int8 weights: A holds 16 weight rows as [K4][16][4] int8 (qnnc_q8u_tile's A layout with
 * 16 rows), x the row's K4 quads of bytes. On AVX-512 VNNI each k quad's 64 weight bytes take
 * one vpdpbusd with x's quad broadcast, into four accumulators (its latency); the weights
 * are half the bytes of the int16 pairs qnnc_q8_gemv reads. Only AVX-512 VNNI builds have
 * it: the emitter uses it only where the u8 tile is vpdpbusd (u8_any_weights). */
#define QNNC_Q8U_GEMV_MR 16
#if defined(__AVX512F__) && defined(__AVX512VNNI__)
QNNC_Q8_KERNEL void qnnc_q8u_gemv(int K4, const int8_t *QNNC_RESTRICT A,
                                  const uint8_t *QNNC_RESTRICT x, int32_t *QNNC_RESTRICT C) {
    int kq = 0;
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    for (; kq + 4 <= K4; kq += 4) {
        const int8_t *a = A + (ptrdiff_t)kq * 64;
        int32_t xq[4];
        memcpy(xq, x + 4 * (ptrdiff_t)kq, sizeof xq);
        _mm_prefetch((const char *)(a + QNNC_Q8U_AHEAD), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + QNNC_Q8U_AHEAD + 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + QNNC_Q8U_AHEAD + 128), _MM_HINT_T0);
        _mm_prefetch((const char *)(a + QNNC_Q8U_AHEAD + 192), _MM_HINT_T0);
        QNNC_DPBUSD(s0, _mm512_set1_epi32(xq[0]), _mm512_loadu_si512(a));
        QNNC_DPBUSD(s1, _mm512_set1_epi32(xq[1]), _mm512_loadu_si512(a + 64));
        QNNC_DPBUSD(s2, _mm512_set1_epi32(xq[2]), _mm512_loadu_si512(a + 128));
        QNNC_DPBUSD(s3, _mm512_set1_epi32(xq[3]), _mm512_loadu_si512(a + 192));
    }
    for (; kq < K4; ++kq) {
        int32_t xq;
        memcpy(&xq, x + 4 * (ptrdiff_t)kq, sizeof xq);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_set1_epi32(xq),
                                 _mm512_loadu_si512(A + (ptrdiff_t)kq * 64));
    }
    _mm512_storeu_si512((void *)C,
                        _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3)));
}
#endif

/* -- tile + epilogue (the qnnc_q8_tile_req of the quad layout) ---------------------------- */

#if defined(__AVX2__)
static inline void qnnc_q8u_tile_req(int K4, const int8_t *QNNC_RESTRICT A,
                                     const uint8_t *QNNC_RESTRICT B, const qnnc_q8_epilogue *ep,
                                     int ch0, int rows, int cols, void *QNNC_RESTRICT y,
                                     ptrdiff_t ldy) {
    __m256i acc[2 * QNNC_Q8_MR];
#if !(defined(__AVX512F__) && defined(__AVX512VNNI__))
    if (rows <= 4)
        qnnc_q8u_tile_few_avx2(K4, A, B, rows > 2, (int32_t *)acc);
    else
#endif
        qnnc_q8u_tile(K4, A, B, (int32_t *)acc);
    qnnc_q8_rows_store((const int32_t *)acc, ep, ch0, rows, cols, (uint8_t *)y, ldy);
}
#else
static inline void qnnc_q8u_tile_req(int K4, const int8_t *QNNC_RESTRICT A,
                                     const uint8_t *QNNC_RESTRICT B, const qnnc_q8_epilogue *ep,
                                     int ch0, int rows, int cols, void *QNNC_RESTRICT y,
                                     ptrdiff_t ldy) {
    int32_t acc[QNNC_Q8_MR * QNNC_Q8_NR];
    qnnc_q8u_tile(K4, A, B, acc);
    qnnc_q8_tile_store_c(acc, ep, ch0, rows, cols, y, ldy);
}
#endif

/* Up to 32 columns: two adjacent panels (B, B + pstride) of one weight tile, stored at y and
 * y + 16; cols <= 16 reads the first panel only (the second may not exist). AVX-512 VNNI
 * runs both panels in one k loop (qnnc_q8u_tile2_vnni; a panel and 1 or up to 8 more
 * columns in qnnc_q8u_tile17_vnni or qnnc_q8u_tile24_vnni), and at most 8 columns alone in
 * ymm (qnnc_q8u_tile8_vnni); elsewhere it is two tiles. */
static inline void qnnc_q8u_tile2_req(int K4, const int8_t *QNNC_RESTRICT A,
                                      const uint8_t *QNNC_RESTRICT B, ptrdiff_t pstride,
                                      const qnnc_q8_epilogue *ep, int ch0, int rows, int cols,
                                      void *QNNC_RESTRICT y, ptrdiff_t ldy) {
#if defined(__AVX512F__) && defined(__AVX512VNNI__)
    __m256i acc[4 * QNNC_Q8_MR];
    if (cols == QNNC_Q8_NR + 1) {  /* a panel and one column: one k loop */
        int32_t *c = (int32_t *)acc, one[QNNC_Q8_MR * QNNC_Q8_NR] = {0};
        qnnc_q8u_tile17_vnni(K4, A, B, B + pstride, c);
        for (int r = 0; r < QNNC_Q8_MR; ++r) one[QNNC_Q8_NR * r] = c[QNNC_Q8_NR * QNNC_Q8_MR + r];
        qnnc_q8_rows_store(c, ep, ch0, rows, QNNC_Q8_NR, (uint8_t *)y, ldy);
        qnnc_q8_rows_store(one, ep, ch0, rows, 1, (uint8_t *)y + QNNC_Q8_NR, ldy);
        return;
    }
    if (cols > QNNC_Q8_NR && cols <= QNNC_Q8_NR + 8) {  /* a panel and up to 8: one k loop */
        qnnc_q8u_tile24_vnni(K4, A, B, pstride, (int32_t *)acc);
        qnnc_q8_rows_store((const int32_t *)acc, ep, ch0, rows, QNNC_Q8_NR, (uint8_t *)y, ldy);
        qnnc_q8_rows_store((const int32_t *)acc + QNNC_Q8_NR * QNNC_Q8_MR, ep, ch0, rows,
                           cols - QNNC_Q8_NR, (uint8_t *)y + QNNC_Q8_NR, ldy);
        return;
    }
    if (cols <= 8) {
        /* up to 8 columns alone: ymm; one column by the six rows' quads in a ymm register */
        if (cols == 1)
            qnnc_q8u_tile1_vnni(K4, A, B, (int32_t *)acc);
        else
            qnnc_q8u_tile8_vnni(K4, A, B, (int32_t *)acc);
        qnnc_q8_rows_store((const int32_t *)acc, ep, ch0, rows, cols, (uint8_t *)y, ldy);
        return;
    }
#elif defined(__AVX2__)
    if (cols <= 8 || (cols > QNNC_Q8_NR && cols <= QNNC_Q8_NR + 8)) {
        /* a last panel of at most 8 columns: one column (its quads dense) or up to 8 */
        const int last = cols > QNNC_Q8_NR ? cols - QNNC_Q8_NR : cols;
        const uint8_t *p = cols > QNNC_Q8_NR ? B + pstride : B;
        int32_t part[QNNC_Q8_MR * QNNC_Q8_NR];
        if (cols > QNNC_Q8_NR) qnnc_q8u_tile_req(K4, A, B, ep, ch0, rows, QNNC_Q8_NR, y, ldy);
        if (last == 1)
            qnnc_q8u_tile1_avx2(K4, A, p, part);
        else
            qnnc_q8u_tile8_avx2(K4, A, p, part);
        qnnc_q8_rows_store(part, ep, ch0, rows, last, (uint8_t *)y + (cols - last), ldy);
        return;
    }
#endif
    if (cols <= QNNC_Q8_NR) {
        qnnc_q8u_tile_req(K4, A, B, ep, ch0, rows, cols, y, ldy);
        return;
    }
#if defined(__AVX512F__) && defined(__AVX512VNNI__)
    if (rows <= 4)
        qnnc_q8u_tile2_few_vnni(K4, A, B, pstride, rows > 2, (int32_t *)acc);
    else
        qnnc_q8u_tile2_vnni(K4, A, B, pstride, (int32_t *)acc);
    qnnc_q8_rows_store((const int32_t *)acc, ep, ch0, rows, QNNC_Q8_NR, (uint8_t *)y, ldy);
    qnnc_q8_rows_store((const int32_t *)(acc + 2 * QNNC_Q8_MR), ep, ch0, rows,
                       cols - QNNC_Q8_NR, (uint8_t *)y + QNNC_Q8_NR, ldy);
#else
    qnnc_q8u_tile_req(K4, A, B, ep, ch0, rows, QNNC_Q8_NR, y, ldy);
    qnnc_q8u_tile_req(K4, A, B + pstride, ep, ch0, rows, cols - QNNC_Q8_NR,
                      (uint8_t *)y + QNNC_Q8_NR, ldy);
#endif
}

/* One weight tile against every panel of a packed chunk of nc columns (panels pstride
 * apart), stored at y (the chunk's first column of the tile's first row): whole tiles in one
 * call of qnnc_q8u_tile2_st_vnni where it can take them, then qnnc_q8u_tile2_req for each
 * remaining pair. */
static inline void qnnc_q8u_tiles_req(int K4, const int8_t *QNNC_RESTRICT A,
                                      const uint8_t *QNNC_RESTRICT B, ptrdiff_t pstride,
                                      const qnnc_q8_epilogue *ep, int ch0, int rows, int nc,
                                      void *QNNC_RESTRICT y, ptrdiff_t ldy) {
    int c = 0;
#if defined(__AVX512F__) && defined(__AVX512VNNI__)
    if (rows == QNNC_Q8_MR && nc >= 2 * QNNC_Q8_NR && qnnc_q8u_tile2_hi_rows(ep, ch0)) {
        const int pairs = nc / (2 * QNNC_Q8_NR);
        if (!ep->lut) {
            qnnc_q8u_tile2_st_vnni(K4, A, B, pstride, ep, ch0, (uint8_t *)y, ldy, pairs);
            c = pairs * 2 * QNNC_Q8_NR;
        }
#if defined(QNNC_VBMI)
        else if (qnnc_vbmi()) {
            qnnc_q8u_tile2_lut_vbmi(K4, A, B, pstride, ep, ch0, (uint8_t *)y, ldy, pairs);
            c = pairs * 2 * QNNC_Q8_NR;
        }
#endif
    }
#elif defined(__AVX2__)
    if (rows == QNNC_Q8_MR && nc >= QNNC_Q8_NR && qnnc_q8u_tile2_hi_rows(ep, ch0)) {
        const int panels = nc / QNNC_Q8_NR;
        qnnc_q8u_tile_st_avx2(K4, A, B, pstride, ep, ch0, (uint8_t *)y, ldy, panels);
        c = panels * QNNC_Q8_NR;
    }
#endif
    for (; c < nc; c += 2 * QNNC_Q8_NR)
        qnnc_q8u_tile2_req(K4, A, B + (c / QNNC_Q8_NR) * pstride, pstride, ep, ch0, rows,
                           nc - c < 2 * QNNC_Q8_NR ? nc - c : 2 * QNNC_Q8_NR, (uint8_t *)y + c,
                           ldy);
}

#endif /* QNNC_INT8_U8S8_H */
