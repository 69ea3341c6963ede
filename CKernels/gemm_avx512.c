/*
 * AVX-512 micro-kernels: a 12 x 32 tile of C in 24 zmm accumulators. Each k
 * step loads two B vectors and broadcasts 12 A values; every accumulator gets
 * one FMA per step, in k order, as the GEMM contract requires.
 *
 * bf16 panels hold 16-bit values. A bf16 value v becomes the fp32 bits
 * v << 16; two neighbouring A values are broadcast with one 32-bit load and
 * split with a shift (low) and a mask (high).
 */
#include "internal.h"

#ifdef BK_X86
#include <immintrin.h>

#define MR 12
#define NR 32

BK_TARGET_AVX512
static inline void store_tile(__m512 acc[MR][2], float *c, long ldc, int m,
                              int n, float alpha, float beta)
{
    if (m == MR && n == NR) {
        __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
        for (int i = 0; i < MR; i++)
            for (int h = 0; h < 2; h++) {
                float *p = c + i * ldc + 16 * h;
                __m512 t = beta == 0.0f ? _mm512_setzero_ps()
                                        : _mm512_mul_ps(vb, _mm512_loadu_ps(p));
                _mm512_storeu_ps(p, _mm512_fmadd_ps(va, acc[i][h], t));
            }
        return;
    }
    float tile[MR * NR] __attribute__((aligned(64)));
    for (int i = 0; i < MR; i++)
        for (int h = 0; h < 2; h++) _mm512_store_ps(tile + i * NR + 16 * h, acc[i][h]);
    bk__merge_tile(tile, NR, c, ldc, m, n, alpha, beta);
}

BK_TARGET_AVX512
static void ukr_f32(int k, const void *ap, const void *bp, float *c, long ldc,
                    int m, int n, float alpha, float beta)
{
    const float *a = ap, *b = bp;
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++, a += MR, b += NR) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    store_tile(acc, c, ldc, m, n, alpha, beta);
}

BK_TARGET_AVX512
static inline __m512 widen16(const uint16_t *p)
{
    __m256i h = _mm256_load_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

BK_TARGET_AVX512
static void ukr_bf16(int k, const void *ap, const void *bp, float *c, long ldc,
                     int m, int n, float alpha, float beta)
{
    const uint16_t *a = ap, *b = bp;
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++, a += MR, b += NR) {
        __m512 b0 = widen16(b), b1 = widen16(b + 16);
        for (int i = 0; i < MR; i += 2) {
            int32_t pair;
            memcpy(&pair, a + i, 4);
            __m512i v = _mm512_set1_epi32(pair);
            __m512 lo = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
            __m512 hi = _mm512_castsi512_ps(_mm512_and_si512(v, high));
            acc[i][0] = _mm512_fmadd_ps(lo, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(lo, b1, acc[i][1]);
            acc[i + 1][0] = _mm512_fmadd_ps(hi, b0, acc[i + 1][0]);
            acc[i + 1][1] = _mm512_fmadd_ps(hi, b1, acc[i + 1][1]);
        }
    }
    store_tile(acc, c, ldc, m, n, alpha, beta);
}

BK_TARGET_AVX512
static void fma_probe(long iterations, float *sink)
{
    __m512 x[BK_PROBE_CHAINS];
    const __m512 s = _mm512_set1_ps(0.999999f), t = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < BK_PROBE_CHAINS; i++) x[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iterations; it++)
        for (int i = 0; i < BK_PROBE_CHAINS; i++) x[i] = _mm512_fmadd_ps(x[i], s, t);
    for (int i = 1; i < BK_PROBE_CHAINS; i++) x[0] = _mm512_add_ps(x[0], x[i]);
    _mm512_storeu_ps(sink, x[0]);
}

/* Round 16 floats to bf16 with the NaN guard and flush of subnormals; the
 * result keeps the bf16 in the high half of each 32-bit lane. */
BK_TARGET_AVX512
static inline __m512i round16(__m512 x)
{
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    __mmask16 tiny = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_and_epi32(r, tiny, u, _mm512_set1_epi32((int)0x80000000u));
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
    return _mm512_and_si512(r, _mm512_set1_epi32((int)0xffff0000u));
}

BK_TARGET_AVX512
static void bf16_from_f32(const float *x, uint16_t *y, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i r = _mm512_srli_epi32(round16(_mm512_loadu_ps(x + i)), 16);
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(r));
    }
    for (; i < n; i++) y[i] = bk__bf16(x[i]);
}

BK_TARGET_AVX512
static void round_bf16(const float *x, float *y, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_castsi512_ps(round16(_mm512_loadu_ps(x + i))));
    for (; i < n; i++) y[i] = bk__bf16_round(x[i]);
}

const bk_kernels bk__kernels_avx512 = {
    .isa = BK_ISA_AVX512,
    .mr = MR, .nr = NR, .mc = 240, .nc = 3072, .lanes = 16,
    .ukr = {ukr_f32, ukr_bf16},
    .fma_probe = fma_probe,
    .bf16_from_f32 = bf16_from_f32,
    .round_bf16 = round_bf16,
};
#endif
