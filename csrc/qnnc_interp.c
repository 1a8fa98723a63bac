/* Kernels of the reference interpreter (ir/ops), in C where numpy's per-call passes over
 * memory cost more than the arithmetic. Each computes exactly what the numpy path computes:
 * the same IEEE operations on the same operands in the same order (built without FMA
 * contraction or fast-math), so which one ran never changes a value. The numpy paths stay
 * the definition; tests/ir/test_interp_kernels.py compares the two bit for bit.
 */
#include <stdint.h>
#include <string.h>

/* Depthwise 2-D convolution of the padded input (ir/ops/conv.py, _depthwise):
 *   xp: (planes, hp, wp), plane p = image p / g, channel c = p % g;
 *   w:  (g, mg, kh, kw); y: (planes, mg, oh, ow).
 * y[p, m, r, j] = sum over taps (a, b) in row-major order of
 *   xp[p, r*sh + a*dh, j*sw + b*dw] * w[c, m, a, b],
 * each product rounded to float, added to a sum that starts at +0, tap after tap. One output
 * row at a time, so the row stays in L1 while its taps accumulate. */
/* eight floats: GCC/Clang vector extensions, one AVX register where the host has AVX (the
 * operations are element-wise IEEE, exactly the scalar ones) */
typedef float qnnc_v8 __attribute__((vector_size(32)));

static inline qnnc_v8 load8(const float *p) {
    qnnc_v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline qnnc_v8 load8_strided(const float *p, int64_t s) {
    qnnc_v8 v = {p[0], p[s], p[2 * s], p[3 * s], p[4 * s], p[5 * s], p[6 * s], p[7 * s]};
    return v;
}

/* One output row: 16 columns at a time in two vector sums held in registers across every
 * tap, then 8, then the columns left one at a time (the same taps in the same order). */
static void depthwise_row(const float *restrict x0, int64_t wp, const float *restrict wt,
                          int64_t kh, int64_t kw, int64_t ow, int64_t sw, int64_t dh,
                          int64_t dw, float *restrict row) {
    int64_t j = 0;
    for (; j + 16 <= ow; j += 16) {
        qnnc_v8 s0 = {0}, s1 = {0};
        for (int64_t a = 0; a < kh; ++a) {
            const float *xr = x0 + a * dh * wp + j * sw;
            for (int64_t b = 0; b < kw; ++b) {
                const float v = wt[a * kw + b];
                const float *xs = xr + b * dw;
                if (sw == 1) {
                    s0 += load8(xs) * v;
                    s1 += load8(xs + 8) * v;
                } else {
                    s0 += load8_strided(xs, sw) * v;
                    s1 += load8_strided(xs + 8 * sw, sw) * v;
                }
            }
        }
        memcpy(row + j, &s0, sizeof s0);
        memcpy(row + j + 8, &s1, sizeof s1);
    }
    for (; j + 8 <= ow; j += 8) {
        qnnc_v8 s0 = {0};
        for (int64_t a = 0; a < kh; ++a) {
            const float *xr = x0 + a * dh * wp + j * sw;
            for (int64_t b = 0; b < kw; ++b) {
                const float v = wt[a * kw + b];
                s0 += (sw == 1 ? load8(xr + b * dw) : load8_strided(xr + b * dw, sw)) * v;
            }
        }
        memcpy(row + j, &s0, sizeof s0);
    }
    for (; j < ow; ++j) {
        float s = 0.0f;
        for (int64_t a = 0; a < kh; ++a)
            for (int64_t b = 0; b < kw; ++b)
                s += x0[a * dh * wp + b * dw + j * sw] * wt[a * kw + b];
        row[j] = s;
    }
}

void qnnc_depthwise2d_f32(const float *restrict xp, int64_t planes, int64_t g, int64_t hp,
                          int64_t wp, const float *restrict w, int64_t mg, int64_t kh,
                          int64_t kw, int64_t oh, int64_t ow, int64_t sh, int64_t sw,
                          int64_t dh, int64_t dw, float *restrict y) {
    for (int64_t p = 0; p < planes; ++p) {
        const float *x = xp + p * hp * wp;
        const int64_t c = p % g;
        for (int64_t m = 0; m < mg; ++m) {
            const float *wt = w + (c * mg + m) * kh * kw;
            float *out = y + (p * mg + m) * oh * ow;
            for (int64_t r = 0; r < oh; ++r)
                depthwise_row(x + r * sh * wp, wp, wt, kh, kw, ow, sw, dh, dw, out + r * ow);
        }
    }
}

/* HardSwish of float32 in float64 (ir/ops/elementwise.py: _f64 around _hard_swish):
 * y = (float)(d * clip(d / 6 + 1/2, 0, 1)) with d = (double)x, each operation rounded in
 * double as numpy does it; NaN stays NaN through the clip as in np.clip. */
void qnnc_hard_swish_f32(const float *restrict x, int64_t n, float *restrict y) {
    for (int64_t i = 0; i < n; ++i) {
        const double d = x[i];
        double u = d / 6.0;
        u += 0.5;
        u = u < 0.0 ? 0.0 : u;
        u = u > 1.0 ? 1.0 : u;
        y[i] = (float)(u * d);
    }
}
