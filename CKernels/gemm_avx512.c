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
 *
 * The bf16 kernels take K in pairs: the AVX-512 path emulates each pair
 * with two FMAs, the AVX512_BF16 path issues one vdpbf16ps, whose A pairs
 * are 32-bit words broadcast from memory like the fp32 values.
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

/* Row i of the tile: both halves get OP(A(i, p), (zmm0, zmm1)), A read at
 * OFF + i * RS bytes from %[a] and broadcast. OP is vfmadd231ps (fp32, and
 * bf16 emulated: A holds fp32 values) or vdpbf16ps (A holds bf16 pairs). In
 * the row-major A panel rows are BK_KC values apart and %[a] walks along p;
 * in the k-major one (a transposed A, see gemm.c) a step's MR values (or
 * pairs) are adjacent and %[a] walks MR of them a step. */
#define ROW(OP, OFF, RS, i, r0, r1)                                          \
    OP " " #OFF "+" #i "*" #RS "(%[a])%{1to16%}, %%zmm0, %%zmm" #r0 "\n\t"   \
    OP " " #OFF "+" #i "*" #RS "(%[a])%{1to16%}, %%zmm1, %%zmm" #r1 "\n\t"
#define STEP_ROWS(OP, OFF, RS)                                               \
    ROW(OP, OFF, RS, 0, 8, 9) ROW(OP, OFF, RS, 1, 10, 11)                    \
    ROW(OP, OFF, RS, 2, 12, 13) ROW(OP, OFF, RS, 3, 14, 15)                  \
    ROW(OP, OFF, RS, 4, 16, 17) ROW(OP, OFF, RS, 5, 18, 19)                  \
    ROW(OP, OFF, RS, 6, 20, 21) ROW(OP, OFF, RS, 7, 22, 23)                  \
    ROW(OP, OFF, RS, 8, 24, 25) ROW(OP, OFF, RS, 9, 26, 27)                  \
    ROW(OP, OFF, RS, 10, 28, 29) ROW(OP, OFF, RS, 11, 30, 31)
/* The first SHORT_MR rows only: tiles of up to that many rows (batch-1
 * linears, Winograd on small images) skip the FMAs of absent rows. */
#define SHORT_MR 4
#define STEP_SHORT_ROWS(OP, OFF, RS)                                         \
    ROW(OP, OFF, RS, 0, 8, 9) ROW(OP, OFF, RS, 1, 10, 11)                    \
    ROW(OP, OFF, RS, 2, 12, 13) ROW(OP, OFF, RS, 3, 14, 15)

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

/* The k loops. fp32: one B row into zmm0-zmm1 per step, then STEPS(OP,
 * OFF) with OFF = 0. bf16, emulated: a pair of steps per iteration from one
 * row of B words (zmm2-zmm3): their high halves, the low ones cleared, are
 * the odd step's fp32 values, their low halves shifted up the even step's;
 * the odd step goes first, its A values ODD bytes further on, as the
 * contract orders a pair. The FMAs skip the contract's flush, which the
 * driver leaves to bk__ukr_bf16_exact for tiles that need it (gemm.c).
 * bf16 on the dot instruction: one row of B words per pair, STEPS once. */
#define LOOP_F32(STEPS, ASTEP)                                               \
    "test %[k], %[k]\n\t"                                                    \
    "jle 2f\n\t"                                                             \
    "1:\n\t"                                                                 \
    "vmovaps (%[b]), %%zmm0\n\t"                                             \
    "vmovaps 64(%[b]), %%zmm1\n\t"                                           \
    STEPS("vfmadd231ps", 0)                                                  \
    "add $" #ASTEP ", %[a]\n\t"                                              \
    "add $128, %[b]\n\t"                                                     \
    "dec %[k]\n\t"                                                           \
    "jnz 1b\n\t"                                                             \
    "2:\n\t"
#define LOOP_BF16_FMA(STEPS, ASTEP, ODD)                                     \
    "test %[k], %[k]\n\t"                                                    \
    "jle 2f\n\t"                                                             \
    "vpbroadcastd %[high], %%zmm4\n\t"                                       \
    "1:\n\t"                                                                 \
    "vmovdqa64 (%[b]), %%zmm2\n\t"                                           \
    "vmovdqa64 64(%[b]), %%zmm3\n\t"                                         \
    "vpandd %%zmm4, %%zmm2, %%zmm0\n\t"                                       \
    "vpandd %%zmm4, %%zmm3, %%zmm1\n\t"                                       \
    STEPS("vfmadd231ps", ODD)                                                \
    "vpslld $16, %%zmm2, %%zmm0\n\t"                                          \
    "vpslld $16, %%zmm3, %%zmm1\n\t"                                          \
    STEPS("vfmadd231ps", 0)                                                  \
    "add $" #ASTEP ", %[a]\n\t"                                              \
    "add $128, %[b]\n\t"                                                     \
    "dec %[k]\n\t"                                                           \
    "jnz 1b\n\t"                                                             \
    "2:\n\t"
#define LOOP_BF16_DOT(STEPS, ASTEP)                                          \
    "test %[k], %[k]\n\t"                                                    \
    "jle 2f\n\t"                                                             \
    "1:\n\t"                                                                 \
    "vmovdqa64 (%[b]), %%zmm0\n\t"                                           \
    "vmovdqa64 64(%[b]), %%zmm1\n\t"                                         \
    STEPS("vdpbf16ps", 0)                                                    \
    "add $" #ASTEP ", %[a]\n\t"                                              \
    "add $128, %[b]\n\t"                                                     \
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
                       [beta] "m"(beta), [high] "m"(high)                    \
                     : CLOBBERS, "xmm2", "xmm3", "xmm4")

/* Prefetches the C tile so its lines arrive while the k loop runs. */
BK_TARGET_AVX512
static inline void prefetch_c(const float *c, long ldc)
{
    for (int i = 0; i < MR; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
    }
}

/* One micro-kernel per B precision and A layout: LOOP(STEPS) the k loop
 * around the per-step rows STEPS(OP, OFF), and STEPS_SHORT for short tiles.
 * A bf16 k is counted in pairs. */
#define MICRO_KERNEL(TARGET, name, PAIRS, LOOP, STEPS, STEPS_SHORT)           \
    TARGET static void name(int k, const void *a, const void *b, float *c,   \
                            long ldc, int m, int n, float alpha, float beta) \
    {                                                                         \
        const uint32_t high = 0xffff0000u;                                    \
        if (PAIRS) k = (k + 1) / 2;                                           \
        if (m == MR && n == NR) {                                             \
            prefetch_c(c, ldc);                                               \
            if (beta == 0.0f)                                                 \
                KERNEL(LOOP(STEPS), UPDATE_C(LOAD_ZERO), NULL);               \
            else                                                              \
                KERNEL(LOOP(STEPS), UPDATE_C(LOAD_BETA), NULL);               \
            return;                                                           \
        }                                                                     \
        float tile[MR * NR] __attribute__((aligned(64)));                     \
        if (m <= SHORT_MR)                                                    \
            KERNEL(LOOP(STEPS_SHORT), SAVE_ACC, tile);                        \
        else                                                                  \
            KERNEL(LOOP(STEPS), SAVE_ACC, tile);                              \
        bk__merge_tile(tile, NR, c, ldc, m, n, alpha, beta);                  \
    }

/* A row-major A panel (rows BK_KC values apart) and a k-major one (MR
 * values a k step), by value size; and the k loops over them. */
#define ROWS_F32(OP, OFF) STEP_ROWS(OP, OFF, 512)
#define SHORT_F32(OP, OFF) STEP_SHORT_ROWS(OP, OFF, 512)
#define ROWS_F32_KM(OP, OFF) STEP_ROWS(OP, OFF, 4)
#define SHORT_F32_KM(OP, OFF) STEP_SHORT_ROWS(OP, OFF, 4)
#define ROWS_BF16(OP, OFF) STEP_ROWS(OP, OFF, 256)
#define SHORT_BF16(OP, OFF) STEP_SHORT_ROWS(OP, OFF, 256)
#define ROWS_BF16_KM(OP, OFF) STEP_ROWS(OP, OFF, 4)
#define SHORT_BF16_KM(OP, OFF) STEP_SHORT_ROWS(OP, OFF, 4)
#define F32_LOOP(S) LOOP_F32(S, 4)
#define F32_LOOP_KM(S) LOOP_F32(S, 48)
#define EMULATED_LOOP(S) LOOP_BF16_FMA(S, 8, 4)
#define EMULATED_LOOP_KM(S) LOOP_BF16_FMA(S, 96, 48)
#define DOT_LOOP(S) LOOP_BF16_DOT(S, 4)
#define DOT_LOOP_KM(S) LOOP_BF16_DOT(S, 48)

MICRO_KERNEL(BK_TARGET_AVX512, ukr_f32, 0, F32_LOOP, ROWS_F32, SHORT_F32)
MICRO_KERNEL(BK_TARGET_AVX512, ukr_f32_kmajor, 0, F32_LOOP_KM, ROWS_F32_KM, SHORT_F32_KM)
MICRO_KERNEL(BK_TARGET_AVX512, ukr_bf16, 1, EMULATED_LOOP, ROWS_F32, SHORT_F32)
MICRO_KERNEL(BK_TARGET_AVX512, ukr_bf16_kmajor, 1, EMULATED_LOOP_KM, ROWS_F32_KM, SHORT_F32_KM)
MICRO_KERNEL(BK_TARGET_AVX512_BF16, ukr_bf16_dot, 1, DOT_LOOP, ROWS_BF16, SHORT_BF16)
MICRO_KERNEL(BK_TARGET_AVX512_BF16, ukr_bf16_dot_kmajor, 1, DOT_LOOP_KM, ROWS_BF16_KM,
             SHORT_BF16_KM)

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

/* Independent vdpbf16ps chains; the pairs (1, 2^-20) keep the sums finite. */
BK_TARGET_AVX512_BF16
static void bf16_probe(long iterations, float *sink)
{
    __m512 x[BK_PROBE_CHAINS];
    const __m512bh s = (__m512bh)_mm512_set1_epi32(0x35803f80), t = s;
    for (int i = 0; i < BK_PROBE_CHAINS; i++) x[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iterations; it++)
        for (int i = 0; i < BK_PROBE_CHAINS; i++) x[i] = _mm512_dpbf16_ps(x[i], s, t);
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
 * transposed in registers, the last block of p masked (its missing rows,
 * the zero after an odd kc among them, load as zeros). bf16 rows go out in
 * pairs, as words of (even, odd) bf16 bits. */
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
            if (bf16) {
                for (int q = 0; q < (n + 1) / 2; q++) {
                    __m512i lo = _mm512_srli_epi32(round16(r[2 * q]), 16);
                    __m512i w = _mm512_or_si512(lo, round16(r[2 * q + 1]));
                    _mm512_storeu_si512((uint32_t *)dst + (size_t)(p / 2 + q) * NR + half * 16, w);
                }
                continue;
            }
            for (int q = 0; q < n; q++)
                _mm512_storeu_ps((float *)dst + (size_t)(p + q) * NR + half * 16, r[q]);
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

/* Interleaves two rows of n floats into n words of (r0, r1) bf16 bits, r0
 * in the low half; a NULL r1 reads as zeros. */
BK_TARGET_AVX512
static void pack_pairs(const float *r0, const float *r1, int n, uint32_t *dst)
{
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i lo = _mm512_srli_epi32(round16(_mm512_loadu_ps(r0 + i)), 16);
        __m512i hi = r1 ? round16(_mm512_loadu_ps(r1 + i)) : _mm512_setzero_si512();
        _mm512_storeu_si512(dst + i, _mm512_or_si512(lo, hi));
    }
    for (; i < n; i++)
        dst[i] = bk__bf16_pair(r0[i], r1 ? r1[i] : 0.0f);
}

/* What the two AVX-512 tables share: all but the bf16 micro-kernels. */
#define AVX512_SHARED                                                      \
    .tuning = &bk__tuning_avx512, .mr = MR, .nr = NR, .lanes = 16,         \
    .fma_probe = fma_probe, .bf16_from_f32 = bf16_from_f32,                \
    .round_bf16 = round_bf16, .pack_columns = pack_columns,                \
    .pack_kmajor = pack_kmajor, .pack_pairs = pack_pairs

const bk_kernels bk__kernels_avx512 = {
    .isa = BK_ISA_AVX512,
    AVX512_SHARED,
    .ukr = {ukr_f32, ukr_bf16},
    .ukr_kmajor = {ukr_f32_kmajor, ukr_bf16_kmajor},
    .dot_bf16 = 0,
};

/* The AVX-512 path with the bf16 products on vdpbf16ps: everything else,
 * the fp32 kernels and the packed layouts of B included, is shared. */
const bk_kernels bk__kernels_avx512bf16 = {
    .isa = BK_ISA_AVX512_BF16,
    AVX512_SHARED,
    .ukr = {ukr_f32, ukr_bf16_dot},
    .ukr_kmajor = {ukr_f32_kmajor, ukr_bf16_dot_kmajor},
    .dot_bf16 = 1,
    .bf16_probe = bf16_probe,
};
#endif
