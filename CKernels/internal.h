/*
 * Internal interfaces shared by the kernel files: the per-instruction-set
 * kernel table, the settings of a call, the bf16 rounding used by packing,
 * thread-local workspaces and the single-team GEMM driver that attention
 * calls on its tiles.
 */
#ifndef BK_INTERNAL_H
#define BK_INTERNAL_H

#include "include/CKernels.h"
#include "tuning.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define BK_X86 1
#define BK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define BK_TARGET_AVX512 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define BK_TARGET_AVX512_BF16 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))
#define BK_TARGET_AMX \
    __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#endif

/* Only static OpenMP schedules: clang >= 19 lowers dynamic and guided ones to
 * __kmpc_dispatch_deinit, which Debian's libomp 14 lacks. Static schedules
 * also keep the split of work, and so every result, reproducible. */
#ifdef _OPENMP
#include <omp.h>
#endif

/* This thread's number in its team, and the team's size: 0 and 1 outside a
 * parallel region or in a build without OpenMP, whose regions run their
 * body once on the calling thread. */
static inline int bk__thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int bk__team_count(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

static inline int bk__min_int(int a, int b) { return a < b ? a : b; }
static inline int bk__max_int(int a, int b) { return a > b ? a : b; }

/* Where a kernel has no memory for its result: NaN makes sure none of the
 * old contents passes for one. */
static inline void bk__fill_nan(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = NAN;
}

/* ------------------------------------------------------------------ bf16 -- */

static inline uint32_t bk__bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static inline float bk__float(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* Round to nearest even with the NaN guard (a NaN whose payload lives only in
 * the low half must not round into Inf) and TPU-style flush of subnormals. */
static inline uint16_t bk__bf16(float x)
{
    uint32_t u = bk__bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float bk__bf16_round(float x)
{
    return bk__float((uint32_t)bk__bf16(x) << 16);
}

/* A word of a pair-interleaved bf16 panel: lo's bits in the low half. */
static inline uint32_t bk__bf16_pair(float lo, float hi)
{
    return bk__bf16(lo) | (uint32_t)bk__bf16(hi) << 16;
}

/*
 * One step of the bf16 dot product (the GEMM contract's dot, CKernels.h):
 * fmaf, then the flush of vdpbf16ps. fmaf has already rounded in the
 * subnormal range, where the hardware flushes whatever is below 2^-126
 * after rounding to 24 bits with an unbounded exponent; the two differ only
 * when fmaf returns exactly +-2^-126, and then a double fma (exact to far
 * better than the 2^-151 that separates the cases, since the product of
 * bf16 values has 16 significant bits) tells which.
 */
static inline float bk__bf16_dot(float x, float y, float acc)
{
    float r = fmaf(x, y, acc);
    uint32_t u = bk__bits(r), mag = u & 0x7fffffffu;
    if (mag > 0x00800000u || mag == 0) return r;
    if (mag == 0x00800000u && fabs(fma((double)x, (double)y, (double)acc)) >= 0x1.ffffffp-127)
        return r;
    return bk__float(u & 0x80000000u);
}

/* x + y as the contract's dot(1, x, y): rounded once, tiny sums flushed. */
static inline float bk__bf16_add(float x, float y) { return bk__bf16_dot(x, 1.0f, y); }

/*
 * Which k steps of a pass a pair-interleaved bf16 word holds (low half lo,
 * high half hi), for word q of the pass. Natural pairs (2q, 2q + 1) serve
 * AMX and the emulating paths, which take the even and odd chains of a
 * group from the low and high halves. Chain pairs serve vdpbf16ps, which
 * adds a word's high half first: the first half of a group's words hold
 * consecutive even steps (4r + 2, 4r), the second half odd ones (4r + 3,
 * 4r + 1), so each group is its even chain's BK_KG/4 words, then its odd
 * chain's.
 */
static inline void bk__pair_steps(int chains, int q, int *lo, int *hi)
{
    if (!chains) {
        *lo = 2 * q;
        *hi = 2 * q + 1;
        return;
    }
    int base = q / (BK_KG / 2) * BK_KG, r = q % (BK_KG / 2);
    int odd = r >= BK_KG / 4;
    r -= odd * (BK_KG / 4);
    *lo = base + 4 * r + 2 + odd;
    *hi = base + 4 * r + odd;
}

/* The depth a bf16 panel of kc steps is stored and run at: whole groups. */
static inline int bk__bf16_depth(int kc) { return (kc + BK_KG - 1) / BK_KG * BK_KG; }

/*
 * A bf16 operand at least 2^-55 in magnitude, or zero, is "plain": products
 * of plain operands are zero or multiples of 2^-124, and so is every partial
 * sum of them, which therefore is never tiny and never flushed. Emulating
 * micro-kernels skip the flush for tiles whose operands are all plain (the
 * packer marks each micro-panel) and run the exact step only on the others.
 * The thresholds are on the bits: fp32 holding bf16 values, and bf16.
 */
#define BK_PLAIN_F32 0x24000000u
#define BK_PLAIN_BF16 0x2400u

static inline int bk__any_tiny_f32(const float *x, size_t n)
{
    uint32_t tiny = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t mag = bk__bits(x[i]) & 0x7fffffffu;
        tiny |= mag - 1u < BK_PLAIN_F32 - 1u;
    }
    return (int)tiny;
}

static inline int bk__any_tiny_bf16(const uint16_t *x, size_t n)
{
    unsigned tiny = 0;
    for (size_t i = 0; i < n; i++) tiny |= (uint16_t)((x[i] & 0x7fffu) - 1u) < BK_PLAIN_BF16 - 1u;
    return (int)tiny;
}

/* n floats from s to d in 16-float pieces of constant size, which the
 * compiler turns into vector moves: the short runs that packing and the
 * transforms copy (a few hundred bytes) would otherwise each be a call into
 * the C library's memcpy, whose dispatch costs as much as the copy. */
static inline void bk__copy_floats(float *restrict d, const float *restrict s, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) memcpy(d + i, s + i, 16 * sizeof(float));
    for (; i < n; i++) d[i] = s[i];
}

/* ------------------------------------------------------------ kernel table -- */

/*
 * A micro-kernel computes one MR x NR tile of C from packed panels of one
 * pass (k <= BK_KC deep); MR and NR may differ between the precisions.
 * BK_FP32: the A panel holds MR rows of floats, BK_KC apart (or, for
 * ukr_kmajor, MR values per k step), the B panel NR floats per k step.
 * BK_BF16 runs whole groups of BK_KG steps (bk__bf16_depth(k)), the steps
 * past k zero in both panels, and takes K in pairs (see gemm.c): the B
 * panel holds, per pair, NR 32-bit words, each the bf16 bits of one
 * column's two steps (bk__pair_steps, in the path's pair order); the A panel
 * is fp32 as above (bf16 values) on emulating paths and, on a path with a
 * dot instruction (dot_bf16), bf16 bits: rows BK_KC apart, or for
 * ukr_kmajor MR words per pair like B. A micro-kernel writes only the
 * top-left m x n of the tile (m <= MR, n <= NR), each element as
 *   c = fmaf(alpha, acc, beta == 0 ? 0 : beta * c).
 */
#define BK_PROBE_CHAINS 12
#define BK_MAX_TILE (16 * 32)

typedef void (*bk_ukr)(int k, const void *a, const void *b, float *c,
                       long ldc, int m, int n, float alpha, float beta);

/* Writes the top-left m x n of a raw accumulator tile (row stride ld) into C
 * with the rule above: how every micro-kernel finishes an edge tile. */
static inline void bk__merge_tile(const float *acc, int ld, float *c,
                                  long ldc, int m, int n, float alpha,
                                  float beta)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float *cij = c + i * ldc + j;
            float t = beta == 0.0f ? 0.0f : beta * *cij;
            *cij = fmaf(alpha, acc[i * ld + j], t);
        }
}

/* The four micro-kernels of a path written in C (two B precisions x two A
 * layouts: ukr_f32, ukr_bf16, ukr_f32_kmajor, ukr_bf16_kmajor), each
 * `impl(k, a, b, bf16, kmajor, c, ldc, m, n, alpha, beta)` with its flags
 * fixed so that the inlined loop specialises; TARGET is the path's target
 * attribute (or nothing). */
#define BK_MICRO_KERNEL(TARGET, impl, name, BF16, KMAJOR)                     \
    TARGET static void name(int k, const void *a, const void *b, float *c,   \
                            long ldc, int m, int n, float alpha, float beta) \
    {                                                                         \
        impl(k, a, b, BF16, KMAJOR, c, ldc, m, n, alpha, beta);               \
    }
#define BK_MICRO_KERNELS(TARGET, impl)                                        \
    BK_MICRO_KERNEL(TARGET, impl, ukr_f32, 0, 0)                              \
    BK_MICRO_KERNEL(TARGET, impl, ukr_bf16, 1, 0)                             \
    BK_MICRO_KERNEL(TARGET, impl, ukr_f32_kmajor, 0, 1)                       \
    BK_MICRO_KERNEL(TARGET, impl, ukr_bf16_kmajor, 1, 1)

typedef struct {
    bk_isa isa;
    const bk_tuning *tuning;
    int mr[2], nr[2]; /* the micro-tile, by bk_precision */
    int lanes;       /* floats per vector register */
    bk_ukr ukr[2];   /* indexed by bk_precision */
    /* BK_PROBE_CHAINS independent vector FMA chains, `iterations` steps. */
    void (*fma_probe)(long iterations, float *sink);
    void (*bf16_from_f32)(const float *x, uint16_t *y, size_t n);
    /* Packs one whole B micro-panel whose NR columns lie in memory as rows
     * (column x at src + x * ld, kc values): a transpose into [kc][NR], of
     * floats or (bf16 = 1) bf16 bits. NULL: the portable packer does it. */
    void (*pack_columns)(const float *src, int ld, int kc, int bf16, void *dst);
    /* For a transposed A, whose k steps lie in memory as rows: micro-
     * kernels that read A micro-panels k-major (each panel BK_KC * MR
     * floats from dst + x0 * BK_KC, value (x, p) at + p * MR + x - x0),
     * and the packer that writes them from values (x, p) at src + p * ld +
     * x, x < rows (rounded up to whole panels with zeros), p < kc,
     * bf16-rounded floats when bf16: plain copies instead of a transpose. */
    bk_ukr ukr_kmajor[2];
    void (*pack_kmajor)(const float *src, int ld, int rows, int kc, int bf16, float *dst);
    void (*round_bf16)(const float *x, float *y, size_t n);
    /* 1: the BK_BF16 micro-kernels run the contract on a dot instruction
     * and read bf16 A panels; 0: they emulate it with fp32 FMAs, without
     * the flush, and the driver sends tiles with operands that are not
     * plain to bk__ukr_bf16_exact. */
    int dot_bf16;
    /* 1: bf16 words hold chain pairs (bk__pair_steps), 0: natural ones. */
    int chain_pairs;
    /* Non-NULL when the BK_BF16 micro-kernel leaves its last tile's write
     * of C pending (it writes each tile while the next one's products run):
     * completes it. The macro-kernel calls it before it returns. */
    void (*ukr_finish)(void);
    /* Interleaves rows r0 and r1 (either NULL: zeros) of n floats into n
     * words of bf16 bits, r0's in the low half: a pair of k steps of a
     * packed bf16 panel. NULL: the portable packer does it. */
    void (*pack_pairs)(const float *r0, const float *r1, int n, uint32_t *dst);
    /* Required of a path that reads bf16 A rows only (no
     * ukr_kmajor[BK_BF16], natural pairs): rows [0, rows) of a transposed A
     * (value (x, p) at src + p * ld + x) as bf16 rows BK_KC apart, kc values
     * each. */
    void (*pack_rows_bf16)(const float *src, int ld, int rows, int kc, uint16_t *dst);
    /* Like fma_probe, with the dot instruction (NULL without one), and
     * the operations one of its iterations does. */
    void (*bf16_probe)(long iterations, float *sink);
    double bf16_probe_ops;
} bk_kernels;

/* The BK_BF16 micro-kernel of the contract written with bk__bf16_dot, for
 * the fp32 A panels and pair-interleaved B panels of emulating paths, tile
 * mr x nr (at most BK_MAX_TILE elements): the portable path's kernel, and
 * the other emulating paths' for tiles that need the flush. */
void bk__ukr_bf16_exact(int mr, int nr, int kmajor, int k, const float *a,
                        const uint16_t *b, float *c, long ldc, int m, int n,
                        float alpha, float beta);

extern const bk_kernels bk__kernels_generic;
#ifdef BK_X86
extern const bk_kernels bk__kernels_avx2;
extern const bk_kernels bk__kernels_avx512;
extern const bk_kernels bk__kernels_avx512bf16;
extern const bk_kernels bk__kernels_amx;

/* The AMX path's BK_BF16 micro-kernel (gemm_amx.c): a 32 x 32 tile from
 * bf16 A rows BK_KC apart and natural-pair B words, 32 a pair, written to C
 * during the next call (bk__amx_finish: now); and its probe, as
 * bk_kernels.bf16_probe. */
void bk__ukr_amx_bf16(int k, const void *a, const void *b, float *c, long ldc,
                      int m, int n, float alpha, float beta);
void bk__amx_finish(void);
void bk__amx_probe(long iterations, float *sink);

/* bk__merge_tile for a 32-column tile (NR = 32) on AVX-512. */
void bk__merge_tile32(const float *tile, float *c, long ldc, int m, int n,
                      float alpha, float beta);

/* 1 once the OS lets this process use AMX tile data (asked for on the
 * first call). */
int bk__amx_permitted(void);
#endif

/* The table of a path. */
const bk_kernels *bk__kernels_for(bk_isa isa);

/* 1 when this machine (which must have AVX512_BF16) does bf16 products
 * faster on vdpbf16ps than on the FMAs that emulate them, by a short timing
 * of both probes on the calling thread. */
int bk__dot_bf16_pays(void);

/* ------------------------------------------------------------- settings -- */

/*
 * The settings of one call, resolved by bk__ctx at its entry point in the
 * calling thread (the thread's override, else the process default) and
 * passed down to everything it runs: OpenMP's workers do not see the
 * caller's override, so code inside a parallel region reads only this. An
 * entry point may call another on the calling thread, which resolves the
 * same settings again.
 */
typedef struct {
    const bk_kernels *kr;      /* the path; its tuning is kr->tuning */
    int threads;               /* >= 1; 1 in a build without OpenMP */
    bk_conv_algorithm conv_algorithm;
    int conv_batch_scale;      /* >= 1 */
    int conv_choice_batch;     /* >= 0 */
} bk_ctx;

bk_ctx bk__ctx(void);

/* A requested thread count as a team can have it: below 1, OpenMP's
 * default; always 1 in a build without OpenMP. */
int bk__clamp_threads(int requested);

/* Threads to use for a job of `work` units (e.g. FMAs): at most
 * cx->threads, and 1 below `per_thread` units per thread, where a team
 * costs more than it saves. */
int bk__team_size(const bk_ctx *cx, double work, double per_thread);

/* ------------------------------------------------------------- workspaces -- */

/* Workspace slots: a kernel that calls another uses a different slot. */
enum {
    BK_WS_GEMM = 0,
    BK_WS_CONV,
    BK_WS_WINOGRAD,
    BK_WS_WINOGRAD_PACKED,
    BK_WS_ATTENTION,
    BK_WS_NORM,
    BK_WS_COUNT
};

/* A 64-byte aligned buffer of at least `bytes`, owned by the calling thread
 * and reused by its next call with the same slot (contents not kept). Returns
 * NULL only when memory is exhausted. */
void *bk__workspace(int slot, size_t bytes);

/* ------------------------------------------------------------------- gemm -- */

typedef struct {
    bk_precision prec;
    int transa, transb, m, n, k;
    float alpha, beta;
    const float *a, *b;
    int lda, ldb;
    float *c;
    int ldc;
    /* B already packed by bk__pack_b_all for the call's path, or NULL. */
    const void *packed_b;
    /* BK_BF16 only: op(A) (op(B)) given as bf16 bits in place of a (b),
     * row-major and not transposed, lda (ldb) elements apart: a convolution's
     * column matrix, built once in bf16 (half the bytes) instead of in fp32
     * and converted by every packing. */
    const uint16_t *a16, *b16;
    /* The epilogue of a convolution's forward pass, applied to each C
     * element after its last pass while the block is still in cache:
     * c += bias[j] (bias may be NULL), then c = c > 0 ? c : 0 when relu. */
    const float *bias;
    int relu;
} bk_gemm_args;

/* Bytes of a whole op(B) (n x k) laid out as the driver's packed panels of
 * path kr, for a packed_b that serves GEMMs of any M; and the packing of
 * g's, for cx->kr, by a team of up to cx->threads. */
size_t bk__packed_b_size(const bk_kernels *kr, bk_precision prec, int n, int k);
void bk__pack_b_all(const bk_ctx *cx, const bk_gemm_args *g, void *dst);

/* The GEMM of g on a team of up to cx->threads. */
void bk__gemm(const bk_ctx *cx, const bk_gemm_args *g);

/* A single-threaded GEMM on the calling thread's BK_WS_GEMM workspace; for
 * kernels that already run inside their own parallel region. */
void bk__gemm_serial(const bk_ctx *cx, const bk_gemm_args *g);

/* bk__gemm with B's packed form from the plan when the plan (may be NULL)
 * describes B [n][k] for this precision and path (g->b must then be that
 * W, transb = 1). */
void bk__gemm_planned(const bk_ctx *cx, const bk_gemm_args *g,
                      bk_weight_plan *plan);

/* ------------------------------------------------------------------- plan -- */

/*
 * The operands a weight plan derives from W, each built on the first call
 * that needs it (from the W that call passes) and kept until destroyed.
 * Concurrent first calls may both build one; the first to publish wins.
 */
struct bk_weight_plan {
    bk_precision prec;
    int n, k;                   /* W [n][k] */
    int kernel_h, kernel_w;     /* conv plans: k = kernel_h kernel_w in_c */
    const bk_kernels *kr;       /* the path the packed layouts are for */
    void *_Atomic gemm_b;       /* W as a packed B of y = x W^T */
    void *_Atomic winograd_u;   /* the 36 Winograd U[xi], each a packed B */
    size_t _Atomic bytes;       /* held by the two above */
};

/* Stores `fresh` (of `bytes`) in *slot unless another thread got there
 * first, in which case it is freed; returns what the slot holds. */
void *bk__plan_publish(bk_weight_plan *p, void *_Atomic *slot, void *fresh,
                       size_t bytes);

/* ------------------------------------------------------------------- conv -- */

/* The Winograd path of a convolution whose shape conv.c has validated,
 * forward (as bk_conv2d_forward_ex; the plan, may be NULL, supplies the
 * transformed filters) or backward data. Each returns 0 when it wrote the
 * result, -1 (nothing touched) when the shape is not a fp32 3x3 stride 1
 * convolution with padding 1 or 0 on every side, the chosen algorithm says
 * im2col, or memory is short. */
int bk__conv_winograd_forward(const bk_ctx *cx, bk_precision prec,
                              bk_weight_plan *plan, const bk_conv_shape *s,
                              const float *x, int ldx, const float *w,
                              const float *bias, int relu, float *y, int ldy);
int bk__conv_winograd_backward_data(const bk_ctx *cx, bk_precision prec,
                                    const bk_conv_shape *s, const float *dy,
                                    const float *w, float *dx, int accumulate);

/* The Winograd path of a convolution's parameter gradients: dw (+)=
 * d conv / d w and, unless dbias is NULL, dbias (+)= the sum of dy over
 * pixels, on the same terms as bk__conv_winograd_backward_data. */
int bk__conv_winograd_weight(const bk_ctx *cx, bk_precision prec,
                             const bk_conv_shape *s, const float *x,
                             const float *dy, float *dw, float *dbias,
                             int accumulate);

#endif /* BK_INTERNAL_H */
