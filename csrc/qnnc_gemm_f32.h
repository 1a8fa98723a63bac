/* qnnc_gemm_f32.h - single-precision GEMM, C += A * B, all row-major.
 *
 * A is M x K (row stride lda), B is K x N (row stride ldb), C is M x N (row stride ldc).
 * Callers initialise C (with the bias, or zeros) and the kernel accumulates, so bias and
 * beta need no extra pass. Blocked over K (KC rows of B stay in L1) and over N in panels of
 * 16 columns; the AVX2 micro-kernel keeps a 4 x 16 block of C in eight ymm registers and
 * updates it with FMA; a generic C path (the same loop order, which compilers vectorise)
 * covers other CPUs and the edges. With OpenMP the column panels run in parallel. */
#ifndef QNNC_GEMM_F32_H
#define QNNC_GEMM_F32_H

#include "qnnc_runtime.h"
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#ifndef QNNC_GEMM_KC
#define QNNC_GEMM_KC 256
#endif

/* C[i0:i1, j0:j0+nb] += A[i0:i1, k0:k1] * B[k0:k1, j0:j0+nb], any sizes, plain C. */
static inline void qnnc_sgemm_block_c(int i0, int i1, int j0, int nb, int k0, int k1,
                                      const float *QNNC_RESTRICT A, int lda,
                                      const float *QNNC_RESTRICT B, int ldb,
                                      float *QNNC_RESTRICT C, int ldc) {
    for (int i = i0; i < i1; ++i) {
        float *c = C + (size_t)i * ldc + j0;
        for (int k = k0; k < k1; ++k) {
            const float a = A[(size_t)i * lda + k];
            const float *b = B + (size_t)k * ldb + j0;
            for (int j = 0; j < nb; ++j) c[j] += a * b[j];
        }
    }
}

#if defined(__AVX2__) && defined(__FMA__)
/* 4 rows x 16 columns of C, the whole k0..k1 range, in registers. */
static inline void qnnc_sgemm_4x16_avx2(int k0, int k1, const float *A, int lda,
                                        const float *B, int ldb, float *C, int ldc) {
    __m256 c00 = _mm256_loadu_ps(C), c01 = _mm256_loadu_ps(C + 8);
    __m256 c10 = _mm256_loadu_ps(C + ldc), c11 = _mm256_loadu_ps(C + ldc + 8);
    __m256 c20 = _mm256_loadu_ps(C + 2 * ldc), c21 = _mm256_loadu_ps(C + 2 * ldc + 8);
    __m256 c30 = _mm256_loadu_ps(C + 3 * ldc), c31 = _mm256_loadu_ps(C + 3 * ldc + 8);
    for (int k = k0; k < k1; ++k) {
        const float *b = B + (size_t)k * ldb;
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 a = _mm256_broadcast_ss(A + k);
        c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(A + lda + k);
        c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(A + 2 * lda + k);
        c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(A + 3 * lda + k);
        c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
    }
    _mm256_storeu_ps(C, c00); _mm256_storeu_ps(C + 8, c01);
    _mm256_storeu_ps(C + ldc, c10); _mm256_storeu_ps(C + ldc + 8, c11);
    _mm256_storeu_ps(C + 2 * ldc, c20); _mm256_storeu_ps(C + 2 * ldc + 8, c21);
    _mm256_storeu_ps(C + 3 * ldc, c30); _mm256_storeu_ps(C + 3 * ldc + 8, c31);
}

/* 1 row x 16 columns (the M % 4 edge, and M == 1 fully-connected layers). */
static inline void qnnc_sgemm_1x16_avx2(int k0, int k1, const float *A, const float *B,
                                        int ldb, float *C) {
    __m256 c0 = _mm256_loadu_ps(C), c1 = _mm256_loadu_ps(C + 8);
    for (int k = k0; k < k1; ++k) {
        const float *b = B + (size_t)k * ldb;
        const __m256 a = _mm256_broadcast_ss(A + k);
        c0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(b), c0);
        c1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(b + 8), c1);
    }
    _mm256_storeu_ps(C, c0); _mm256_storeu_ps(C + 8, c1);
}
#endif

/* One 16-column panel (or the narrower last one) of C, all rows. */
static inline void qnnc_sgemm_panel(int M, int K, int j0, int nb,
                                    const float *QNNC_RESTRICT A, int lda,
                                    const float *QNNC_RESTRICT B, int ldb,
                                    float *QNNC_RESTRICT C, int ldc) {
    for (int k0 = 0; k0 < K; k0 += QNNC_GEMM_KC) {
        const int k1 = k0 + QNNC_GEMM_KC < K ? k0 + QNNC_GEMM_KC : K;
#if defined(__AVX2__) && defined(__FMA__)
        if (nb == 16) {
            int i = 0;
            for (; i + 4 <= M; i += 4)
                qnnc_sgemm_4x16_avx2(k0, k1, A + (size_t)i * lda, lda, B + j0, ldb,
                                     C + (size_t)i * ldc + j0, ldc);
            for (; i < M; ++i)
                qnnc_sgemm_1x16_avx2(k0, k1, A + (size_t)i * lda, B + j0, ldb,
                                     C + (size_t)i * ldc + j0);
            continue;
        }
#endif
        qnnc_sgemm_block_c(0, M, j0, nb, k0, k1, A, lda, B, ldb, C, ldc);
    }
}

/* C[M x N] += A[M x K] * B[K x N]. threads > 1 splits the column panels with OpenMP. */
static inline void qnnc_sgemm(int M, int N, int K, const float *QNNC_RESTRICT A, int lda,
                              const float *QNNC_RESTRICT B, int ldb,
                              float *QNNC_RESTRICT C, int ldc, int threads) {
    const int panels = (N + 15) / 16;
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) if (threads > 1 && panels > 1)
#endif
    for (int p = 0; p < panels; ++p) {
        const int j0 = p * 16;
        const int nb = N - j0 < 16 ? N - j0 : 16;
        qnnc_sgemm_panel(M, K, j0, nb, A, lda, B, ldb, C, ldc);
    }
}

#endif /* QNNC_GEMM_F32_H */
