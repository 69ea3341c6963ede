/*
 * CPU feature detection, the kernel table of each instruction-set path, the
 * FMA and bf16 probes and per-thread workspaces.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#ifdef BK_X86
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

void bk_cpu_detect(bk_cpu_features *f)
{
    memset(f, 0, sizeof *f);
#ifdef BK_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned max_leaf = a;
    memcpy(f->vendor + 0, &b, 4);
    memcpy(f->vendor + 4, &d, 4);
    memcpy(f->vendor + 8, &c, 4);

    __get_cpuid(1, &a, &b, &c, &d);
    f->sse2 = (d >> 26) & 1;
    f->fma = (c >> 12) & 1;
    f->f16c = (c >> 29) & 1;
    int osxsave = (c >> 27) & 1;
    int avx = (c >> 28) & 1;
    /* XCR0: bits 1-2 SSE/AVX state; 5-7 opmask, ZMM_Hi256, Hi16_ZMM. */
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    f->os_ymm = (xcr0 & 0x6) == 0x6;
    f->os_zmm = f->os_ymm && (xcr0 & 0xe0) == 0xe0;
    f->avx = avx && f->os_ymm;

    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f->avx2 = f->avx && ((b >> 5) & 1);
        f->avx512f = f->os_zmm && ((b >> 16) & 1);
        f->avx512dq = f->os_zmm && ((b >> 17) & 1);
        f->avx512bw = f->os_zmm && ((b >> 30) & 1);
        f->avx512vl = f->os_zmm && ((b >> 31) & 1);
        /* AMX-BF16 and AMX-TILE, XCR0's XTILECFG and XTILEDATA, and the
         * process's permission to use them. */
        f->amx_bf16 = ((d >> 22) & 1) && ((d >> 24) & 1) &&
                      (xcr0 & 0x60000) == 0x60000 && bk__amx_permitted();
        __cpuid_count(7, 1, a, b, c, d);
        f->avx512_bf16 = f->os_zmm && ((a >> 5) & 1);
    }
    f->fma = f->fma && f->os_ymm;
    f->f16c = f->f16c && f->os_ymm;

    if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
        unsigned r[12];
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &r[4 * i], &r[4 * i + 1],
                        &r[4 * i + 2], &r[4 * i + 3]);
        memcpy(f->brand, r, 48);
        f->brand[48] = 0;
    }
#endif
}

bk_isa bk_isa_best(void)
{
    bk_cpu_features f;
    bk_cpu_detect(&f);
    if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma) {
        if (f.avx512_bf16 && f.amx_bf16) return BK_ISA_AMX_BF16;
        return f.avx512_bf16 ? BK_ISA_AVX512_BF16 : BK_ISA_AVX512;
    }
    if (f.avx2 && f.fma && f.f16c) return BK_ISA_AVX2;
    return BK_ISA_SCALAR;
}

const char *bk_isa_name(bk_isa isa)
{
    switch (isa) {
    case BK_ISA_AMX_BF16: return "amx";
    case BK_ISA_AVX512_BF16: return "avx512bf16";
    case BK_ISA_AVX512: return "avx512";
    case BK_ISA_AVX2: return "avx2";
    default: return "scalar";
    }
}

int bk_isa_parse(const char *name)
{
    if (!name) return -1;
    for (int i = BK_ISA_SCALAR; i <= BK_ISA_AMX_BF16; i++)
        if (strcmp(name, bk_isa_name((bk_isa)i)) == 0) return i;
    return -1;
}

const bk_kernels *bk__kernels_for(bk_isa isa)
{
#ifdef BK_X86
    if (isa == BK_ISA_AMX_BF16) return &bk__kernels_amx;
    if (isa == BK_ISA_AVX512_BF16) return &bk__kernels_avx512bf16;
    if (isa == BK_ISA_AVX512) return &bk__kernels_avx512;
    if (isa == BK_ISA_AVX2) return &bk__kernels_avx2;
#endif
    (void)isa;
    return &bk__kernels_generic;
}

double bk_fma_probe(long iterations, int threads)
{
    const bk_kernels *kr = bk__ctx().kr;
    threads = bk__clamp_threads(threads < 1 ? 1 : threads);
#pragma omp parallel num_threads(threads)
    {
        float sink[64];
        kr->fma_probe(iterations, sink);
    }
    return 2.0 * kr->lanes * BK_PROBE_CHAINS * (double)iterations * threads;
}

double bk_bf16_probe(long iterations, int threads)
{
    const bk_kernels *kr = bk__ctx().kr;
    if (!kr->bf16_probe) return bk_fma_probe(iterations, threads);
    threads = bk__clamp_threads(threads < 1 ? 1 : threads);
#pragma omp parallel num_threads(threads)
    {
        float sink[64];
        kr->bf16_probe(iterations, sink);
    }
    return kr->bf16_probe_ops * (double)iterations * threads;
}

#ifdef BK_X86
/* Seconds for the best of three runs of `probe` over `iterations` steps. */
static double probe_seconds(void (*probe)(long, float *), long iterations)
{
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        float sink[64];
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        probe(iterations, sink);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (s < best) best = s;
    }
    return best;
}

#endif

int bk__dot_bf16_pays(void)
{
#ifdef BK_X86
    const bk_kernels *dot = &bk__kernels_avx512bf16, *fma = &bk__kernels_avx512;
    const long iterations = 1L << 14;
    /* A dot instruction does two products per lane, an FMA one. */
    double dot_rate = 4.0 / probe_seconds(dot->bf16_probe, iterations);
    double fma_rate = 2.0 / probe_seconds(fma->fma_probe, iterations);
    return dot_rate > fma_rate;
#else
    return 0;
#endif
}

/* ------------------------------------------------------------- workspaces -- */

typedef struct {
    void *ptr[BK_WS_COUNT];
    size_t size[BK_WS_COUNT];
} workspaces;

static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;

static void ws_free(void *p)
{
    workspaces *w = p;
    for (int i = 0; i < BK_WS_COUNT; i++) free(w->ptr[i]);
    free(w);
}

static void ws_init(void) { pthread_key_create(&ws_key, ws_free); }

void *bk__workspace(int slot, size_t bytes)
{
    pthread_once(&ws_once, ws_init);
    workspaces *w = pthread_getspecific(ws_key);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) return NULL;
        pthread_setspecific(ws_key, w);
    }
    if (bytes == 0) bytes = 64;
    if (w->size[slot] < bytes) {
        free(w->ptr[slot]);
        size_t rounded = (bytes + 63) & ~(size_t)63;
        w->ptr[slot] = aligned_alloc(64, rounded);
        w->size[slot] = w->ptr[slot] ? rounded : 0;
    }
    return w->ptr[slot];
}

void bk_keep_large_allocations(void)
{
#if defined(__GLIBC__)
    /* glibc caps M_MMAP_THRESHOLD at 32 MiB, and every larger block (an
     * activation of a batch of 128-px images already is one) would be
     * mapped, faulted in and zeroed again on every forward; serving all
     * blocks from the heap, never trimmed, lets them be reused. */
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}
