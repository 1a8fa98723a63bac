/* Calibration histograms in one pass (compiler/quant/observers.py, Histogram.update).
 *
 * Bins values the way the numpy path does, bit for bit: a value x gets the signed code
 * ceil(|x| / width) with the sign of x (exact zeros code 0), clipped to [-bins, bins], the
 * division done in the input's own precision (IEEE, no fast-math); counts[bins + code] is
 * incremented, so counts holds the negative bins reversed, the zeros, then the positive bins
 * (2 * bins + 1 entries). The caller has dropped NaN/inf and sized `width` so that the
 * largest magnitude falls in the last bin, give or take rounding (which the clip absorbs).
 *
 * Codes are computed a block at a time (a loop the compiler vectorises). A large input is
 * counted into four sub-histograms in `scratch` (4 * (2 * bins + 1) entries, zero on entry and
 * zeroed again as they are folded into `counts`) so that runs of equal values (the zeros of a
 * ReLU) do not serialise on one counter; an input smaller than one histogram is counted
 * straight into `counts`, where folding the sub-histograms would cost more than the counting.
 * `counts` accumulates: the caller's histogram is updated in place.
 */
#include <math.h>
#include <stdint.h>

enum { QNNC_HIST_BLOCK = 2048 };

#define QNNC_CODES(NAME, T, ABS, CEIL)                                                     \
    static void NAME(const T *restrict x, int64_t m, T width, T top,                       \
                     int32_t *restrict code) {                                             \
        for (int64_t i = 0; i < m; ++i) {                                                  \
            T c = CEIL(ABS(x[i]) / width);                                                 \
            c = c < top ? c : top;                                                         \
            code[i] = (int32_t)(x[i] < 0 ? -c : c);                                        \
        }                                                                                  \
    }
QNNC_CODES(codes_f32, float, fabsf, ceilf)
QNNC_CODES(codes_f64, double, fabs, ceil)

static void count(const int32_t *restrict code, int64_t m, int64_t bins,
                  uint32_t *restrict scratch) {
    const int64_t stride = 2 * bins + 1;
    uint32_t *s0 = scratch + bins, *s1 = s0 + stride, *s2 = s1 + stride, *s3 = s2 + stride;
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
        ++s0[code[i]];
        ++s1[code[i + 1]];
        ++s2[code[i + 2]];
        ++s3[code[i + 3]];
    }
    for (; i < m; ++i)
        ++s0[code[i]];
}

static void count_direct(const int32_t *restrict code, int64_t m, int64_t bins,
                         int64_t *restrict counts) {
    int64_t *c = counts + bins;
    for (int64_t i = 0; i < m; ++i)
        ++c[code[i]];
}

static void fold(int64_t bins, uint32_t *restrict scratch, int64_t *restrict counts) {
    const int64_t stride = 2 * bins + 1;
    for (int64_t j = 0; j < stride; ++j) {
        counts[j] += (int64_t)scratch[j] + scratch[j + stride] + scratch[j + 2 * stride] +
                     scratch[j + 3 * stride];
        scratch[j] = scratch[j + stride] = scratch[j + 2 * stride] = scratch[j + 3 * stride] = 0;
    }
}

/* n must stay below 2^32 per call (the sub-histograms are 32-bit). */
void qnnc_hist_f32(const float *x, int64_t n, float width, int64_t bins, int64_t *counts,
                   uint32_t *scratch) {
    int32_t code[QNNC_HIST_BLOCK];
    const int direct = n < 2 * bins + 1;
    for (int64_t at = 0; at < n; at += QNNC_HIST_BLOCK) {
        const int64_t m = n - at < QNNC_HIST_BLOCK ? n - at : QNNC_HIST_BLOCK;
        codes_f32(x + at, m, width, (float)bins, code);
        if (direct)
            count_direct(code, m, bins, counts);
        else
            count(code, m, bins, scratch);
    }
    if (!direct)
        fold(bins, scratch, counts);
}

void qnnc_hist_f64(const double *x, int64_t n, double width, int64_t bins, int64_t *counts,
                   uint32_t *scratch) {
    int32_t code[QNNC_HIST_BLOCK];
    const int direct = n < 2 * bins + 1;
    for (int64_t at = 0; at < n; at += QNNC_HIST_BLOCK) {
        const int64_t m = n - at < QNNC_HIST_BLOCK ? n - at : QNNC_HIST_BLOCK;
        codes_f64(x + at, m, width, (double)bins, code);
        if (direct)
            count_direct(code, m, bins, counts);
        else
            count(code, m, bins, scratch);
    }
    if (!direct)
        fold(bins, scratch, counts);
}

/* One histogram update's first pass and, in the common case, its binning too: the
 * minimum and maximum of x go to extremes[0] and extremes[1]. Returns -1 when x holds a NaN
 * or an infinity (extremes unset, nothing counted: the caller's numpy path drops those),
 * 1 when x was binned into counts (width > 0 and every magnitude within edge = bins *
 * width, computed by the caller in double precision as its own test is), else 0 (all
 * zeros, a first batch or a wider range: the caller sets the width and bins). The
 * extremes are exact (a zero is reported as +0.0); the scan is vectorised as an OpenMP simd
 * reduction, which is free to reorder it because min and max do not round. */
#define QNNC_UPDATE(NAME, T, HIST, MAXV)                                                   \
    int64_t NAME(const T *x, int64_t n, T width, double edge, int64_t bins,               \
                 int64_t *counts, uint32_t *scratch, double *extremes) {                   \
        if (n <= 0) /* no values: no extremes (the caller never asks) */                  \
            return -1;                                                                     \
        T lo = x[0], hi = x[0];                                                            \
        int64_t bad = 0;                                                                   \
        _Pragma("omp simd reduction(min : lo) reduction(max : hi) reduction(+ : bad)")      \
        for (int64_t i = 0; i < n; ++i) {                                                  \
            const T v = x[i];                                                              \
            lo = v < lo ? v : lo;                                                          \
            hi = v > hi ? v : hi;                                                          \
            bad += !(v <= MAXV && v >= -MAXV);                                             \
        }                                                                                  \
        if (bad)                                                                           \
            return -1;                                                                     \
        extremes[0] = (double)lo + 0.0; /* -0.0 as +0.0, whichever zero the lanes kept */  \
        extremes[1] = (double)hi + 0.0;                                                    \
        const double amax = -(double)lo > (double)hi ? -(double)lo : (double)hi;           \
        if (!(width > 0 && amax > 0 && amax <= edge))                                      \
            return 0;                                                                      \
        HIST(x, n, width, bins, counts, scratch);                                          \
        return 1;                                                                          \
    }
QNNC_UPDATE(qnnc_hist_update_f32, float, qnnc_hist_f32, 3.40282346638528859812e+38f)
QNNC_UPDATE(qnnc_hist_update_f64, double, qnnc_hist_f64, 1.79769313486231570815e+308)

/* Many float32 updates in one call, for the small tensors of one calibration sample (calling
 * qnnc_hist_update_f32 once per tensor costs more than binning it). Segment i is x[ends[i -
 * 1] .. ends[i]) (ends[-1] = 0), to be folded into the histogram with bin width widths[i]
 * (as double: the float32 width and the double edge are derived from it as the single update
 * derives them) and counts counts[i]. status[i] and extremes[2i], extremes[2i + 1] are what
 * qnnc_hist_update_f32 returns and writes for that segment alone; a segment whose status is
 * not 1 was not counted, and the caller updates it on its own (width, growth, NaN/inf). */
void qnnc_hist_update_many_f32(const float *x, const int64_t *ends, int64_t k,
                               const double *widths, int64_t bins, int64_t *const *counts,
                               uint32_t *scratch, double *extremes, int64_t *status) {
    int64_t start = 0;
    for (int64_t i = 0; i < k; ++i) {
        status[i] = qnnc_hist_update_f32(x + start, ends[i] - start, (float)widths[i],
                                         (double)bins * widths[i], bins, counts[i], scratch,
                                         extremes + 2 * i);
        start = ends[i];
    }
}
