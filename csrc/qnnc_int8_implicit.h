/* qnnc_int8_implicit.h - stride-1 convolutions as a GEMM read straight from the input planes.
 *
 * A convolution with unit strides reads, for output (oh, ow) and tap (kh, kw), the padded
 * input at (oh + kh * DH, ow + kw * DW). Numbered on the padded plane's grid, q = oh * WP + ow
 * (the columns ow >= OW are computed and dropped), tap (kh, kw) of position q reads position
 * q + kh * DH * WP + kw * DW: one offset per tap, the same for every position. With the
 * planes of four channels interleaved into byte quads (xq[c4][position][4], the top bit of
 * int8 codes flipped, as B of the u8 x s8 tile), a 16-column panel of B for one k quad (four
 * channels at one tap) is the 64 bytes at xq + c4 * PS + 4 * (q + offset): the tile reads
 * its panels from the planes, and nothing is packed per chunk (an im2col copies every input
 * byte KH * KW times; ResNet-50's 3x3 layers spent a fifth of their time there).
 *
 * The weights are packed with k in the order (c4, tap, channel of the quad): the A layout of
 * qnnc_q8u_tile over K4 = C4 * taps quads (the emitter, targets/c/qconv_implicit.py,
 * reorders them at compile time). Each step takes 32 grid columns (two panels, as
 * qnnc_q8u_tile2_vnni); its columns with ow < OW are runs of consecutive output positions,
 * stored with byte masks.
 *
 * AVX-512 VNNI only (vpdpbusd takes any int8 weights, in any order of k). */
#ifndef QNNC_INT8_IMPLICIT_H
#define QNNC_INT8_IMPLICIT_H

#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__)
#define QNNC_Q8U_IMPLICIT 1

/* Bytes after the last quad plane that a step may read: up to 31 positions past the grid's
 * last plane position, as quads, rounded up. */
#define QNNC_Q8U_IMPLICIT_SLACK 192

/* n copies of the 4-byte pattern pat from d on. */
static inline void qnnc_q8u_fill32(uint8_t *d, uint32_t pat, ptrdiff_t n) {
    const __m512i v = _mm512_set1_epi32((int)pat);
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_si512((void *)(d + 4 * i), v);
    if (i < n) _mm512_mask_storeu_epi32((void *)(d + 4 * i), (__mmask16)((1u << (n - i)) - 1), v);
}

/* n bytes of each of four rows (NULL: zero bytes), top bits flipped by flip, interleaved into
 * n quads at d: d[4j + e] = r_e[j] ^ flip. Reads and writes nothing past them. */
static inline void qnnc_q8u_interleave4(uint8_t *QNNC_RESTRICT d, const uint8_t *const r[4],
                                        int n, int flip) {
    const __m128i f = _mm_set1_epi8((char)flip);
    for (int j = 0; j < n; j += 16) {
        const int m = n - j < 16 ? n - j : 16;
        const __mmask16 k = (__mmask16)((1u << m) - 1);
        __m128i v[4];
        for (int e = 0; e < 4; ++e)
            v[e] = r[e] ? _mm_xor_si128(_mm_maskz_loadu_epi8(k, r[e] + j), f)
                        : _mm_setzero_si128();
        const __m128i ab0 = _mm_unpacklo_epi8(v[0], v[1]), ab1 = _mm_unpackhi_epi8(v[0], v[1]);
        const __m128i cd0 = _mm_unpacklo_epi8(v[2], v[3]), cd1 = _mm_unpackhi_epi8(v[2], v[3]);
        __m512i q = _mm512_castsi128_si512(_mm_unpacklo_epi16(ab0, cd0));
        q = _mm512_inserti32x4(q, _mm_unpackhi_epi16(ab0, cd0), 1);
        q = _mm512_inserti32x4(q, _mm_unpacklo_epi16(ab1, cd1), 2);
        q = _mm512_inserti32x4(q, _mm_unpackhi_epi16(ab1, cd1), 3);
        if (m == 16)
            _mm512_storeu_si512((void *)(d + 4 * j), q);
        else
            _mm512_mask_storeu_epi8((void *)(d + 4 * j), ((__mmask64)1 << (4 * m)) - 1, q);
    }
}

/* The quad planes of C channels x[C][H][W] (8-bit codes), zero-padded to HP x WP with the
 * input at row PT, column PL: plane c4 at xq + c4 * PS (PS >= 4 * HP * WP) holds channels
 * 4c4 .. 4c4+3. Padding holds the byte pad (the zero point's code, flipped like the data)
 * and channels past C hold zeros (their weights are zero); the plane's bytes past HP * WP
 * quads and QNNC_Q8U_IMPLICIT_SLACK bytes after the last plane are defined too. */
static inline void qnnc_q8u_quad_planes(uint8_t *QNNC_RESTRICT xq, const uint8_t *x, int C,
                                        int H, int W, int HP, int WP, int PT, int PL, int pad,
                                        int flip, ptrdiff_t PS) {
    const int C4 = (C + 3) / 4;
    const int rows = H < HP - PT ? H : HP - PT, cols = W < WP - PL ? W : WP - PL;
    const ptrdiff_t hw = (ptrdiff_t)H * W;
    for (int c4 = 0; c4 < C4; ++c4) {
        uint8_t *pl = xq + c4 * PS;
        uint32_t pat = 0;
        for (int e = 0; e < 4; ++e)
            if (4 * c4 + e < C) pat |= (uint32_t)(pad & 0xFF) << (8 * e);
        qnnc_q8u_fill32(pl, pat, (ptrdiff_t)PT * WP);
        for (int ih = 0; ih < rows; ++ih) {
            uint8_t *dr = pl + 4 * ((ptrdiff_t)(PT + ih) * WP);
            const uint8_t *r[4];
            for (int e = 0; e < 4; ++e)
                r[e] = 4 * c4 + e < C ? x + (4 * c4 + e) * hw + (ptrdiff_t)ih * W : NULL;
            qnnc_q8u_fill32(dr, pat, PL);
            qnnc_q8u_interleave4(dr + 4 * PL, r, cols, flip);
            qnnc_q8u_fill32(dr + 4 * (PL + cols), pat, WP - PL - cols);
        }
        const ptrdiff_t done = (ptrdiff_t)(PT + rows) * WP;
        qnnc_q8u_fill32(pl + 4 * done, pat, PS / 4 - done);
    }
    memset(xq + C4 * PS, 0, QNNC_Q8U_IMPLICIT_SLACK);
}

/* The runs of stored columns among a step's 32 grid columns from q (those below q1): lanes
 * lane[i] .. end[i] - 1 go to output positions at[i] on, mask[i] their lanes. Runs are
 * separated by the dropped columns, so with WP >= 2 there are at most 17 (one when WP == OW:
 * nothing is dropped). */
#define QNNC_Q8U_MAX_RUNS 18
typedef struct {
    int n;
    __mmask32 mask[QNNC_Q8U_MAX_RUNS];
    ptrdiff_t shift[QNNC_Q8U_MAX_RUNS]; /* at[i] - lane[i]: lane j's output is j + shift */
    int lane[QNNC_Q8U_MAX_RUNS], end[QNNC_Q8U_MAX_RUNS];
} qnnc_q8u_runs;

static inline void qnnc_q8u_runs_of(qnnc_q8u_runs *r, int q, int q1, int OW, int WP) {
    const int lim = q1 - q < 32 ? q1 - q : 32;
    int lane = 0, oh = q / WP, ow = q - oh * WP;
    r->n = 0;
    while (lane < lim) {
        if (ow >= OW) {
            lane += WP - ow, ow = 0, ++oh;
            continue;
        }
        const int len = OW - ow < lim - lane ? OW - ow : lim - lane;
        const ptrdiff_t shift = (ptrdiff_t)oh * OW + ow - lane;
        if (r->n && r->end[r->n - 1] == lane && r->shift[r->n - 1] == shift) {
            r->end[r->n - 1] = lane + len;  /* WP == OW: one run across rows */
        } else {
            r->lane[r->n] = lane, r->end[r->n] = lane + len, r->shift[r->n] = shift;
            ++r->n;
        }
        lane += len, ow += len;
    }
    for (int i = 0; i < r->n; ++i)
        r->mask[i] = (__mmask32)((((uint64_t)1 << r->end[i]) - 1) &
                                 ~(((uint64_t)1 << r->lane[i]) - 1));
}

/* A row's 32 bytes (lane j: grid column q + j) stored at its runs' output positions from yr
 * on. The address of lane 0 may lie before yr (a masked-off lane never touches memory). */
static inline void qnnc_q8u_store_runs(uint8_t *yr, __m256i bytes, const qnnc_q8u_runs *r) {
    for (int i = 0; i < r->n; ++i)
        _mm256_mask_storeu_epi8((void *)((uintptr_t)yr + (uintptr_t)r->shift[i]), r->mask[i],
                                bytes);
}

/* A row pair's 64 bytes (qnnc_q8u_rows2_bytes) stored by the step's runs: row r's 32 from
 * y + r * ldy on, row r + 1's a row further (the names of the bodies that use it). */
#define QNNC_Q8U_RUNS2(bytes, r)                                                           \
    do {                                                                                 \
        const __m512i b2_ = (bytes);                                                     \
        qnnc_q8u_store_runs(y + (r) * ldy, _mm512_castsi512_si256(b2_), &runs);          \
        qnnc_q8u_store_runs(y + ((r) + 1) * ldy, _mm512_extracti64x4_epi64(b2_, 1), &runs); \
    } while (0)

/* The k loop of one step: the weight tile at A (K4 quads, k as (c4, tap)) times the two
 * panels of every k quad kq, read from X (the step's first grid column: xq + 4q) plus
 * off[kq] bytes (c4 * PS plus the tap's offset), into c0-c5 and d0-d5 (QNNC_Q8U_ACC12). */
#define QNNC_Q8U_IMPLICIT_K(A, X, K4, off)                                               \
    QNNC_Q8U_ACC12;                                                                       \
    for (int kq = 0; kq < (K4); ++kq) {                                                   \
        const int8_t *a_ = (A) + kq * 4 * QNNC_Q8_MR;                                     \
        _mm_prefetch((const char *)(a_ + QNNC_Q8U_AHEAD), _MM_HINT_T0);                  \
        const uint8_t *p_ = (X) + (off)[kq];                                              \
        const __m512i b_ = _mm512_loadu_si512((const void *)p_);                          \
        const __m512i e_ = _mm512_loadu_si512((const void *)(p_ + 64));                   \
        QNNC_Q8U_STEP12(a_, b_, e_);                                                      \
    }

/* Whole six-row tiles with their epilogue in registers (qnnc_q8u_tile2_hi_ok): each row's
 * 32 requantised bytes stored by runs. clamp and sgn are constants where it is inlined. */
static inline __attribute__((always_inline)) void qnnc_q8u_implicit_hi_body(
    const int8_t *QNNC_RESTRICT A, const uint8_t *QNNC_RESTRICT xq, int K4, const int32_t *off,
    const qnnc_q8_epilogue *ep, int ch0, int q0, int q1, int OW, int WP, uint8_t *y,
    ptrdiff_t ldy, const int clamp, const int sgn) {
    qnnc_q8u_rq rq;
    qnnc_q8u_rq_of(&rq, ep, ch0);
    for (int q = q0; q < q1; q += 32) {
        qnnc_q8u_runs runs;
        qnnc_q8u_runs_of(&runs, q, q1, OW, WP);
        QNNC_Q8U_IMPLICIT_K(A, xq + 4 * (ptrdiff_t)q, K4, off)
        QNNC_Q8U_ROW_PAIRS(&rq, clamp, sgn, QNNC_Q8U_NO_MAP, QNNC_Q8U_RUNS2);
    }
}

QNNC_Q8_TILE_KERNEL void qnnc_q8u_implicit_hi(const int8_t *QNNC_RESTRICT A,
                                             const uint8_t *QNNC_RESTRICT xq, int K4,
                                             const int32_t *off,
                                             const qnnc_q8_epilogue *ep, int ch0, int q0,
                                             int q1, int OW, int WP, uint8_t *y, ptrdiff_t ldy) {
#define QNNC_Q8U_IHI(cl, sg) \
    qnnc_q8u_implicit_hi_body(A, xq, K4, off, ep, ch0, q0, q1, OW, WP, y, ldy, cl, sg)
    QNNC_Q8U_BY_FLAGS(qnnc_q8_clamps(ep), ep->sgn, QNNC_Q8U_IHI);
#undef QNNC_Q8U_IHI
}

#if defined(QNNC_VBMI)
/* qnnc_q8u_implicit_hi for a layer with an epilogue table, where the CPU has VBMI: each pair
 * of rows' 32 + 32 requantised bytes looked up in one 64-byte permute (qnnc_lut64_vbmi), as
 * qnnc_q8u_tile2_lut_vbmi does, then stored by runs. */
static QNNC_VBMI_FN inline __attribute__((always_inline)) void qnnc_q8u_implicit_lut_body(
    const int8_t *QNNC_RESTRICT A, const uint8_t *QNNC_RESTRICT xq, int K4, const int32_t *off,
    const qnnc_q8_epilogue *ep, int ch0, int q0, int q1, int OW, int WP, uint8_t *y,
    ptrdiff_t ldy, const int clamp, const int sgn) {
    qnnc_q8u_rq rq;
    qnnc_q8u_rq_of(&rq, ep, ch0);
    const __m512i t[4] = {_mm512_loadu_si512(ep->lut), _mm512_loadu_si512(ep->lut + 64),
                          _mm512_loadu_si512(ep->lut + 128), _mm512_loadu_si512(ep->lut + 192)};
    for (int q = q0; q < q1; q += 32) {
        qnnc_q8u_runs runs;
        qnnc_q8u_runs_of(&runs, q, q1, OW, WP);
        QNNC_Q8U_IMPLICIT_K(A, xq + 4 * (ptrdiff_t)q, K4, off)
#define QNNC_Q8U_LUT(x) qnnc_lut64_vbmi(x, t)
        QNNC_Q8U_ROW_PAIRS(&rq, clamp, sgn, QNNC_Q8U_LUT, QNNC_Q8U_RUNS2);
#undef QNNC_Q8U_LUT
    }
}

static QNNC_VBMI_FN __attribute__((noinline)) void qnnc_q8u_implicit_lut_vbmi(
    const int8_t *QNNC_RESTRICT A, const uint8_t *QNNC_RESTRICT xq, int K4, const int32_t *off,
    const qnnc_q8_epilogue *ep, int ch0, int q0, int q1, int OW, int WP, uint8_t *y,
    ptrdiff_t ldy) {
#define QNNC_Q8U_ILUT(cl, sg) \
    qnnc_q8u_implicit_lut_body(A, xq, K4, off, ep, ch0, q0, q1, OW, WP, y, ldy, cl, sg)
    QNNC_Q8U_BY_FLAGS(qnnc_q8_clamps(ep), ep->sgn, QNNC_Q8U_ILUT);
#undef QNNC_Q8U_ILUT
}
#endif

/* The k loop of a last weight tile of at most 4 (rows4) or 2 (else) rows of its six (the
 * rest are zero padding: 32 or 64 output channels leave 2 or 4 there), as
 * qnnc_q8u_tile2_few_vnni does for packed panels: only the tile's rows are computed, into
 * acc (the first panel's rows at acc[r], the second's at acc[6 + r]). */
static inline void qnnc_q8u_implicit_few(const int8_t *QNNC_RESTRICT A,
                                         const uint8_t *QNNC_RESTRICT X, int K4,
                                         const int32_t *off, int rows4, __m512i *acc) {
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
    __m512i d0 = c0, d1 = c0, d2 = c0, d3 = c0;
#define QNNC_Q8U_FEW_ROW(c, d, o)                              \
    do {                                                       \
        const __m512i w_ = qnnc_q8_bcast512(a_ + (o));         \
        QNNC_DPBUSD(c, b_, w_);                                \
        QNNC_DPBUSD(d, e_, w_);                                \
    } while (0)
    for (int kq = 0; kq < K4; ++kq) {
        const int8_t *a_ = A + kq * 4 * QNNC_Q8_MR;
        const uint8_t *p_ = X + off[kq];
        const __m512i b_ = _mm512_loadu_si512((const void *)p_);
        const __m512i e_ = _mm512_loadu_si512((const void *)(p_ + 64));
        QNNC_Q8U_FEW_ROW(c0, d0, 0);
        QNNC_Q8U_FEW_ROW(c1, d1, 4);
        if (rows4) {
            QNNC_Q8U_FEW_ROW(c2, d2, 8);
            QNNC_Q8U_FEW_ROW(c3, d3, 12);
        }
    }
#undef QNNC_Q8U_FEW_ROW
    acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3;
    acc[QNNC_Q8_MR] = d0, acc[QNNC_Q8_MR + 1] = d1, acc[QNNC_Q8_MR + 2] = d2;
    acc[QNNC_Q8_MR + 3] = d3;
}

/* Any tile (rows <= 6, any epilogue): the accumulators through memory, each run's part in
 * each panel stored by qnnc_q8_rows_store. */
QNNC_Q8_TILE_KERNEL void qnnc_q8u_implicit_any(const int8_t *QNNC_RESTRICT A,
                                              const uint8_t *QNNC_RESTRICT xq, int K4,
                                              const int32_t *off,
                                              const qnnc_q8_epilogue *ep, int ch0, int rows,
                                              int q0, int q1, int OW, int WP, uint8_t *y,
                                              ptrdiff_t ldy) {
    /* the first panel's 6 x 16, the second's, and one row more: a run's part that starts
     * mid-row is stored from acc + its lane, and qnnc_q8_rows_store reads 16 lanes a row */
    __m512i acc[2 * QNNC_Q8_MR + 1];
    for (int q = q0; q < q1; q += 32) {
        qnnc_q8u_runs runs;
        qnnc_q8u_runs_of(&runs, q, q1, OW, WP);
        if (rows <= 4)
            qnnc_q8u_implicit_few(A, xq + 4 * (ptrdiff_t)q, K4, off, rows > 2, acc);
        else {
            QNNC_Q8U_IMPLICIT_K(A, xq + 4 * (ptrdiff_t)q, K4, off)
            acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3, acc[4] = c4, acc[5] = c5;
            acc[6] = d0, acc[7] = d1, acc[8] = d2, acc[9] = d3, acc[10] = d4, acc[11] = d5;
        }
        acc[12] = _mm512_setzero_si512();
        for (int i = 0; i < runs.n; ++i) {
            for (int a = runs.lane[i]; a < runs.end[i];) {
                const int panel = a / QNNC_Q8_NR, stop = (panel + 1) * QNNC_Q8_NR;
                const int b = runs.end[i] < stop ? runs.end[i] : stop;
                qnnc_q8_rows_store((const int32_t *)(acc + panel * QNNC_Q8_MR) +
                                       (a - panel * QNNC_Q8_NR),
                                   ep, ch0, rows, b - a, y + a + runs.shift[i], ldy);
                a = b;
            }
        }
    }
}

/* Grid columns q0 .. q1 - 1 of one weight tile (channels ch0 .. ch0 + rows - 1, stored from
 * y, the output plane of channel ch0: y + r * ldy + position), steps starting at q0. */
static inline void qnnc_q8u_implicit(const int8_t *QNNC_RESTRICT A,
                                     const uint8_t *QNNC_RESTRICT xq, int K4,
                                     const int32_t *off, const qnnc_q8_epilogue *ep,
                                     int ch0, int rows, int q0, int q1, int OW, int WP,
                                     void *y, ptrdiff_t ldy) {
    if (rows == QNNC_Q8_MR && qnnc_q8u_tile2_hi_ok(ep, ch0)) {
        qnnc_q8u_implicit_hi(A, xq, K4, off, ep, ch0, q0, q1, OW, WP, (uint8_t *)y, ldy);
        return;
    }
#if defined(QNNC_VBMI)
    if (rows == QNNC_Q8_MR && ep->lut && qnnc_q8u_tile2_hi_rows(ep, ch0) && qnnc_vbmi()) {
        qnnc_q8u_implicit_lut_vbmi(A, xq, K4, off, ep, ch0, q0, q1, OW, WP, (uint8_t *)y, ldy);
        return;
    }
#endif
    qnnc_q8u_implicit_any(A, xq, K4, off, ep, ch0, rows, q0, q1, OW, WP, (uint8_t *)y, ldy);
}
#endif

#endif /* QNNC_INT8_IMPLICIT_H */
