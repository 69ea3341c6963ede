/*
 * Portable micro-kernels: plain C with fmaf, for machines without AVX2
 * (and every non-x86 target). They follow the GEMM contract exactly, so they
 * are also the easiest place to read what the vector kernels do; the bf16
 * one, with the flush written out, also serves the other emulating paths.
 */
#include "internal.h"

#define MR 4
#define NR 8

/* fp32 B values, both A layouts: A rows are BK_KC apart (row-major) or a
 * step's MR values adjacent (k-major). */
static inline void ukr(int k, const float *a, const float *b, int kmajor,
                       float *c, long ldc, int m, int n, float alpha, float beta)
{
    const int row = kmajor ? 1 : BK_KC, step = kmajor ? MR : 1;
    float acc[MR][NR] = {{0}};
    for (int p = 0; p < k; p++, a += step, b += NR)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] = fmaf(a[i * row], b[j], acc[i][j]);
    bk__merge_tile(&acc[0][0], NR, c, ldc, m, n, alpha, beta);
}

static void ukr_f32(int k, const void *a, const void *b, float *c, long ldc,
                    int m, int n, float alpha, float beta)
{
    ukr(k, a, b, 0, c, ldc, m, n, alpha, beta);
}

static void ukr_f32_kmajor(int k, const void *a, const void *b, float *c,
                           long ldc, int m, int n, float alpha, float beta)
{
    ukr(k, a, b, 1, c, ldc, m, n, alpha, beta);
}

static void ukr_bf16(int k, const void *a, const void *b, float *c, long ldc,
                     int m, int n, float alpha, float beta)
{
    bk__ukr_bf16_exact(MR, NR, 0, k, a, b, c, ldc, m, n, alpha, beta);
}

static void ukr_bf16_kmajor(int k, const void *a, const void *b, float *c,
                            long ldc, int m, int n, float alpha, float beta)
{
    bk__ukr_bf16_exact(MR, NR, 1, k, a, b, c, ldc, m, n, alpha, beta);
}

/* Step p of an A row is a[p] in a row-major panel, MR floats apart in a
 * k-major one; B word q holds the bf16 bits of steps 2q (low half) and
 * 2q + 1, natural pairs. Each group's even and odd chains, then their sum
 * into the pass's, as the contract says. */
void bk__ukr_bf16_exact(int mr, int nr, int kmajor, int k, const float *a,
                        const uint16_t *b, float *c, long ldc, int m, int n,
                        float alpha, float beta)
{
    const int row = kmajor ? 1 : BK_KC, step = kmajor ? mr : 1;
    float acc[BK_MAX_TILE] = {0}, e[BK_MAX_TILE], o[BK_MAX_TILE];
    for (int g = 0; g < bk__bf16_depth(k); g += BK_KG) {
        for (int t = 0; t < mr * nr; t++) e[t] = o[t] = 0.0f;
        for (int p = g; p < g + BK_KG; p += 2) {
            const uint16_t *w = b + (size_t)p * nr;
            for (int i = 0; i < mr; i++) {
                float a0 = a[i * row + p * step], a1 = a[i * row + (p + 1) * step];
                for (int j = 0; j < nr; j++) {
                    e[i * nr + j] = bk__bf16_dot(a0, bk__float((uint32_t)w[2 * j] << 16), e[i * nr + j]);
                    o[i * nr + j] = bk__bf16_dot(a1, bk__float((uint32_t)w[2 * j + 1] << 16), o[i * nr + j]);
                }
            }
        }
        for (int t = 0; t < mr * nr; t++) acc[t] = bk__bf16_add(acc[t], bk__bf16_add(e[t], o[t]));
    }
    bk__merge_tile(acc, nr, c, ldc, m, n, alpha, beta);
}

/* k-major A micro-panels (see gemm.c) from rows stored as columns, the
 * missing rows of the last panel zero. */
static void pack_kmajor(const float *src, int ld, int rows, int kc, int bf16, float *dst)
{
    for (int x0 = 0; x0 < rows; x0 += MR) {
        int have = rows - x0 < MR ? rows - x0 : MR;
        float *panel = dst + (size_t)x0 * BK_KC;
        for (int p = 0; p < kc; p++) {
            const float *s = src + (size_t)p * ld + x0;
            float *d = panel + (size_t)p * MR;
            for (int x = 0; x < MR; x++)
                d[x] = x >= have ? 0.0f : bf16 ? bk__bf16_round(s[x]) : s[x];
        }
    }
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
    .tuning = &bk__tuning_generic,
    .mr = {MR, MR}, .nr = {NR, NR}, .lanes = 1,
    .ukr = {ukr_f32, ukr_bf16},
    .ukr_kmajor = {ukr_f32_kmajor, ukr_bf16_kmajor},
    .fma_probe = fma_probe,
    .bf16_from_f32 = bf16_from_f32,
    .round_bf16 = round_bf16,
    .pack_kmajor = pack_kmajor,
    .dot_bf16 = 0,
};
