/*
 * AVX-512 micro-kernels: a 12 x 32 tile of C in 24 zmm accumulators
 * (zmm8-zmm31). Each k step loads one row of the B panel into zmm0-zmm1 and
 * issues 24 FMAs whose A operand is broadcast straight from memory
 * ({1to16}). Broadcasting into a register first costs a shuffle per A value
 * that competes with the FMAs for the vector pipes on cores that split
 * 512-bit work (about 20% of peak on Zen 4), and compilers do not keep the
 * broadcast in the FMA when a value feeds two of them, hence the inline
 * assembly for the k loop. Every accumulator gets one FMA per step, in k
 * order, as the GEMM contract requires. Full tiles update C from the
 * accumulators directly; edge tiles go through a stack tile.
 */
#include "internal.h"

#ifdef BK_X86
#include <immintrin.h>

#define MR 12
#define NR 32

#define ZERO(r) "vpxord %%zmm" #r ", %%zmm" #r ", %%zmm" #r "\n\t"
#define ZERO_ACC                                                             \
    ZERO(8) ZERO(9) ZERO(10) ZERO(11) ZERO(12) ZERO(13) ZERO(14) ZERO(15)    \
    ZERO(16) ZERO(17) ZERO(18) ZERO(19) ZERO(20) ZERO(21) ZERO(22) ZERO(23)  \
    ZERO(24) ZERO(25) ZERO(26) ZERO(27) ZERO(28) ZERO(29) ZERO(30) ZERO(31)

/* Row i of the tile: both halves get A(i, p) * (zmm0, zmm1). In the
 * row-major A panel rows are BK_KC = 128 floats (512 bytes) apart and %[a]
 * walks along p 4 bytes a step; in the k-major one (a transposed A, see
 * gemm.c) a step's MR values are adjacent and %[a] walks 48 bytes a step.
 * RS is the row stride in bytes. */
#define ROW(RS, i, r0, r1)                                                   \
    "vfmadd231ps " #i "*" #RS "(%[a])%{1to16%}, %%zmm0, %%zmm" #r0 "\n\t"   \
    "vfmadd231ps " #i "*" #RS "(%[a])%{1to16%}, %%zmm1, %%zmm" #r1 "\n\t"
#define STEP_ROWS(RS)                                                        \
    ROW(RS, 0, 8, 9) ROW(RS, 1, 10, 11) ROW(RS, 2, 12, 13)                   \
    ROW(RS, 3, 14, 15) ROW(RS, 4, 16, 17) ROW(RS, 5, 18, 19)                 \
    ROW(RS, 6, 20, 21) ROW(RS, 7, 22, 23) ROW(RS, 8, 24, 25)                 \
    ROW(RS, 9, 26, 27) ROW(RS, 10, 28, 29) ROW(RS, 11, 30, 31)
/* The first SHORT_MR rows only: tiles of up to that many rows (batch-1
 * linears, Winograd on small images) skip the FMAs of absent rows. */
#define SHORT_MR 4
#define STEP_SHORT_ROWS(RS)                                                  \
    ROW(RS, 0, 8, 9) ROW(RS, 1, 10, 11) ROW(RS, 2, 12, 13) ROW(RS, 3, 14, 15)

/* Accumulator zmm(8 + q) is tile element block q: row q/2, half q%2. */
#define SAVE(r) "vmovaps %%zmm" #r ", (" #r "-8)*64(%[t])\n\t"
#define SAVE_ACC                                                             \
    SAVE(8) SAVE(9) SAVE(10) SAVE(11) SAVE(12) SAVE(13) SAVE(14) SAVE(15)    \
    SAVE(16) SAVE(17) SAVE(18) SAVE(19) SAVE(20) SAVE(21) SAVE(22) SAVE(23)  \
    SAVE(24) SAVE(25) SAVE(26) SAVE(27) SAVE(28) SAVE(29) SAVE(30) SAVE(31)

#define CLOBBERS                                                             \
    "memory", "cc", "xmm0", "xmm1", "xmm8", "xmm9", "xmm10", "xmm11",        \
        "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18",       \
        "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",       \
        "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31"

/* The k loops: one B row into zmm0-zmm1 per step (fp32, or bf16 widened by
 * a zero-extension and a shift, which is exact), then the FMAs of BODY. */
#define LOOP_F32(BODY, ASTEP)                                                \
    "test %[k], %[k]\n\t"                                                    \
    "jle 2f\n\t"                                                             \
    "1:\n\t"                                                                 \
    "vmovaps (%[b]), %%zmm0\n\t"                                             \
    "vmovaps 64(%[b]), %%zmm1\n\t"                                           \
    BODY                                                                     \
    "add $" #ASTEP ", %[a]\n\t"                                              \
    "add $128, %[b]\n\t"                                                     \
    "dec %[k]\n\t"                                                           \
    "jnz 1b\n\t"                                                             \
    "2:\n\t"
#define LOOP_BF16(BODY, ASTEP)                                               \
    "test %[k], %[k]\n\t"                                                    \
    "jle 2f\n\t"                                                             \
    "1:\n\t"                                                                 \
    "vpmovzxwd (%[b]), %%zmm0\n\t"                                           \
    "vpmovzxwd 32(%[b]), %%zmm1\n\t"                                         \
    "vpslld $16, %%zmm0, %%zmm0\n\t"                                         \
    "vpslld $16, %%zmm1, %%zmm1\n\t"                                         \
    BODY                                                                     \
    "add $" #ASTEP ", %[a]\n\t"                                              \
    "add $64, %[b]\n\t"                                                      \
    "dec %[k]\n\t"                                                           \
    "jnz 1b\n\t"                                                             \
    "2:\n\t"

/* Full tiles update C in place: t = beta * c (or +0 when beta == 0, as the
 * contract says), c = fma(alpha, acc, t); zmm0 = alpha, zmm1 = beta. */
#define UPDATE_ROW(r0, r1, LOAD)                                             \
    LOAD("0")                                                                \
    "vfmadd231ps %%zmm" #r0 ", %%zmm0, %%zmm2\n\t"                           \
    "vmovups %%zmm2, (%[c])\n\t"                                             \
    LOAD("64")                                                               \
    "vfmadd231ps %%zmm" #r1 ", %%zmm0, %%zmm2\n\t"                           \
    "vmovups %%zmm2, 64(%[c])\n\t"                                           \
    "add %[ldc], %[c]\n\t"
#define LOAD_BETA(off) "vmulps " off "(%[c]), %%zmm1, %%zmm2\n\t"
#define LOAD_ZERO(off) "vpxord %%zmm2, %%zmm2, %%zmm2\n\t"
#define UPDATE_C(LOAD)                                                       \
    "vbroadcastss %[alpha], %%zmm0\n\t"                                      \
    "vbroadcastss %[beta], %%zmm1\n\t"                                       \
    UPDATE_ROW(8, 9, LOAD) UPDATE_ROW(10, 11, LOAD)                          \
    UPDATE_ROW(12, 13, LOAD) UPDATE_ROW(14, 15, LOAD)                        \
    UPDATE_ROW(16, 17, LOAD) UPDATE_ROW(18, 19, LOAD)                        \
    UPDATE_ROW(20, 21, LOAD) UPDATE_ROW(22, 23, LOAD)                        \
    UPDATE_ROW(24, 25, LOAD) UPDATE_ROW(26, 27, LOAD)                        \
    UPDATE_ROW(28, 29, LOAD) UPDATE_ROW(30, 31, LOAD)

#define KERNEL(LOOP, FINISH, tile)                                           \
    __asm__ volatile(ZERO_ACC LOOP FINISH                                    \
                     : [a] "+r"(a), [b] "+r"(b), [k] "+r"(k), [c] "+r"(c)    \
                     : [t] "r"(tile), [ldc] "r"(ldc * 4), [alpha] "m"(alpha),\
                       [beta] "m"(beta)                                      \
                     : CLOBBERS, "xmm2")

/* Prefetches the C tile so its lines arrive while the k loop runs. */
BK_TARGET_AVX512
static inline void prefetch_c(const float *c, long ldc)
{
    for (int i = 0; i < MR; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
    }
}

/* One micro-kernel per B precision and A layout: RS the A row stride and
 * ASTEP its step along k, in bytes. */
#define MICRO_KERNEL(name, LOOP, RS, ASTEP)                                   \
    BK_TARGET_AVX512                                                          \
    static void name(int k, const void *a, const void *b, float *c,          \
                     long ldc, int m, int n, float alpha, float beta)         \
    {                                                                         \
        if (m == MR && n == NR) {                                             \
            prefetch_c(c, ldc);                                               \
            if (beta == 0.0f)                                                 \
                KERNEL(LOOP(STEP_ROWS(RS), ASTEP), UPDATE_C(LOAD_ZERO), NULL);\
            else                                                              \
                KERNEL(LOOP(STEP_ROWS(RS), ASTEP), UPDATE_C(LOAD_BETA), NULL);\
            return;                                                           \
        }                                                                     \
        float tile[MR * NR] __attribute__((aligned(64)));                     \
        if (m <= SHORT_MR)                                                    \
            KERNEL(LOOP(STEP_SHORT_ROWS(RS), ASTEP), SAVE_ACC, tile);         \
        else                                                                  \
            KERNEL(LOOP(STEP_ROWS(RS), ASTEP), SAVE_ACC, tile);               \
        bk__merge_tile(tile, NR, c, ldc, m, n, alpha, beta);                  \
    }

MICRO_KERNEL(ukr_f32, LOOP_F32, 512, 4)
MICRO_KERNEL(ukr_bf16, LOOP_BF16, 512, 4)
MICRO_KERNEL(ukr_f32_kmajor, LOOP_F32, 4, 48)
MICRO_KERNEL(ukr_bf16_kmajor, LOOP_BF16, 4, 48)

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

/* Transposes 16 rows of 16 floats in registers (unpack pairs, unpack
 * quads, then two rounds of 128-bit lane shuffles). */
BK_TARGET_AVX512
static inline void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        for (int h = 0; h < 2; h++) {
            __m512d a = _mm512_castps_pd(t[4 * i + h]), b = _mm512_castps_pd(t[4 * i + 2 + h]);
            u[4 * i + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            u[4 * i + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    }
    /* u[4i + j], 128-bit lane k: rows 4i..4i+3 at element 4k + j. */
    for (int j = 0; j < 4; j++) {
        __m512 va = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
        __m512 vb = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
        __m512 wa = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        __m512 wb = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
        r[j] = _mm512_shuffle_f32x4(va, wa, 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(va, wa, 0xdd);
        r[4 + j] = _mm512_shuffle_f32x4(vb, wb, 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(vb, wb, 0xdd);
    }
}

/* One 32-column B micro-panel from columns stored as rows: 16 x 16 blocks
 * transposed in registers, the last block of p masked. */
BK_TARGET_AVX512
static void pack_columns(const float *src, int ld, int kc, int bf16, void *dst)
{
    for (int half = 0; half < 2; half++) {
        const float *s = src + (size_t)half * 16 * ld;
        for (int p = 0; p < kc; p += 16) {
            int n = kc - p < 16 ? kc - p : 16;
            __mmask16 valid = (__mmask16)((1u << n) - 1u);
            __m512 r[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_maskz_loadu_ps(valid, s + (size_t)i * ld + p);
            transpose16(r);
            for (int q = 0; q < n; q++) {
                size_t o = (size_t)(p + q) * NR + half * 16;
                if (bf16) {
                    __m512i b = _mm512_srli_epi32(round16(r[q]), 16);
                    _mm256_storeu_si256((__m256i *)((uint16_t *)dst + o), _mm512_cvtepi32_epi16(b));
                } else {
                    _mm512_storeu_ps((float *)dst + o, r[q]);
                }
            }
        }
    }
}

/* k-major A micro-panels (for ukr_*_kmajor) from rows stored as columns
 * (value (x, p) at src + p * ld + x): each k step's MR values are adjacent
 * in the source too, so a panel row is one masked load and store, the
 * missing rows of the last panel zero. */
BK_TARGET_AVX512
static void pack_kmajor(const float *src, int ld, int rows, int kc, int bf16, float *dst)
{
    for (int x0 = 0; x0 < rows; x0 += MR) {
        int have = rows - x0 < MR ? rows - x0 : MR;
        __mmask16 valid = (__mmask16)((1u << have) - 1u);
        float *panel = dst + (size_t)x0 * BK_KC;
        for (int p = 0; p < kc; p++) {
            __m512 v = _mm512_maskz_loadu_ps(valid, src + (size_t)p * ld + x0);
            if (bf16) v = _mm512_castsi512_ps(round16(v));
            _mm512_mask_storeu_ps(panel + (size_t)p * MR, (__mmask16)((1u << MR) - 1u), v);
        }
    }
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
    .tuning = &bk__tuning_avx512,
    .mr = MR, .nr = NR, .lanes = 16,
    .ukr = {ukr_f32, ukr_bf16},
    .ukr_kmajor = {ukr_f32_kmajor, ukr_bf16_kmajor},
    .fma_probe = fma_probe,
    .bf16_from_f32 = bf16_from_f32,
    .round_bf16 = round_bf16,
    .pack_columns = pack_columns,
    .pack_kmajor = pack_kmajor,
};
#endif
