/*
 * Portable micro-kernels: plain C with fmaf, for machines without AVX2
 * (and every non-x86 target). They follow the GEMM contract exactly, so they
 * are also the easiest place to read what the vector kernels do.
 */
#include "internal.h"

#define MR 4
#define NR 8

static inline float bf16_value(uint16_t h) { return bk__float((uint32_t)h << 16); }

/* Both precisions share the loop; bf16 B values widen exactly to fp32. */
static inline void ukr(int k, const float *a, const void *bp, int bf16, float *c,
                       long ldc, int m, int n, float alpha, float beta)
{
    const float *bf = bp;
    const uint16_t *bh = bp;
    float acc[MR][NR] = {{0}};
    for (int p = 0; p < k; p++, a++, bf += NR, bh += NR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) {
                float b = bf16 ? bf16_value(bh[j]) : bf[j];
                acc[i][j] = fmaf(a[i * BK_KC], b, acc[i][j]);
            }
    bk__merge_tile(&acc[0][0], NR, c, ldc, m, n, alpha, beta);
}

static void ukr_f32(int k, const void *a, const void *b, float *c, long ldc,
                    int m, int n, float alpha, float beta)
{
    ukr(k, a, b, 0, c, ldc, m, n, alpha, beta);
}

static void ukr_bf16(int k, const void *a, const void *b, float *c, long ldc,
                     int m, int n, float alpha, float beta)
{
    ukr(k, a, b, 1, c, ldc, m, n, alpha, beta);
}

static void fma_probe(long iterations, float *sink)
{
    float x[BK_PROBE_CHAINS];
    for (int i = 0; i < BK_PROBE_CHAINS; i++) x[i] = (float)i;
    for (long t = 0; t < iterations; t++)
        for (int i = 0; i < BK_PROBE_CHAINS; i++) x[i] = fmaf(x[i], 0.999999f, 1e-7f);
    for (int i = 0; i < BK_PROBE_CHAINS; i++) sink[i] = x[i];
}

static void bf16_from_f32(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = bk__bf16(x[i]);
}

static void round_bf16(const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = bk__bf16_round(x[i]);
}

const bk_kernels bk__kernels_generic = {
    .isa = BK_ISA_SCALAR,
    .mr = MR, .nr = NR, .mc = 256, .nc = 2048, .lanes = 1,
    .ukr = {ukr_f32, ukr_bf16},
    .fma_probe = fma_probe,
    .bf16_from_f32 = bf16_from_f32,
    .round_bf16 = round_bf16,
};
