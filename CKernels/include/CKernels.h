/*
 * CKernels: the arithmetic of biggan-fast.
 *
 * Hand-written, OpenMP-parallel CPU kernels for BigGAN: GEMM, convolution
 * and fused self-attention, forward and backward, in two precisions:
 *
 *   BK_FP32  plain single precision.
 *   BK_BF16  the bfloat16 dot product of TPU matrix units and of x86's
 *            AMX-BF16 (tdpbf16ps) and AVX512_BF16 (vdpbf16ps): every operand
 *            of a product is rounded to bfloat16 (round to nearest even, NaN
 *            kept and quieted, Inf kept, subnormals flushed to zero) when it
 *            is packed; the exact products are summed in fp32 in passes 128
 *            deep, each pass from zero in groups of 32 steps the way one
 *            tdpbf16ps sums them, and each pass is then added to the output
 *            in a fixed order (the exact rules are above bk_gemm). BK_FP32
 *            uses the same passes with plain fp32 FMAs and no rounding.
 *
 * Conventions: matrices are row-major with a leading dimension; activations
 * are NHWC; convolution weights are [Cout][kh][kw][Cin]. Results never depend
 * on the number of threads: work is split over outputs only, never over a
 * reduction. Pointers named in a comment as "may be NULL" are optional; every
 * other pointer must be valid for the extent its shape implies.
 */
#ifndef CKERNELS_H
#define CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- cpu.c -- */

typedef enum { BK_FP32 = 0, BK_BF16 = 1 } bk_precision;

/* Instruction-set paths, in increasing order of capability.
 * BK_ISA_AVX512_BF16 is BK_ISA_AVX512 with the bf16 products on vdpbf16ps
 * instead of emulated by fp32 FMAs, BK_ISA_AMX_BF16 the same with them on
 * AMX tiles (tdpbf16ps); all give the same bits (see bk_gemm). */
typedef enum {
    BK_ISA_SCALAR = 0,
    BK_ISA_AVX2 = 1,
    BK_ISA_AVX512 = 2,
    BK_ISA_AVX512_BF16 = 3,
    BK_ISA_AMX_BF16 = 4
} bk_isa;

typedef struct {
    char vendor[16];
    char brand[64];
    int sse2, avx, avx2, fma, f16c;
    int avx512f, avx512dq, avx512bw, avx512vl, avx512_bf16;
    int amx_bf16;       /* AMX-BF16 tiles, and the OS lets this process use them */
    int os_ymm, os_zmm; /* the OS saves YMM / ZMM state (xgetbv) */
} bk_cpu_features;

/* What cpuid and xgetbv report for this machine. */
void bk_cpu_detect(bk_cpu_features *out);

/* The best path this machine supports. */
bk_isa bk_isa_best(void);

const char *bk_isa_name(bk_isa isa);

/* Parses "scalar", "avx2", "avx512", "avx512bf16" or "amx"; returns -1 for
 * anything else. */
int bk_isa_parse(const char *name);

/* Asks the C library to serve large blocks from the heap rather than fresh
 * mappings, so buffers freed and allocated again each step reuse pages
 * instead of faulting them in (glibc only; elsewhere nothing). */
void bk_keep_large_allocations(void);

/* Runs `iterations` rounds of independent FMA chains on `threads` threads
 * (1 in a build without OpenMP) with the calling thread's path (see
 * bk_settings) and returns the floating-point operations done (2 per lane
 * per FMA). The caller times it to measure the FMA peak. */
double bk_fma_probe(long iterations, int threads);

/* Like bk_fma_probe for the bf16 products: on the AVX512_BF16 path,
 * `iterations` rounds of independent vdpbf16ps chains (4 operations per
 * lane: two products, two sums); on the AMX path, `iterations` rounds of
 * tdpbf16ps on four 16 x 16 accumulator tiles from tiles in registers (2 x
 * 16 x 16 x 32 operations each); on the others, which emulate each bf16
 * product with an fp32 FMA, the FMA probe. */
double bk_bf16_probe(long iterations, int threads);

/* ----------------------------------------------------------- settings.c -- */

/*
 * How the three convolution passes compute. BK_CONV_AUTO (the default)
 * uses Winograd F(4x4, 3x3) for BK_FP32 3x3 convolutions with stride 1 and
 * padding 1 or 0 on every side (with or without upsample) where it
 * measured faster than im2col, and im2col + GEMM everywhere else.
 * BK_CONV_IM2COL always uses im2col; BK_CONV_WINOGRAD uses Winograd on
 * every shape it supports and im2col on the rest. BK_BF16 always uses
 * im2col. A 1x1 convolution of an upsampled input (stride 1, pad 0) runs
 * before the upsample, a quarter of the work: forward always (the same bits
 * as im2col), backward except under BK_CONV_IM2COL (its passes sum a
 * pixel's four gradients before the product, which rounds differently).
 *
 * Winograd computes the same convolution through transformed operands: its
 * results do not depend on the thread count or the instruction-set path
 * either, but not the bits of the im2col GEMM contract (gemm.c), and
 * their rounding error is larger (up to about 1e-5 of the output's
 * magnitude, against a few 1e-7 for im2col).
 */
typedef enum {
    BK_CONV_AUTO = 0,
    BK_CONV_IM2COL = 1,
    BK_CONV_WINOGRAD = 2
} bk_conv_algorithm;

/*
 * How the kernels run. Every kernel call reads its settings once, when it
 * is called, in the calling thread: that thread's override when it has one
 * (bk_settings_set_override), else the process default. So threads that
 * each set their own override (tests running in parallel, replicas of a
 * data-parallel run as threads) never see each other's.
 */
typedef struct {
    bk_isa isa;            /* the instruction-set path: at most bk_isa_best() */
    int threads;           /* the most threads a kernel uses; below 1,
                              OpenMP's default (OMP_NUM_THREADS or the core
                              count); always 1 in a build without OpenMP */
    bk_conv_algorithm conv_algorithm;
    int conv_batch_scale;  /* >= 1: BK_CONV_AUTO counts every convolution as
                              this many times its batch when it chooses, so
                              the n replicas of a data-parallel run, each with
                              1/n of a batch, set n and choose as one process
                              with the whole batch does */
    int conv_choice_batch; /* >= 0: when above 0, BK_CONV_AUTO chooses as for
                              a batch of this many images, however many a
                              call holds (conv_batch_scale then unused), so
                              an image's bits do not depend on the batch it
                              is computed in */
} bk_settings;

/* What a kernel called now from this thread uses, threads resolved (>= 1). */
bk_settings bk_settings_current(void);

/* The process default, as set (threads 0: OpenMP's). It starts as the path
 * BK_ISA=scalar|avx2|avx512|avx512bf16|amx from the environment names when set
 * and supported, else the best one (but BK_ISA_AVX512 rather than
 * BK_ISA_AVX512_BF16 where a timing of both shows vdpbf16ps to be the
 * slower way to the same bits), OpenMP's threads, BK_CONV_AUTO and a batch
 * scale of 1. */
bk_settings bk_settings_default(void);

/* Replaces the process default; returns 0, or -1 (nothing changed) when a
 * field is out of range (a path this machine lacks, an unknown algorithm,
 * a batch scale below 1). */
int bk_settings_set_default(const bk_settings *s);

/* Sets the calling thread's override (returns 0, or -1 and nothing changed
 * as above), or removes it when s is NULL. */
int bk_settings_set_override(const bk_settings *s);

/* 1, and the override in *out (may be NULL), when the calling thread has
 * one; else 0. */
int bk_settings_get_override(bk_settings *out);

/* 1 if the library was built with OpenMP. */
int bk_openmp_enabled(void);

/* --------------------------------------------------------------- bf16.c -- */

/* fp32 -> bf16 bits: round to nearest even; NaN stays NaN (quieted, sign and
 * top payload kept); +-Inf stays; subnormal inputs flush to signed zero;
 * values that round past the largest finite bf16 become Inf. */
uint16_t bk_bf16_from_f32(float x);
float bk_f32_from_bf16(uint16_t h);

/* bk_bf16_from_f32 over an array, vectorised on the calling thread's path,
 * the array split across the thread team. */
void bk_bf16_from_f32_array(const float *x, uint16_t *y, size_t n);

/* y[i] = the fp32 value of bf16(x[i]); x and y may be the same array. */
void bk_round_bf16_array(const float *x, float *y, size_t n);

/* --------------------------------------------------------------- gemm.c -- */

/*
 * C = alpha * op(A) op(B) + beta * C, row-major. op(A) is m x k, op(B) k x n.
 * op(X) = X when trans is 0, X^T otherwise (A stored k x m, B stored n x k).
 * beta == 0 overwrites C (whatever it held, NaN included).
 *
 * Every C element is computed the same way:
 *   t = beta == 0 ? 0 : beta * c
 *   for each pass of BK_KC along K, in order (the last may be shorter):
 *       acc = +0
 *       BK_FP32: for p in the pass, in order: acc = fmaf(a_p, b_p, acc)
 *       BK_BF16: for each group of BK_KG steps of the pass, in order (the
 *                last one completed with +0 operands):
 *                    e = +0, o = +0
 *                    for q = 0 .. BK_KG/2 - 1, in order:
 *                        e = dot(a_2q, b_2q, e)        the even steps
 *                        o = dot(a_2q+1, b_2q+1, o)    the odd steps
 *                    acc = dot(1, acc, dot(1, e, o))
 *       t = fmaf(alpha, acc, t)
 *   c = t
 * with a_p = op(A)(i, p) and b_p = op(B)(p, j), both rounded to bf16 (see
 * bk_bf16_from_f32) in BK_BF16, and q counted from the group's start. The
 * +0 * +0 products that complete the last group only turn a -0 into +0.
 *
 * dot(x, y, acc) is one step of the bf16 dot instructions, measured on the
 * hardware: the product of two bf16 values is exact, acc + x y is rounded
 * once to fp32 (nearest even, as fmaf), and a result whose rounding to 24
 * significant bits with an unbounded exponent is below 2^-126 in magnitude
 * is flushed to zero of its sign (tininess before denormalisation: fmaf
 * rounds the exact values in [2^-126 - 2^-150, 2^-126 - 2^-151) up to
 * 2^-126, the hardware flushes them). Subnormal inputs would be read as
 * zero, but bf16 operands never are subnormal and no sum ever holds one.
 * An Inf - Inf or 0 * Inf gives NaN and a NaN stays NaN (its payload is not
 * part of the contract). The alpha step and beta * c are plain fp32,
 * without flushing.
 *
 * This is what one tdpbf16ps computes for a group (two fp32 FMA chains from
 * zero, one over the even members of its 16 pairs and one over the odd,
 * their sum added to the accumulator tile; tools/bf16_hardware.c checks it
 * on the hardware), so an AMX machine runs a group as one instruction. A
 * vdpbf16ps adds a pair's odd member and then its even one to the same
 * accumulator: fed pairs of consecutive even steps (2q+2, 2q) and of odd
 * ones, it runs each chain at one instruction a pair, and the other paths
 * emulate it with fmaf, flushing as above. Every path and every thread
 * count gives the same bits.
 */
#define BK_KC 128
#define BK_KG 32

void bk_gemm(bk_precision prec, int transa, int transb, int m, int n, int k,
             float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc);

/* bk_gemm(prec, 0, 1, m, n, k, alpha, a, lda, w, ldw, beta, c, ldc), i.e.
 * c = alpha a W^T + beta c for W [n][k], with W's packed form from the plan
 * (may be NULL; see plan.c below). */
typedef struct bk_weight_plan bk_weight_plan;
void bk_gemm_planned(bk_precision prec, bk_weight_plan *plan, int m, int n,
                     int k, float alpha, const float *a, int lda,
                     const float *w, int ldw, float beta, float *c, int ldc);

/* The contract above as plain scalar loops: the oracle the vector paths must
 * match bit for bit. Single-threaded. */
void bk_gemm_reference(bk_precision prec, int transa, int transb, int m,
                       int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, float beta, float *c, int ldc);

/* --------------------------------------------------------------- plan.c -- */

/*
 * A weight plan keeps what the kernels derive from a constant weight W (the
 * packed micro-panels of the GEMM operand, the Winograd-transformed filters)
 * so that calls with the same W skip that work. Each part is built on the
 * first call that needs it, from the W that call passes; every later call
 * with the plan must pass a W with the same contents (make a new plan when
 * W changes). A planned call gives exactly the bits of the unplanned one.
 * A NULL plan, or one made for another precision, shape or instruction-set
 * path, or memory too short to build a part, makes the call run unplanned.
 * A plan may be shared by threads. Memory: about the size of W (fp32),
 * half of it (bf16), plus four times the filters for a 3x3 convolution that
 * takes the Winograd path. (The type is declared with bk_gemm_planned.)
 */
/* For W [n][k] in y = x W^T (bk_gemm_planned). NULL when an extent is below
 * 1, the precision is unknown or memory is short. */
bk_weight_plan *bk_gemm_plan_create(bk_precision prec, int n, int k);

/* For the convolution weight [out_c][kernel_h][kernel_w][in_c]
 * (bk_conv2d_forward_planned). NULL as above. */
bk_weight_plan *bk_conv_plan_create(bk_precision prec, int out_c, int kernel_h,
                                    int kernel_w, int in_c);

/* Frees the plan and all it built; NULL is ignored. */
void bk_weight_plan_destroy(bk_weight_plan *plan);

/* Bytes of derived operands the plan holds so far. */
size_t bk_weight_plan_bytes(const bk_weight_plan *plan);

/* --------------------------------------------------------------- conv.c -- */

/*
 * A 2-D convolution: input [batch][in_h][in_w][in_c] (NHWC), weight
 * [out_c][kernel_h][kernel_w][in_c], output [batch][out_h][out_w][out_c],
 * out_h = (in_h + 2 pad_h - kernel_h) / stride + 1 (out_w likewise with
 * in_w, pad_w, kernel_w). With upsample = 1 the input is first enlarged 2x
 * by nearest neighbour (never materialised: folded into the index
 * arithmetic), so the geometry sees a (2 in_h) x (2 in_w) image.
 */
typedef struct {
    int batch, in_h, in_w, in_c;
    int out_c, kernel_h, kernel_w;
    int stride;       /* >= 1, both directions */
    int pad_h, pad_w; /* zero rows above and below, zero columns left and
                         right: >= 0 */
    int upsample;     /* 0 or 1 */
} bk_conv_shape;

/* Output height and width, or -1 when the shape is invalid. */
int bk_conv_out_h(const bk_conv_shape *s);
int bk_conv_out_w(const bk_conv_shape *s);

/* y = conv(x, w) + bias. bias [out_c] may be NULL. */
void bk_conv2d_forward(bk_precision prec, const bk_conv_shape *s,
                       const float *x, const float *w, const float *bias,
                       float *y);

/* bk_conv2d_forward with w's packed and transformed forms from the plan (may
 * be NULL; see plan.c above). Under BK_CONV_AUTO a usable plan lets
 * Winograd take smaller images (from 4 tiles of 4x4 output pixels, not 24),
 * its filter transform being paid already: there the result is that of the
 * unplanned call under BK_CONV_WINOGRAD. Under a forced algorithm planned and
 * unplanned calls give the same bits. */
void bk_conv2d_forward_planned(bk_precision prec, bk_weight_plan *plan,
                               const bk_conv_shape *s, const float *x,
                               const float *w, const float *bias, float *y);

/*
 * bk_conv2d_forward_planned for a layer that reads a slice of one tensor's
 * channels and writes a slice of another's (branches concatenated along
 * channels, without copies): input pixel p's in_c channels are read at
 * x + p ldx (ldx >= in_c) and output pixel q's out_c channels written at
 * y + q ldy (ldy >= out_c); the floats between are neither read nor
 * written. relu = 1 replaces every output v by v > 0 ? v : 0 as it is
 * written, in the same pass. Every algorithm and precision gives the bits
 * of bk_conv2d_forward_planned into a dense y followed by bk_relu_forward.
 * Strides below the channel counts, like invalid shapes, return without
 * touching memory.
 */
void bk_conv2d_forward_ex(bk_precision prec, bk_weight_plan *plan,
                          const bk_conv_shape *s, const float *x, int ldx,
                          const float *w, const float *bias, int relu, float *y,
                          int ldy);

/* dx (+)= d conv / d x. accumulate = 0 overwrites dx, 1 adds to it. */
void bk_conv2d_backward_data(bk_precision prec, const bk_conv_shape *s,
                             const float *dy, const float *w, float *dx,
                             int accumulate);

/* dw (+)= d conv / d w and dbias (+)= sum of dy over pixels (dbias may be
 * NULL). accumulate = 0 overwrites, 1 adds. */
void bk_conv2d_backward_weight(bk_precision prec, const bk_conv_shape *s,
                               const float *x, const float *dy, float *dw,
                               float *dbias, int accumulate);

/* bk_conv2d_backward_weight(BK_BF16, ...) given x's bf16 bits
 * (bk_bf16_from_f32_array of the fp32 x): the same bits, from half the
 * bytes, so a layer may keep its input for the backward in bf16. */
void bk_conv2d_backward_weight_bf16(const bk_conv_shape *s, const uint16_t *x,
                                    const float *dy, float *dw, float *dbias,
                                    int accumulate);

/* ---------------------------------------------------------- attention.c -- */

/*
 * SAGAN attention core, per batch item b:
 *   out[b] = softmax_rows(theta[b] phi[b]^T) g[b]
 * theta [batch][n][dk], phi [batch][m][dk], g [batch][m][dv],
 * out [batch][n][dv], lse [batch][n] (the row log-sum-exp, kept for
 * backward). No 1/sqrt(dk) scaling. The n x m score matrix is never stored
 * beyond one tile. BK_BF16 rounds theta, phi, g and the probabilities to bf16
 * before each product and accumulates in fp32.
 */
void bk_attention_forward(bk_precision prec, int batch, int n, int m, int dk,
                          int dv, const float *theta, const float *phi,
                          const float *g, float *out, float *lse);

/* Gradients of the forward above, recomputing the probabilities from lse.
 * dtheta [batch][n][dk], dphi [batch][m][dk], dg [batch][m][dv] are
 * overwritten. */
void bk_attention_backward(bk_precision prec, int batch, int n, int m, int dk,
                           int dv, const float *theta, const float *phi,
                           const float *g, const float *out, const float *lse,
                           const float *dout, float *dtheta, float *dphi,
                           float *dg);

/* --------------------------------------------------------------- norm.c -- */

/*
 * Batch normalisation of NHWC activations seen as [n][hw][c]. Gains and
 * biases are read as gain[sample * stride + channel]: stride = c for
 * class-conditional batch-norm ([n][c]), stride = 0 for one per channel
 * ([c]); either may be NULL (gain 1, bias 0).
 */

/* Per-channel mean and biased variance of x [rows][c]. */
void bk_bn_stats(int rows, int c, const float *x, float *mean, float *var);

/* Per-channel mean and sum of squared deviations (m2) of x [rows][c], in
 * double: the moments replicas of a data-parallel run combine into the
 * statistics of their whole batch. */
void bk_bn_moments(int rows, int c, const float *x, double *mean, double *m2);

/* y = (x - mean) / sqrt(var + eps) * gain + bias, then max(y, 0) if relu. */
void bk_bn_forward(int n, int hw, int c, const float *x, const float *mean,
                   const float *var, float eps, const float *gain,
                   const float *bias, int stride, int relu, float *y);

/* Backward of bk_bn_forward, given the gain, bias, stride and relu the
 * forward took: with relu the gradient stops where the forward's output was
 * zero, which the backward recomputes from x exactly as the forward rounded
 * it (so the output need not be kept). batch_stats = 1 when mean and var
 * were this batch's own statistics (their gradient flows into dx), 0 for
 * running statistics. dx is overwritten; dgain and dbias (shaped like gain,
 * may be NULL) are overwritten with sums over each gain's pixels. */
void bk_bn_backward(int n, int hw, int c, const float *x, const float *mean,
                    const float *var, float eps, const float *gain,
                    const float *bias, int stride, int relu, const float *dy,
                    int batch_stats, float *dx, float *dgain, float *dbias);

/* bk_bn_backward in two halves, for statistics shared across replicas:
 * first the per-channel sums over this batch of dy*gain and dy*gain*xhat
 * (and dgain, dbias as above); then dx, given those sums' means over the
 * whole batch (mean_dy, mean_dy_xhat; mean_dy NULL for fixed statistics).
 * The two halves give bk_bn_backward's bits. */
void bk_bn_backward_sums(int n, int hw, int c, const float *x, const float *mean,
                         const float *var, float eps, const float *gain,
                         const float *bias, int stride, int relu,
                         const float *dy, double *sum_dy, double *sum_dy_xhat,
                         float *dgain, float *dbias);
void bk_bn_backward_input(int n, int hw, int c, const float *x,
                          const float *mean, const float *var, float eps,
                          const float *gain, const float *bias, int stride,
                          int relu, const float *dy, const float *mean_dy,
                          const float *mean_dy_xhat, float *dx);

/* --------------------------------------------------------------- pool.c -- */

/* 2x2 pooling with stride 2 of x [n][h][w][c] into [n][h/2][w/2][c]; an odd
 * last row or column is dropped (its gradient is zero). The max pool records
 * which of the four pixels won (0..3, row-major) for its backward. Backward
 * passes overwrite dx [n][h][w][c]. */
void bk_avgpool2x2_forward(int n, int h, int w, int c, const float *x, float *y);
void bk_avgpool2x2_backward(int n, int h, int w, int c, const float *dy, float *dx);
void bk_maxpool2x2_forward(int n, int h, int w, int c, const float *x, float *y,
                           uint8_t *argmax);
void bk_maxpool2x2_backward(int n, int h, int w, int c, const float *dy,
                            const uint8_t *argmax, float *dx);

/* y [n][c] = sum over the hw pixels of x [n][hw][c]; backward broadcasts. */
void bk_sumpool_forward(int n, int hw, int c, const float *x, float *y);
void bk_sumpool_backward(int n, int hw, int c, const float *dy, float *dx);

/*
 * k x k pooling windows `stride` apart over x [n][h][w][c] padded by `pad`
 * on every side (0 <= pad <= k/2), forward only, as PyTorch's max_pool2d and
 * avg_pool2d with ceil_mode False: the output is [n][oh][ow][c] with
 * oh = bk_pool_out_size(h, ...), ow likewise, and pixel (b, i, j) starts at
 * y + ((b oh + i) ow + j) ldy (ldy >= c), so that a pool can fill a slice
 * of channels of a wider tensor. Padding never wins a maximum; a NaN in a
 * window does. The average sums the window in float, row by row, and
 * divides by k^2 (count_pad = 1) or by the number of image pixels in the
 * window (count_pad = 0).
 */
/* (size + 2 pad - kernel) / stride + 1, or -1 when the window or the padding
 * is invalid or does not fit the padded size. */
int bk_pool_out_size(int size, int kernel, int stride, int pad);
void bk_maxpool_forward(int n, int h, int w, int c, int kernel, int stride,
                        int pad, const float *x, float *y, int ldy);
void bk_avgpool_forward(int n, int h, int w, int c, int kernel, int stride,
                        int pad, int count_pad, const float *x, float *y, int ldy);

/* y [n][c] = the mean over the hw pixels of x [n][hw][c]: the float sum of
 * bk_sumpool_forward divided by hw. */
void bk_meanpool_forward(int n, int hw, int c, const float *x, float *y);

/* Nearest-neighbour x2 upsample of x [n][h][w][c] into [n][2h][2w][c]; the
 * backward sums each 2x2 block of dy into dx [n][h][w][c]. */
void bk_upsample2x_forward(int n, int h, int w, int c, const float *x, float *y);
void bk_upsample2x_backward(int n, int h, int w, int c, const float *dy, float *dx);

/* ------------------------------------------------------------- resize.c -- */

/*
 * The resamplers FID tools apply before Inception-v3, on NHWC float images,
 * each reproduced to the bit (checked against the libraries by
 * tools/check_resize.py):
 *   BK_RESIZE_TF_BILINEAR     TensorFlow 1.x resize_bilinear without
 *       align_corners or half-pixel centres, as torch-fidelity's
 *       interpolate_bilinear_2d_like_tensorflow1x computes it: source
 *       position o * in / out, lerp along the width, then the height.
 *   BK_RESIZE_TORCH_BILINEAR  PyTorch's F.interpolate(mode='bilinear',
 *       align_corners=False) on an NCHW float tensor (pytorch-fid):
 *       half-pixel centres, sources clamped at 0, no antialiasing, and the
 *       fused multiply-add its x86 AVX2 kernel computes. PyTorch rounds
 *       differently (by up to about 1e-3 on values in 0..255) where it takes its
 *       channels-last kernel instead: outputs whose height + width is at
 *       most 128, and 3 channels on one thread.
 *   BK_RESIZE_PIL_BICUBIC     Pillow's Image.resize(BICUBIC) of each channel
 *       as a mode 'F' image (clean-fid): Keys cubic with a = -0.5, support
 *       widened by the shrink factor, weights normalised by their sum,
 *       double sums, one pass into a float image and then the other: the
 *       width first, unless the height loses more than twice as many pixels
 *       as the width (Pillow 13.0's rule; earlier Pillow always starts with
 *       the width). A pass whose size does not change is skipped. No
 *       clipping of the result.
 */
typedef enum {
    BK_RESIZE_TF_BILINEAR = 0,
    BK_RESIZE_TORCH_BILINEAR = 1,
    BK_RESIZE_PIL_BICUBIC = 2
} bk_resize_filter;

/* x [n][in_h][in_w][c] resampled into y [n][out_h][out_w][c]. Returns 0, or
 * -1 (y untouched) when an extent is below 1 (n below 0), the filter is
 * unknown or memory for the tables and one image's intermediate is short. */
int bk_resize(bk_resize_filter filter, int n, int in_h, int in_w, int c,
              const float *x, int out_h, int out_w, float *y);

/* -------------------------------------------------------- elementwise.c -- */

void bk_relu_forward(size_t n, const float *x, float *y);
/* dx = dy where x > 0, else 0 (x: the forward input). */
void bk_relu_backward(size_t n, const float *x, const float *dy, float *dx);
void bk_tanh_forward(size_t n, const float *x, float *y);
/* dx = dy * (1 - y^2) (y: the forward output). */
void bk_tanh_backward(size_t n, const float *y, const float *dy, float *dx);
/* y = a + b (y may alias a or b). */
void bk_add(size_t n, const float *a, const float *b, float *y);
/* y = alpha * x + y. */
void bk_axpy(size_t n, float alpha, const float *x, float *y);

/* ------------------------------------------------------------- vector.c -- */

/* Sum of a[i] b[i], in a fixed order of fixed-size partial sums. */
double bk_dot(size_t n, const float *a, const float *b);

/* y = W x (trans = 0) or y = W^T x (trans = 1) for W [rows][cols]. */
void bk_gemv(int trans, int rows, int cols, const float *w, const float *x, float *y);

/* y = alpha x (y may alias x). */
void bk_scale(size_t n, float alpha, const float *x, float *y);

/* A += alpha u v^T for A [rows][cols], u [rows], v [cols]. */
void bk_rank1_update(int rows, int cols, float alpha, const float *u,
                     const float *v, float *a);

/* -------------------------------------------------------------- optim.c -- */

/* One Adam step (PyTorch's formulation, bias-corrected, step >= 1):
 * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * param -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps). */
void bk_adam_update(size_t n, float lr, float beta1, float beta2, float eps,
                    long step, float *param, const float *grad, float *m,
                    float *v);

/* target = decay * target + (1 - decay) * source. */
void bk_ema_update(size_t n, float decay, const float *source, float *target);

/* 1 if no element is NaN or infinite. */
int bk_all_finite(size_t n, const float *x);

#ifdef __cplusplus
}
#endif

#endif /* CKERNELS_H */
