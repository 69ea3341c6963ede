/*
 * AVX2+FMA micro-kernels: a 6 x 16 tile of C in 12 ymm accumulators (the
 * BLIS Haswell shape). Same structure and contract as the AVX-512 kernels.
 */
#include "internal.h"

#ifdef BK_X86
#include <immintrin.h>

#define MR 6
#define NR 16

BK_TARGET_AVX2
static inline void store_tile(__m256 acc[MR][2], float *c, long ldc, int m,
                              int n, float alpha, float beta)
{
    if (m == MR && n == NR) {
        __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
        for (int i = 0; i < MR; i++)
            for (int h = 0; h < 2; h++) {
                float *p = c + i * ldc + 8 * h;
                __m256 t = beta == 0.0f ? _mm256_setzero_ps()
                                        : _mm256_mul_ps(vb, _mm256_loadu_ps(p));
                _mm256_storeu_ps(p, _mm256_fmadd_ps(va, acc[i][h], t));
            }
        return;
    }
    float tile[MR * NR] __attribute__((aligned(32)));
    for (int i = 0; i < MR; i++)
        for (int h = 0; h < 2; h++) _mm256_store_ps(tile + i * NR + 8 * h, acc[i][h]);
    bk__merge_tile(tile, NR, c, ldc, m, n, alpha, beta);
}

/* bf16, for rows [r0, r0 + BF16_ROWS) of the tile into acc: per group, the
 * even chain from the B words' low halves shifted up (exactly the even
 * steps' fp32 values) and the odd chain from their high halves, the low
 * ones cleared; A's odd step is one value further along a row-major row, MR
 * values further k-major. Three accumulators an element, so the tile goes
 * BF16_ROWS rows at a time, the pass's sums in acc. The FMAs skip the
 * contract's flush, which tiles with operands that are not plain take to
 * bk__ukr_bf16_exact (see gemm.c). */
#define BF16_ROWS 2
BK_TARGET_AVX2
static inline __attribute__((always_inline)) void
bf16_rows(int k, const float *a, const uint32_t *b, int kmajor, int r0, __m256 acc[MR][2])
{
    const int row = kmajor ? 1 : BK_KC, step = kmajor ? MR : 1;
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (int g = 0; g < bk__bf16_depth(k); g += BK_KG) {
        __m256 e[BF16_ROWS][2], o[BF16_ROWS][2];
        for (int i = 0; i < BF16_ROWS; i++)
            e[i][0] = e[i][1] = o[i][0] = o[i][1] = _mm256_setzero_ps();
        for (int p = g; p < g + BK_KG; p += 2) {
            const uint32_t *w = b + (size_t)p / 2 * NR;
            __m256i w0 = _mm256_load_si256((const __m256i *)w);
            __m256i w1 = _mm256_load_si256((const __m256i *)(w + 8));
            __m256 lo0 = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16));
            __m256 lo1 = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
            __m256 hi0 = _mm256_castsi256_ps(_mm256_and_si256(w0, high));
            __m256 hi1 = _mm256_castsi256_ps(_mm256_and_si256(w1, high));
            for (int i = 0; i < BF16_ROWS; i++) {
                const float *ai = a + (r0 + i) * row + p * step;
                __m256 a0 = _mm256_broadcast_ss(ai), a1 = _mm256_broadcast_ss(ai + step);
                e[i][0] = _mm256_fmadd_ps(a0, lo0, e[i][0]);
                e[i][1] = _mm256_fmadd_ps(a0, lo1, e[i][1]);
                o[i][0] = _mm256_fmadd_ps(a1, hi0, o[i][0]);
                o[i][1] = _mm256_fmadd_ps(a1, hi1, o[i][1]);
            }
        }
        for (int i = 0; i < BF16_ROWS; i++)
            for (int h = 0; h < 2; h++)
                acc[r0 + i][h] = _mm256_add_ps(acc[r0 + i][h], _mm256_add_ps(e[i][h], o[i][h]));
    }
}

/* Both precisions and both A layouts share the code; the branches are
 * loop-invariant and inlined away. fp32: one B row and MR broadcasts of A
 * per k step; bf16: see bf16_rows. */
BK_TARGET_AVX2
static inline __attribute__((always_inline)) void
ukr(int k, const float *a, const void *bp, int bf16, int kmajor, float *c,
    long ldc, int m, int n, float alpha, float beta)
{
    const float *bf = bp;
    const int row = kmajor ? 1 : BK_KC, step = kmajor ? MR : 1;
    __m256 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    if (bf16) {
        for (int r0 = 0; r0 < m; r0 += BF16_ROWS) bf16_rows(k, a, bp, kmajor, r0, acc);
    } else {
        for (int p = 0; p < k; p++, a += step, bf += NR) {
            __m256 b0 = _mm256_load_ps(bf), b1 = _mm256_load_ps(bf + 8);
            for (int i = 0; i < MR; i++) {
                __m256 ai = _mm256_broadcast_ss(a + i * row);
                acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
            }
        }
    }
    store_tile(acc, c, ldc, m, n, alpha, beta);
}

BK_MICRO_KERNELS(BK_TARGET_AVX2, ukr)

BK_TARGET_AVX2
static void fma_probe(long iterations, float *sink)
{
    __m256 x[BK_PROBE_CHAINS];
    const __m256 s = _mm256_set1_ps(0.999999f), t = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < BK_PROBE_CHAINS; i++) x[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iterations; it++)
        for (int i = 0; i < BK_PROBE_CHAINS; i++) x[i] = _mm256_fmadd_ps(x[i], s, t);
    for (int i = 1; i < BK_PROBE_CHAINS; i++) x[0] = _mm256_add_ps(x[0], x[i]);
    _mm256_storeu_ps(sink, x[0]);
}

/* Round 8 floats to bf16 (NaN guard, subnormal flush), bf16 in the high half
 * of each lane. */
BK_TARGET_AVX2
static inline __m256i round8(__m256 x)
{
    __m256i u = _mm256_castps_si256(x);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
    __m256i exp = _mm256_and_si256(u, _mm256_set1_epi32(0x7f800000));
    __m256i tiny = _mm256_cmpeq_epi32(exp, _mm256_setzero_si256());
    __m256i sign = _mm256_and_si256(u, _mm256_set1_epi32((int)0x80000000u));
    r = _mm256_blendv_epi8(r, sign, tiny);
    __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    __m256i quiet = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
    r = _mm256_blendv_epi8(r, quiet, nan);
    return _mm256_and_si256(r, _mm256_set1_epi32((int)0xffff0000u));
}

BK_TARGET_AVX2
static void bf16_from_f32(const float *x, uint16_t *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i r = _mm256_srli_epi32(round8(_mm256_loadu_ps(x + i)), 16);
        __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r),
                                          _mm256_extracti128_si256(r, 1));
        _mm_storeu_si128((__m128i *)(y + i), packed);
    }
    for (; i < n; i++) y[i] = bk__bf16(x[i]);
}

/* k-major A micro-panels (see gemm.c) from rows stored as columns: each k
 * step's MR values are one masked load and store, the missing rows of the
 * last panel zero. */
BK_TARGET_AVX2
static void pack_kmajor(const float *src, int ld, int rows, int kc, int bf16, float *dst)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i panel_rows = _mm256_cmpgt_epi32(_mm256_set1_epi32(MR), lane);
    for (int x0 = 0; x0 < rows; x0 += MR) {
        int have = rows - x0 < MR ? rows - x0 : MR;
        __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(have), lane);
        float *panel = dst + (size_t)x0 * BK_KC;
        for (int p = 0; p < kc; p++) {
            __m256 v = _mm256_maskload_ps(src + (size_t)p * ld + x0, valid);
            if (bf16) v = _mm256_castsi256_ps(round8(v));
            _mm256_maskstore_ps(panel + (size_t)p * MR, panel_rows, v);
        }
    }
}

BK_TARGET_AVX2
static void round_bf16(const float *x, float *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(round8(_mm256_loadu_ps(x + i))));
    for (; i < n; i++) y[i] = bk__bf16_round(x[i]);
}

/* Interleaves two rows of n floats into n words of (r0, r1) bf16 bits, r0
 * in the low half; a NULL r1 reads as zeros. */
BK_TARGET_AVX2
static void pack_pairs(const float *r0, const float *r1, int n, uint32_t *dst)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i lo = r0 ? _mm256_srli_epi32(round8(_mm256_loadu_ps(r0 + i)), 16) : _mm256_setzero_si256();
        __m256i hi = r1 ? round8(_mm256_loadu_ps(r1 + i)) : _mm256_setzero_si256();
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_or_si256(lo, hi));
    }
    for (; i < n; i++)
        dst[i] = bk__bf16_pair(r0 ? r0[i] : 0.0f, r1 ? r1[i] : 0.0f);
}

const bk_kernels bk__kernels_avx2 = {
    .isa = BK_ISA_AVX2,
    .tuning = &bk__tuning_avx2,
    .mr = {MR, MR}, .nr = {NR, NR}, .lanes = 8,
    .ukr = {ukr_f32, ukr_bf16},
    .ukr_kmajor = {ukr_f32_kmajor, ukr_bf16_kmajor},
    .fma_probe = fma_probe,
    .bf16_from_f32 = bf16_from_f32,
    .round_bf16 = round_bf16,
    .pack_kmajor = pack_kmajor,
    .pack_pairs = pack_pairs,
    .dot_bf16 = 0,
};
#endif
