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
 * The bf16 kernels keep three accumulators an element (a group's even and
 * odd chains and the pass's sum, see the contract in CKernels.h), so they
 * run the tile six rows at a time, in C, the sums in a stack tile: the
 * AVX-512 path emulates each step with an FMA, the AVX512_BF16 path runs two
 * steps of a chain with one vdpbf16ps, whose A words broadcast from memory
 * like the fp32 values.
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

/* The k loop: one B row into zmm0-zmm1 per step, then STEPS(OP, 0). */
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

/* The fp32 micro-kernel of an A layout: LOOP(STEPS) the k loop around the
 * per-step rows STEPS(OP, OFF), and STEPS_SHORT for short tiles. */
#define MICRO_KERNEL(name, LOOP, STEPS, STEPS_SHORT)                          \
    BK_TARGET_AVX512 static void name(int k, const void *a, const void *b,   \
                                      float *c, long ldc, int m, int n,      \
                                      float alpha, float beta)               \
    {                                                                         \
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
 * values a k step), and the k loops over them. */
#define ROWS_F32(OP, OFF) STEP_ROWS(OP, OFF, 512)
#define SHORT_F32(OP, OFF) STEP_SHORT_ROWS(OP, OFF, 512)
#define ROWS_F32_KM(OP, OFF) STEP_ROWS(OP, OFF, 4)
#define SHORT_F32_KM(OP, OFF) STEP_SHORT_ROWS(OP, OFF, 4)
#define F32_LOOP(S) LOOP_F32(S, 4)
#define F32_LOOP_KM(S) LOOP_F32(S, 48)

MICRO_KERNEL(ukr_f32, F32_LOOP, ROWS_F32, SHORT_F32)
MICRO_KERNEL(ukr_f32_kmajor, F32_LOOP_KM, ROWS_F32_KM, SHORT_F32_KM)

/*
 * bf16: rows [r0, r0 + 6) of the tile at a time, the pass's sums in the
 * stack tile. Per group, CHAINS(g) leaves the even chain in e and the odd
 * one in o; then tile += e + o, through FLUSH where the sums can be tiny.
 * Emulated: per natural pair, the even step from the B words' low halves
 * shifted up (exactly its fp32 values), the odd one from their high halves,
 * the low ones cleared; A's odd step is one float further along a row-major
 * row, MR further k-major. The FMAs skip the contract's flush, which tiles
 * with operands that are not plain take to bk__ukr_bf16_exact (see gemm.c),
 * and so do the sums. Dot: chain pairs, the group's first BK_KG/4 words
 * into e, the rest into o; vdpbf16ps flushes its results, and FLUSH the
 * sums.
 */
#define BF16_ROWS 6
#define BF16_KERNEL(TARGET, name, CHAINS, FLUSH)                              \
    TARGET static void name(int k, const void *a, const void *b, float *c,   \
                            long ldc, int m, int n, float alpha, float beta) \
    {                                                                         \
        float tile[MR * NR] __attribute__((aligned(64)));                     \
        for (int r0 = 0; r0 < m; r0 += BF16_ROWS) {                           \
            float *t = tile + r0 * NR;                                        \
            for (int i = 0; i < BF16_ROWS * 2; i++)                           \
                _mm512_store_ps(t + 16 * i, _mm512_setzero_ps());             \
            for (int g = 0; g < bk__bf16_depth(k); g += BK_KG) {             \
                __m512 e[BF16_ROWS][2], o[BF16_ROWS][2];                      \
                for (int i = 0; i < BF16_ROWS; i++)                           \
                    e[i][0] = e[i][1] = o[i][0] = o[i][1] = _mm512_setzero_ps(); \
                CHAINS(g)                                                     \
                for (int i = 0; i < BF16_ROWS; i++)                           \
                    for (int h = 0; h < 2; h++) {                             \
                        float *ti = t + i * NR + 16 * h;                      \
                        __m512 s = FLUSH(_mm512_add_ps(e[i][h], o[i][h]));    \
                        _mm512_store_ps(ti, FLUSH(_mm512_add_ps(_mm512_load_ps(ti), s))); \
                    }                                                         \
            }                                                                 \
        }                                                                     \
        bk__merge_tile32(tile, c, ldc, m, n, alpha, beta);                    \
    }

/* The top-left m x n of a 32-column tile into C, whole rows as vectors. */
BK_TARGET_AVX512
void bk__merge_tile32(const float *tile, float *c, long ldc, int m, int n,
                      float alpha, float beta)
{
    if (n != 32) {
        bk__merge_tile(tile, 32, c, ldc, m, n, alpha, beta);
        return;
    }
    if (alpha == 1.0f && beta == 1.0f) {
        /* Every pass after a GEMM's first: fmaf(1, acc, 1 * c) is acc + c,
         * signed zeros included. */
        for (int i = 0; i < m; i++)
            for (int h = 0; h < 2; h++) {
                float *p = c + i * ldc + 16 * h;
                _mm512_storeu_ps(p, _mm512_add_ps(_mm512_load_ps(tile + i * 32 + 16 * h), _mm512_loadu_ps(p)));
            }
        return;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < m; i++)
        for (int h = 0; h < 2; h++) {
            float *p = c + i * ldc + 16 * h;
            __m512 t = beta == 0.0f ? _mm512_setzero_ps() : _mm512_mul_ps(vb, _mm512_loadu_ps(p));
            _mm512_storeu_ps(p, _mm512_fmadd_ps(va, _mm512_load_ps(tile + i * 32 + 16 * h), t));
        }
}

#define NO_FLUSH(x) (x)
/* Subnormal lanes to zero of their sign: the sums of the dot path are exact
 * when subnormal (both terms are multiples of 2^-149), so this is the
 * contract's flush. */
#define FLUSH_TINY(x) flush_tiny(x)
BK_TARGET_AVX512
static inline __m512 flush_tiny(__m512 x)
{
    __mmask16 tiny = _mm512_fpclass_ps_mask(x, 0x20);
    return _mm512_mask_and_ps(x, tiny, x, _mm512_set1_ps(-0.0f));
}

#define EMULATED_CHAINS(ROW, STEP)                                            \
    for (int p = g; p < g + BK_KG; p += 2) {                                  \
        const uint32_t *w = (const uint32_t *)b + (size_t)p / 2 * NR;         \
        __m512i w0 = _mm512_load_si512(w), w1 = _mm512_load_si512(w + 16);    \
        __m512 lo0 = _mm512_castsi512_ps(_mm512_slli_epi32(w0, 16));          \
        __m512 lo1 = _mm512_castsi512_ps(_mm512_slli_epi32(w1, 16));          \
        __m512i high = _mm512_set1_epi32((int)0xffff0000u);                   \
        __m512 hi0 = _mm512_castsi512_ps(_mm512_and_si512(w0, high));         \
        __m512 hi1 = _mm512_castsi512_ps(_mm512_and_si512(w1, high));         \
        for (int i = 0; i < BF16_ROWS; i++) {                                 \
            const float *ai = (const float *)a + (r0 + i) * ROW + p * STEP;   \
            __m512 a0 = _mm512_set1_ps(ai[0]), a1 = _mm512_set1_ps(ai[STEP]); \
            e[i][0] = _mm512_fmadd_ps(a0, lo0, e[i][0]);                      \
            e[i][1] = _mm512_fmadd_ps(a0, lo1, e[i][1]);                      \
            o[i][0] = _mm512_fmadd_ps(a1, hi0, o[i][0]);                      \
            o[i][1] = _mm512_fmadd_ps(a1, hi1, o[i][1]);                      \
        }                                                                     \
    }
#define DOT_CHAIN(acc, q0, ROW, STEP)                                         \
    for (int q = q0; q < q0 + BK_KG / 4; q++) {                               \
        const uint32_t *w = (const uint32_t *)b + (size_t)q * NR;             \
        __m512bh w0 = (__m512bh)_mm512_load_si512(w);                         \
        __m512bh w1 = (__m512bh)_mm512_load_si512(w + 16);                    \
        for (int i = 0; i < BF16_ROWS; i++) {                                 \
            uint32_t word = ((const uint32_t *)a)[(r0 + i) * ROW + q * STEP]; \
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)word);             \
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, w0);                  \
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, w1);                  \
        }                                                                     \
    }
#define DOT_CHAINS(ROW, STEP)                                                 \
    DOT_CHAIN(e, g / 2, ROW, STEP)                                            \
    DOT_CHAIN(o, g / 2 + BK_KG / 4, ROW, STEP)

#define EMULATED_ROWS(g) EMULATED_CHAINS(BK_KC, 1)
#define EMULATED_KMAJOR(g) EMULATED_CHAINS(1, MR)
#define DOT_ROWS(g) DOT_CHAINS(BK_KC / 2, 1)
#define DOT_KMAJOR(g) DOT_CHAINS(1, MR)

BF16_KERNEL(BK_TARGET_AVX512, ukr_bf16, EMULATED_ROWS, NO_FLUSH)
BF16_KERNEL(BK_TARGET_AVX512, ukr_bf16_kmajor, EMULATED_KMAJOR, NO_FLUSH)
BF16_KERNEL(BK_TARGET_AVX512_BF16, ukr_bf16_dot, DOT_ROWS, FLUSH_TINY)
BF16_KERNEL(BK_TARGET_AVX512_BF16, ukr_bf16_dot_kmajor, DOT_KMAJOR, FLUSH_TINY)

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

/* The bf16 bits of 16 floats, rounded to nearest even with the NaN guard and
 * the flush of subnormals (bk__bf16). With hw, vcvtneps2bf16, which computes
 * exactly that (tools/bf16_hardware.c checks all 2^32 inputs); without, integer
 * arithmetic for AVX-512 CPUs that lack it. The packers below take hw as a
 * constant from their wrappers (PACKERS), so each wrapper holds one of the
 * two, and only the tables of paths with the instruction name the hw ones. */
BK_TARGET_AVX512_BF16
static inline __attribute__((always_inline)) __m256i bf16x16(__m512 x, int hw)
{
    if (hw) return (__m256i)_mm512_cvtneps_pbh(x);
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    __mmask16 tiny = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_and_epi32(r, tiny, u, _mm512_set1_epi32((int)0x80000000u));
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

/* The same, each bf16 in the high half of a 32-bit lane (a float's bits). */
BK_TARGET_AVX512_BF16
static inline __attribute__((always_inline)) __m512i hi16(__m512 x, int hw)
{
    return _mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16x16(x, hw)), 16);
}

/* Words of (lo, hi) bf16 pairs, lo in the low half. */
BK_TARGET_AVX512_BF16
static inline __attribute__((always_inline)) __m512i pair16(__m512 lo, __m512 hi, int hw)
{
    return _mm512_or_si512(_mm512_cvtepu16_epi32(bf16x16(lo, hw)), hi16(hi, hw));
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
 * transposed in registers, the last block of p masked (its missing rows
 * load as zeros). bf16 (1: natural pairs, 2: chain pairs, see
 * bk__pair_steps) runs on to whole groups and goes out in words of two
 * rows' bf16 bits. */
BK_TARGET_AVX512_BF16
static inline __attribute__((always_inline)) void
pack_columns_body(const float *src, int ld, int kc, int bf16, void *dst, int hw)
{
    int depth = bf16 ? bk__bf16_depth(kc) : kc;
    for (int half = 0; half < 2; half++) {
        const float *s = src + (size_t)half * 16 * ld;
        for (int p = 0; p < depth; p += 16) {
            int n = kc - p < 0 ? 0 : kc - p < 16 ? kc - p : 16;
            __mmask16 valid = (__mmask16)((1u << n) - 1u);
            __m512 r[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_maskz_loadu_ps(valid, s + (size_t)i * ld + p);
            transpose16(r);
            for (int q = 0; q < 8 && bf16; q++) {
                /* The block's q-th word: natural ones are consecutive; of
                 * chain pairs it holds four words of its group's even chain
                 * and four of the odd one. */
                int at = p / 2 + q, lo, hi;
                if (bf16 == 2)
                    at = p / BK_KG * (BK_KG / 2) + q / 4 * (BK_KG / 4) + (p % BK_KG) / 4 + q % 4;
                bk__pair_steps(bf16 == 2, at, &lo, &hi);
                lo -= p;
                hi -= p;
                _mm512_storeu_si512((uint32_t *)dst + (size_t)at * NR + half * 16, pair16(r[lo], r[hi], hw));
            }
            for (int q = 0; q < n && !bf16; q++)
                _mm512_storeu_ps((float *)dst + (size_t)(p + q) * NR + half * 16, r[q]);
        }
    }
}

/* Rows [0, rows) of a transposed A (value (x, p) at src + p * ld + x) as
 * bf16 rows BK_KC apart, kc values each: 16 x 16 blocks transposed in
 * registers, the AMX path's gather (AMX implies AVX512_BF16). */
BK_TARGET_AVX512_BF16
static void pack_rows_bf16(const float *src, int ld, int rows, int kc, uint16_t *dst)
{
    for (int x0 = 0; x0 < rows; x0 += 16) {
        int nx = rows - x0 < 16 ? rows - x0 : 16;
        __mmask16 xs = (__mmask16)((1u << nx) - 1u);
        for (int p0 = 0; p0 < kc; p0 += 16) {
            int np = kc - p0 < 16 ? kc - p0 : 16;
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < np ? _mm512_maskz_loadu_ps(xs, src + (size_t)(p0 + i) * ld + x0)
                              : _mm512_setzero_ps();
            transpose16(r);
            for (int j = 0; j < nx; j++) {
                __m256i h = bf16x16(r[j], 1);
                _mm256_mask_storeu_epi16(dst + (size_t)(x0 + j) * BK_KC + p0, (__mmask16)((1u << np) - 1u), h);
            }
        }
    }
}

/* k-major A micro-panels (for ukr_*_kmajor) from rows stored as columns
 * (value (x, p) at src + p * ld + x): each k step's MR values are adjacent
 * in the source too, so a panel row is one masked load and store, the
 * missing rows of the last panel zero. */
BK_TARGET_AVX512_BF16
static inline __attribute__((always_inline)) void
pack_kmajor_body(const float *src, int ld, int rows, int kc, int bf16, float *dst, int hw)
{
    for (int x0 = 0; x0 < rows; x0 += MR) {
        int have = rows - x0 < MR ? rows - x0 : MR;
        __mmask16 valid = (__mmask16)((1u << have) - 1u);
        float *panel = dst + (size_t)x0 * BK_KC;
        for (int p = 0; p < kc; p++) {
            __m512 v = _mm512_maskz_loadu_ps(valid, src + (size_t)p * ld + x0);
            if (bf16) v = _mm512_castsi512_ps(hi16(v, hw));
            _mm512_mask_storeu_ps(panel + (size_t)p * MR, (__mmask16)((1u << MR) - 1u), v);
        }
    }
}

BK_TARGET_AVX512_BF16
static inline __attribute__((always_inline)) void
bf16_from_f32_body(const float *x, uint16_t *y, size_t n, int hw)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), bf16x16(_mm512_loadu_ps(x + i), hw));
    for (; i < n; i++) y[i] = bk__bf16(x[i]);
}

BK_TARGET_AVX512_BF16
static inline __attribute__((always_inline)) void
round_bf16_body(const float *x, float *y, size_t n, int hw)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_castsi512_ps(hi16(_mm512_loadu_ps(x + i), hw)));
    for (; i < n; i++) y[i] = bk__bf16_round(x[i]);
}

/* Interleaves two rows of n floats into n words of (r0, r1) bf16 bits, r0
 * in the low half; a NULL row reads as zeros. */
BK_TARGET_AVX512_BF16
static inline __attribute__((always_inline)) void
pack_pairs_body(const float *r0, const float *r1, int n, uint32_t *dst, int hw)
{
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 lo = r0 ? _mm512_loadu_ps(r0 + i) : _mm512_setzero_ps();
        __m512 hi = r1 ? _mm512_loadu_ps(r1 + i) : _mm512_setzero_ps();
        _mm512_storeu_si512(dst + i, pair16(lo, hi, hw));
    }
    for (; i < n; i++)
        dst[i] = bk__bf16_pair(r0 ? r0[i] : 0.0f, r1 ? r1[i] : 0.0f);
}

/* The packers as the tables take them, converting in software (sw) or with
 * vcvtneps2bf16 (hw). */
#define PACKERS(V, hw)                                                            \
    BK_TARGET_AVX512_BF16 static void pack_columns_##V(const float *src, int ld, \
                                                        int kc, int bf16, void *dst) \
    { pack_columns_body(src, ld, kc, bf16, dst, hw); }                            \
    BK_TARGET_AVX512_BF16 static void pack_kmajor_##V(const float *src, int ld, int rows, \
                                                       int kc, int bf16, float *dst) \
    { pack_kmajor_body(src, ld, rows, kc, bf16, dst, hw); }                       \
    BK_TARGET_AVX512_BF16 static void bf16_from_f32_##V(const float *x, uint16_t *y, size_t n) \
    { bf16_from_f32_body(x, y, n, hw); }                                          \
    BK_TARGET_AVX512_BF16 static void round_bf16_##V(const float *x, float *y, size_t n) \
    { round_bf16_body(x, y, n, hw); }                                             \
    BK_TARGET_AVX512_BF16 static void pack_pairs_##V(const float *r0, const float *r1, \
                                                      int n, uint32_t *dst)       \
    { pack_pairs_body(r0, r1, n, dst, hw); }
PACKERS(sw, 0)
PACKERS(hw, 1)

/* What the AVX-512 tables share: the fp32 kernels and the packers. */
#define AVX512_SHARED(V)                                                   \
    .tuning = &bk__tuning_avx512, .lanes = 16,                             \
    .fma_probe = fma_probe, .bf16_from_f32 = bf16_from_f32_##V,            \
    .round_bf16 = round_bf16_##V, .pack_columns = pack_columns_##V,        \
    .pack_kmajor = pack_kmajor_##V, .pack_pairs = pack_pairs_##V

const bk_kernels bk__kernels_avx512 = {
    .isa = BK_ISA_AVX512,
    AVX512_SHARED(sw),
    .mr = {MR, MR}, .nr = {NR, NR},
    .ukr = {ukr_f32, ukr_bf16},
    .ukr_kmajor = {ukr_f32_kmajor, ukr_bf16_kmajor},
};

/* The AVX-512 path with the bf16 products on vdpbf16ps, in chain pairs. */
const bk_kernels bk__kernels_avx512bf16 = {
    .isa = BK_ISA_AVX512_BF16,
    AVX512_SHARED(hw),
    .mr = {MR, MR}, .nr = {NR, NR},
    .ukr = {ukr_f32, ukr_bf16_dot},
    .ukr_kmajor = {ukr_f32_kmajor, ukr_bf16_dot_kmajor},
    .dot_bf16 = 1,
    .chain_pairs = 1,
    .bf16_probe = bf16_probe,
    .bf16_probe_ops = 4.0 * 16 * BK_PROBE_CHAINS,
};

/* The AVX-512 path with the bf16 products on AMX tiles (gemm_amx.c), which
 * read A by rows only: a transposed A is gathered into rows. */
const bk_kernels bk__kernels_amx = {
    .isa = BK_ISA_AMX_BF16,
    AVX512_SHARED(hw),
    .mr = {MR, 32}, .nr = {NR, 32},
    .ukr = {ukr_f32, bk__ukr_amx_bf16},
    .ukr_finish = bk__amx_finish,
    .ukr_kmajor = {ukr_f32_kmajor, NULL},
    .pack_rows_bf16 = pack_rows_bf16,
    .dot_bf16 = 1,
    .bf16_probe = bk__amx_probe,
    .bf16_probe_ops = 4.0 * 2 * 16 * 16 * BK_KG,
};
#endif
