/*
 * What the bf16 dot-product instructions of this CPU compute, against the
 * model the GEMM contract (CKernels.h, above bk_gemm) is written to.
 *
 *   cc -O2 -o bf16_hardware tools/bf16_hardware.c -lm && ./bf16_hardware
 *
 * The model is the contract's own dot step, bk__bf16_dot of
 * CKernels/internal.h, so a mismatch here is one of the kernels' oracle too.
 *
 * vdpbf16ps (AVX512_BF16): millions of random pairs over narrow and wide
 * exponent ranges, accumulators that cancel a product, and results crowded
 * around 2^-126, against "odd member first, each step fmaf, results below
 * 2^-126 (judged before denormalisation) flushed to zero of their sign",
 * and against the even-first order (subnormal accumulators read as zero):
 * the step the contract's chains are made of.
 * tdpbf16ps (AMX-BF16), when the CPU and the kernel offer it: 1, 2, 4 and
 * 16 pairs per instruction over exponent ranges up to the whole of bf16,
 * against the contract's group: a chain of those steps from zero over the
 * even members, one over the odd ones, their sum added to the accumulator,
 * each sum rounded and flushed. vcvtneps2bf16 (AVX512_BF16), the packers'
 * fp32 -> bf16 conversion on those paths: every float against bk__bf16.
 * Prints the mismatch counts; exits 1 when an
 * instruction disagrees with the contract's model, 2 when the CPU lacks
 * AVX512_BF16.
 */
#include "../CKernels/internal.h"

#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static float widen(uint16_t h) { return bk__float((uint32_t)h << 16); }
static float flush(float x) { return (bk__bits(x) & 0x7f800000u) ? x : bk__float(bk__bits(x) & 0x80000000u); }
static int same(float a, float b) { return bk__bits(a) == bk__bits(b) || (isnan(a) && isnan(b)); }

static uint64_t state = 88172645463325252ull;
static uint64_t next(void)
{
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return state;
}

/* A random normal bf16 with its exponent within `range` of 1's. */
static uint16_t random_bf16(int range)
{
    int e = 127 + (int)(next() % (2 * range + 1)) - range;
    e = e < 1 ? 1 : e > 254 ? 254 : e;
    return (uint16_t)((next() & 1) << 15 | e << 7 | (next() & 0x7f));
}

__attribute__((target("avx512f,avx512vl,avx512bf16")))
static float vdpbf16ps(float acc, uint16_t a0, uint16_t a1, uint16_t b0, uint16_t b1)
{
    __m128i a = _mm_set1_epi32((int)(a0 | (uint32_t)a1 << 16));
    __m128i b = _mm_set1_epi32((int)(b0 | (uint32_t)b1 << 16));
    return _mm_cvtss_f32(_mm_dpbf16_ps(_mm_set1_ps(acc), (__m128bh)a, (__m128bh)b));
}

static long check_vdpbf16ps(void)
{
    long n = 0, odd = 0, even = 0;
    for (long i = 0; i < 20000000; i++) {
        int range = (int[]){3, 20, 64, 126}[i % 4];
        uint16_t a0 = random_bf16(range), a1 = random_bf16(range);
        uint16_t b0 = random_bf16(range), b1 = random_bf16(range);
        float acc = 0.0f;
        switch (next() % 3) {
        case 1: acc = -(widen(a0) * widen(b0)) * (1.0f + (float)(next() % 64) * 0x1p-20f); break;
        case 2: acc = bk__float((uint32_t)(1 + next() % 8) << 23 | (next() & 0x807fffffu)); break;
        }
        float hw = vdpbf16ps(acc, a0, a1, b0, b1);
        /* A subnormal accumulator reads as zero (the GEMM never has one). */
        acc = flush(acc);
        float first_odd = bk__bf16_dot(widen(a0), widen(b0), bk__bf16_dot(widen(a1), widen(b1), acc));
        float first_even = bk__bf16_dot(widen(a1), widen(b1), bk__bf16_dot(widen(a0), widen(b0), acc));
        n++;
        odd += !same(hw, first_odd);
        even += !same(hw, first_even);
    }
    /* acc = 2^-126 + 2^-149 plus -1.5 2^-149: the exact 2^-126 - 2^-150,
     * which fmaf rounds up to 2^-126 and the flush judges tiny. */
    float acc = 0x1p-126f + 0x1p-149f;
    uint16_t x = (uint16_t)(bk__bits(-0x1.8p-75f) >> 16), y = (uint16_t)(bk__bits(0x1p-74f) >> 16);
    float hw = vdpbf16ps(acc, x, 0, y, 0);
    n++;
    odd += !same(hw, bk__bf16_dot(widen(x), widen(y), bk__bf16_dot(0, 0, acc)));
    printf("vdpbf16ps: %ld cases; mismatches: odd member first %ld, even first %ld; "
           "the 2^-126 - 2^-150 case gives %a\n", n, odd, even, hw);
    return odd;
}

/* ------------------------------------------------------------------ AMX -- */

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

__attribute__((target("amx-tile,amx-bf16")))
static void tdpbf16ps(int pairs, const uint16_t *a, const uint16_t *b, float *c)
{
    tile_config cfg = {.palette = 1};
    cfg.rows[0] = 16; cfg.colsb[0] = 64;
    cfg.rows[1] = 16; cfg.colsb[1] = (uint16_t)(4 * pairs);
    cfg.rows[2] = (uint8_t)pairs; cfg.colsb[2] = 64;
    _tile_loadconfig(&cfg);
    _tile_loadd(0, c, 64);
    _tile_loadd(1, a, 64);
    _tile_loadd(2, b, 64);
    _tile_dpbf16ps(0, 1, 2);
    _tile_stored(0, c, 64);
    _tile_release();
}

static int has_amx(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 22) & 1) || !((d >> 24) & 1)) return 0;
    /* Linux hands out the tile data state on request only. */
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
}

static long check_tdpbf16ps(int pairs)
{
    static uint16_t a[16 * 32], b[16 * 32];
    static float c[256], c0[256];
    long n = 0, wrong = 0;
    for (int trial = 0; trial < 8000; trial++) {
        int range = (int[]){3, 10, 30, 60, 126}[trial % 5];
        for (int i = 0; i < 16 * 32; i++) a[i] = random_bf16(range), b[i] = random_bf16(range);
        for (int i = 0; i < 256; i++)
            c0[i] = trial % 2 ? 0.0f : widen(random_bf16(range)) * widen(random_bf16(range));
        memcpy(c, c0, sizeof c);
        tdpbf16ps(pairs, a, b, c);
        for (int m = 0; m < 16; m++)
            for (int j = 0; j < 16; j++) {
                float e = 0.0f, o = 0.0f;
                for (int k = 0; k < pairs; k++) {
                    e = bk__bf16_dot(widen(a[m * 32 + 2 * k]), widen(b[k * 32 + 2 * j]), e);
                    o = bk__bf16_dot(widen(a[m * 32 + 2 * k + 1]), widen(b[k * 32 + 2 * j + 1]), o);
                }
                float model = bk__bf16_add(flush(c0[m * 16 + j]), bk__bf16_add(e, o));
                n++;
                wrong += !same(c[m * 16 + j], model);
            }
    }
    printf("tdpbf16ps, %2d pair(s) per instruction: %ld elements; mismatches with the contract's group %ld\n",
           pairs, n, wrong);
    return wrong;
}

/* vcvtneps2bf16 on every one of the 2^32 floats against bk__bf16 (nearest
 * even, the NaN guard, subnormals flushed to zero of their sign): the
 * conversion the AVX512_BF16 and AMX paths' packers use. */
__attribute__((target("avx512f,avx512bf16")))
static long check_vcvtneps2bf16(void)
{
    long wrong = 0;
    for (uint64_t base = 0; base < (1ull << 32); base += 16) {
        __m512i u = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)base),
                                     _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        __m256bh h = _mm512_cvtneps_pbh(_mm512_castsi512_ps(u));
        uint16_t got[16];
        memcpy(got, &h, sizeof got);
        for (int i = 0; i < 16; i++) wrong += got[i] != bk__bf16(bk__float((uint32_t)base + (uint32_t)i));
    }
    printf("vcvtneps2bf16: all 2^32 floats; mismatches with bk__bf16 %ld\n", wrong);
    return wrong;
}

int main(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1)) {
        printf("this CPU has no AVX512_BF16\n");
        return 2;
    }
    long wrong = check_vdpbf16ps() + check_vcvtneps2bf16();
    if (has_amx()) {
        for (int pairs = 1; pairs <= 16; pairs *= pairs < 4 ? 2 : 4) wrong += check_tdpbf16ps(pairs);
    } else {
        printf("no AMX-BF16 here (or the kernel refused the tile state)\n");
    }
    return wrong ? 1 : 0;
}
