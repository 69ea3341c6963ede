/*
 * Convolution as GEMM over bands of an implicit im2col matrix.
 *
 * Row m of the column matrix is output pixel m of the whole batch
 * (m = (b * out_h + oy) * out_w + ox); its K = kernel_h * kernel_w * in_c
 * values are the receptive field in (ki, kj, c) order, the weight layout, so
 * the weight is a [out_c][K] matrix as stored. The matrix is built one band
 * of rows at a time in a bounded per-thread workspace, so memory stays flat
 * whatever the batch or image size; a band may span images. For a bf16
 * product it is built in bf16 (bk_gemm_args.a16, b16): its values are
 * converted once, as they are gathered, and the GEMM's packing only copies
 * half the bytes a fp32 matrix would take.
 *
 *   forward          per band: im2col(x) -> y_band = col W^T, + bias (and
 *                    ReLU) in the GEMM's epilogue while each block is hot
 *   backward data    per band: dcol = dy_band W -> col2im scatter-add to dx
 *   backward weight  per band: im2col(x) -> dW (+)= dy_band^T col
 *
 * Bit reproducibility: the forward and backward-data GEMMs reduce over K or
 * out_c, inside one band, so banding cannot change them. Backward weight
 * reduces over pixels, the GEMM's K: every band but the last is a whole
 * number of BK_KC rows and later bands continue with beta = 1, so the passes
 * line up with those of one GEMM over all pixels and the bits are the same.
 * col2im gives every dx element to one thread, which adds its contributions
 * in pixel order then tap order, whatever the team.
 *
 * A 1x1, stride 1, pad 0 conv without upsample needs no im2col: x is already
 * the column matrix, so each pass is a GEMM on the tensors themselves, and
 * backward data folds accumulate into that GEMM's beta.
 *
 * The forward pass takes pixel strides for x and y (bk_conv2d_forward_ex):
 * im2col gathers from them, the GEMM reads a direct conv's x and writes y
 * through its leading dimensions, so a channel slice costs nothing.
 *
 * All three passes of fp32 3x3, stride 1, pad 1 or 0 convolutions may go to
 * conv_winograd.c instead (see bk_conv_algorithm), and 1x1
 * convolutions of an upsampled input run before the upsample (below).
 *
 * Invalid shapes (see conv_geometry) return without touching memory; the
 * callers' wrappers report them.
 */
#include "internal.h"

#include <limits.h>

static inline int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

typedef struct {
    int eh, ew;   /* the image the kernel slides over (doubled by upsample) */
    int oh, ow;
    int plane;    /* oh * ow */
    int pixels;   /* batch * oh * ow: the GEMM's M */
    int k;        /* kernel_h * kernel_w * in_c */
    int direct;   /* 1x1, stride 1, pad 0, no upsample: x is the matrix */
} geometry;

/* 0 and the derived sizes, or -1 if the shape is invalid. Besides the
 * documented ranges, every index the kernels form (padded image extents,
 * pixel counts, K) must fit an int, as the GEMM's dimensions do. */
static int conv_geometry(const bk_conv_shape *s, geometry *g)
{
    if (!s || s->batch < 1 || s->in_h < 1 || s->in_w < 1 || s->in_c < 1 ||
        s->out_c < 1 || s->kernel_h < 1 || s->kernel_w < 1 ||
        s->stride < 1 || s->pad_h < 0 || s->pad_w < 0 ||
        (s->upsample != 0 && s->upsample != 1))
        return -1;
    int64_t eh = (int64_t)s->in_h << s->upsample;
    int64_t ew = (int64_t)s->in_w << s->upsample;
    int64_t padded_h = eh + 2 * (int64_t)s->pad_h;
    int64_t padded_w = ew + 2 * (int64_t)s->pad_w;
    if (padded_h > INT_MAX || padded_w > INT_MAX) return -1;
    if (padded_h < s->kernel_h || padded_w < s->kernel_w) return -1;
    int64_t oh = (padded_h - s->kernel_h) / s->stride + 1;
    int64_t ow = (padded_w - s->kernel_w) / s->stride + 1;
    int64_t plane = oh * ow;
    int64_t k = (int64_t)s->kernel_h * s->kernel_w * s->in_c;
    if (plane > INT_MAX || plane * s->batch > INT_MAX || k > INT_MAX)
        return -1;
    g->eh = (int)eh;
    g->ew = (int)ew;
    g->oh = (int)oh;
    g->ow = (int)ow;
    g->plane = (int)plane;
    g->pixels = (int)(plane * s->batch);
    g->k = (int)k;
    g->direct = s->kernel_h == 1 && s->kernel_w == 1 && s->stride == 1 &&
                s->pad_h == 0 && s->pad_w == 0 && !s->upsample;
    return 0;
}

int bk_conv_out_h(const bk_conv_shape *s)
{
    geometry g;
    return conv_geometry(s, &g) ? -1 : g.oh;
}

int bk_conv_out_w(const bk_conv_shape *s)
{
    geometry g;
    return conv_geometry(s, &g) ? -1 : g.ow;
}

/* ------------------------------------------------------------------ bands -- */

/* Rows per band of es-byte values: what the column buffer's budget holds,
 * in whole BK_KC passes (see the top comment), never below the tuning's least
 * band, or every pixel when that is fewer. */
static int band_rows(const bk_ctx *cx, const geometry *g, size_t es)
{
    const bk_tuning *tu = cx->kr->tuning;
    size_t fit = tu->col_bytes / ((size_t)g->k * es);
    size_t rows = fit / BK_KC * BK_KC, least = (size_t)tu->min_band_passes * BK_KC;
    if (rows < least) rows = least;
    return rows < (size_t)g->pixels ? (int)rows : g->pixels;
}

/* The column buffer for bands of *rows rows of es-byte values. When memory
 * is short, bands of one pass are the last resort before giving up. */
static void *column_buffer(const geometry *g, int *rows, size_t es)
{
    void *col = bk__workspace(BK_WS_CONV, (size_t)*rows * g->k * es);
    if (!col && *rows > BK_KC) {
        *rows = BK_KC;
        col = bk__workspace(BK_WS_CONV, (size_t)*rows * g->k * es);
    }
    return col;
}

/* Where output pixel m's receptive field starts: its image, and the top-left
 * tap in the (upsampled) image, which may lie in the padding. */
static inline void pixel_origin(const bk_conv_shape *s, const geometry *g,
                                int m, int *b, int *y0, int *x0)
{
    int rem = m % g->plane;
    *b = m / g->plane;
    *y0 = rem / g->ow * s->stride - s->pad_h;
    *x0 = rem % g->ow * s->stride - s->pad_w;
}

/* ----------------------------------------------------------------- im2col -- */

/* n values of x from offset `from` to the column matrix: copied when the
 * column matrix has x's type (x16, x's bf16 bits, when given), converted to
 * bf16 from fp32 otherwise. */
static inline void put_run(const bk_kernels *kr, int bf16, void *dst, size_t at,
                           const float *x, const uint16_t *x16, size_t from, size_t n)
{
    if (x16) memcpy((uint16_t *)dst + at, x16 + from, n * sizeof(uint16_t));
    else if (bf16) kr->bf16_from_f32(x + from, (uint16_t *)dst + at, n);
    else bk__copy_floats((float *)dst + at, x + from, n);
}

static inline void zero_run(int bf16, void *dst, size_t at, size_t n)
{
    size_t es = bf16 ? sizeof(uint16_t) : sizeof(float);
    memset((char *)dst + at * es, 0, n * es);
}

/* Row m of the column matrix (bf16 bits when bf16, else fp32) from x, or
 * from x16 when given, whose pixels are ldx values apart. */
static void im2col_row(const bk_kernels *kr, int bf16, const bk_conv_shape *s,
                       const geometry *g, const float *x, const uint16_t *x16,
                       int ldx, int m, void *dst)
{
    int c = s->in_c, kw = s->kernel_w, up = s->upsample;
    int b, y0, x0;
    pixel_origin(s, g, m, &b, &y0, &x0);
    size_t img = (size_t)b * s->in_h * s->in_w * ldx;
    /* Taps kj in [j0, j1) land inside the image; the rest is padding. */
    int j0 = clamp_int(-x0, 0, kw), j1 = clamp_int(g->ew - x0, j0, kw);
    size_t run = (size_t)kw * c, at = 0;
    for (int ki = 0; ki < s->kernel_h; ki++, at += run) {
        int iy = y0 + ki;
        if (iy < 0 || iy >= g->eh || j0 == j1) {
            zero_run(bf16, dst, at, run);
            continue;
        }
        size_t src = img + (size_t)(iy >> up) * s->in_w * ldx;
        zero_run(bf16, dst, at, (size_t)j0 * c);
        if (!up && ldx == c) {
            /* Neighbouring taps read neighbouring pixels: one run. */
            put_run(kr, bf16, dst, at + (size_t)j0 * c, x, x16, src + (size_t)(x0 + j0) * c,
                    (size_t)(j1 - j0) * c);
        } else {
            for (int kj = j0; kj < j1; kj++)
                put_run(kr, bf16, dst, at + (size_t)kj * c, x, x16,
                        src + (size_t)((x0 + kj) >> up) * ldx, (size_t)c);
        }
        zero_run(bf16, dst, at + (size_t)j1 * c, (size_t)(kw - j1) * c);
    }
}

/* A GEMM operand of column rows [m0, m0 + rows) of x, or of x16 (x's bf16
 * bits, for a BK_BF16 product) when given, pixels ldx values apart: x itself
 * for a direct conv (rows ldx apart, into *f32 or *b16), else gathered into
 * col, rows g->k apart: bf16 bits for a BK_BF16 product (into *b16), which
 * is all its GEMM reads of them, else fp32 (into *f32). */
static void set_columns(const bk_ctx *cx, bk_precision prec, const bk_conv_shape *s,
                        const geometry *g, const float *x, const uint16_t *x16, int ldx,
                        int m0, int rows, void *col, const float **f32, const uint16_t **b16)
{
    if (g->direct) {
        if (x16) *b16 = x16 + (size_t)m0 * ldx;
        else *f32 = x + (size_t)m0 * ldx;
        return;
    }
    int bf16 = prec == BK_BF16;
    size_t es = bf16 ? sizeof(uint16_t) : sizeof(float);
#pragma omp parallel for schedule(static) \
    num_threads(bk__team_size(cx, (double)rows * g->k, cx->kr->tuning->copy_per_thread))
    for (int r = 0; r < rows; r++)
        im2col_row(cx->kr, bf16, s, g, x, x16, ldx, m0 + r, (char *)col + (size_t)r * g->k * es);
    if (bf16) *b16 = col;
    else *f32 = col;
}

/* ----------------------------------------------------------------- col2im -- */

/* Adds channels [c0, c1) of column row m to the pixels it was gathered from
 * (with upsample, the source pixel each tap duplicated). */
static void col2im_row(const bk_conv_shape *s, const geometry *g,
                       const float *src, int m, int c0, int c1, float *dx)
{
    int c = s->in_c, kw = s->kernel_w, up = s->upsample;
    int b, y0, x0;
    pixel_origin(s, g, m, &b, &y0, &x0);
    float *img = dx + (size_t)b * s->in_h * s->in_w * c;
    int j0 = clamp_int(-x0, 0, kw), j1 = clamp_int(g->ew - x0, j0, kw);
    for (int ki = 0; ki < s->kernel_h; ki++) {
        int iy = y0 + ki;
        if (iy < 0 || iy >= g->eh) continue;
        float *row = img + (size_t)(iy >> up) * s->in_w * c;
        const float *tap = src + (size_t)ki * kw * c;
        for (int kj = j0; kj < j1; kj++) {
            float *restrict d = row + (size_t)((x0 + kj) >> up) * c;
            const float *restrict v = tap + (size_t)kj * c;
            for (int ch = c0; ch < c1; ch++) d[ch] += v[ch];
        }
    }
}

/* dx += column rows [m0, m0 + rows) scattered back. A task is one image of
 * the band and one slice of its channels: rows of different images never
 * share a dx pixel, and slices split every pixel, so each dx element belongs
 * to one task, which adds in row then tap order. */
static void col2im(const bk_ctx *cx, const bk_conv_shape *s, const geometry *g,
                   const float *col, int m0, int rows, float *dx)
{
    const bk_tuning *tu = cx->kr->tuning;
    int b0 = m0 / g->plane, b1 = (m0 + rows - 1) / g->plane;
    int images = b1 - b0 + 1;
    int nt = bk__team_size(cx, (double)rows * g->k, tu->add_per_thread);
    int slices = 1;
    if (images < nt)
        slices = bk__min_int((nt + images - 1) / images,
                             bk__max_int(1, s->in_c / tu->min_slice));
    int tasks = images * slices;
#pragma omp parallel for schedule(static) num_threads(bk__min_int(nt, tasks))
    for (int t = 0; t < tasks; t++) {
        int b = b0 + t / slices, sl = t % slices;
        int c0 = (int)((int64_t)s->in_c * sl / slices);
        int c1 = (int)((int64_t)s->in_c * (sl + 1) / slices);
        int lo = bk__max_int(m0, b * g->plane);
        int hi = bk__min_int(m0 + rows, (b + 1) * g->plane);
        for (int m = lo; m < hi; m++)
            col2im_row(s, g, col + (size_t)(m - m0) * g->k, m, c0, c1, dx);
    }
}

/* ------------------------------------------------------------------- bias -- */

/* dbias (+)= column sums of dy [pixels][n]. Threads own channel slices and
 * sweep every pixel in order, so each sum has one fixed order. */
static void bias_grad(const bk_ctx *cx, const float *dy, int pixels, int n,
                      float *dbias, int accumulate)
{
    const bk_tuning *tu = cx->kr->tuning;
    int nt = bk__team_size(cx, (double)pixels * n, tu->add_per_thread);
    int slices = bk__min_int(nt, bk__max_int(1, n / tu->min_slice));
#pragma omp parallel for schedule(static) num_threads(slices)
    for (int sl = 0; sl < slices; sl++) {
        int c0 = (int)((int64_t)n * sl / slices);
        int c1 = (int)((int64_t)n * (sl + 1) / slices);
        float *restrict d = dbias;
        if (!accumulate)
            for (int j = c0; j < c1; j++) d[j] = 0.0f;
        for (int m = 0; m < pixels; m++) {
            const float *restrict row = dy + (size_t)m * n;
            for (int j = c0; j < c1; j++) d[j] += row[j];
        }
    }
}

/* ------------------------------------------------------- 1x1 upsample -- */

/*
 * A 1x1, stride 1, pad 0 convolution of an upsampled input commutes with
 * the upsample: conv(up(x)) = up(conv(x)), a quarter of the products and
 * no im2col (BigGAN's generator skips). The forward gives the im2col
 * path's bits (every output pixel is the same GEMM row). The backward
 * passes sum each input pixel's four gradients before the product instead
 * of after, which rounds differently, so they take this route only when
 * the algorithm is not BK_CONV_IM2COL. Each returns -1, touching nothing,
 * when the shape is another or memory is short.
 */
static int pointwise_upsample(const bk_conv_shape *s, bk_conv_shape *low)
{
    if (s->kernel_h != 1 || s->kernel_w != 1 || s->stride != 1 || s->pad_h != 0 ||
        s->pad_w != 0 || !s->upsample)
        return 0;
    *low = *s;
    low->upsample = 0;
    return 1;
}

static size_t low_count(const bk_conv_shape *s)
{
    return (size_t)s->batch * s->in_h * s->in_w * s->out_c;
}

static void conv_forward(const bk_ctx *cx, bk_precision prec,
                         bk_weight_plan *plan, const bk_conv_shape *s,
                         const float *x, int ldx, const float *w,
                         const float *bias, int relu, float *y, int ldy);

static int forward_before_upsample(const bk_ctx *cx, bk_precision prec,
                                   bk_weight_plan *plan, const bk_conv_shape *s,
                                   const float *x, int ldx, const float *w,
                                   const float *bias, int relu, float *y)
{
    bk_conv_shape low;
    if (!pointwise_upsample(s, &low)) return -1;
    float *z = bk__workspace(BK_WS_CONV, low_count(s) * sizeof(float));
    if (!z) return -1;
    /* The ReLU commutes with the copies of the upsample. */
    conv_forward(cx, prec, plan, &low, x, ldx, w, bias, relu, z, s->out_c);
    bk_upsample2x_forward(s->batch, s->in_h, s->in_w, s->out_c, z, y);
    return 0;
}

/* dy summed over each input pixel's 2x2 block, in the conv workspace. */
static const float *gradient_before_upsample(const bk_ctx *cx,
                                             const bk_conv_shape *s,
                                             bk_conv_shape *low, const float *dy)
{
    if (!pointwise_upsample(s, low) || cx->conv_algorithm == BK_CONV_IM2COL)
        return NULL;
    float *dz = bk__workspace(BK_WS_CONV, low_count(s) * sizeof(float));
    if (dz) bk_upsample2x_backward(s->batch, s->in_h, s->in_w, s->out_c, dy, dz);
    return dz;
}

/* ----------------------------------------------------------------- passes -- */

/* A plan made for another filter shape is not this convolution's. */
static bk_weight_plan *plan_for(bk_weight_plan *p, const bk_conv_shape *s)
{
    return p && p->n == s->out_c && p->kernel_h == s->kernel_h &&
                   p->kernel_w == s->kernel_w &&
                   p->k == s->kernel_h * s->kernel_w * s->in_c
               ? p
               : NULL;
}

static void conv_forward(const bk_ctx *cx, bk_precision prec,
                         bk_weight_plan *plan, const bk_conv_shape *s,
                         const float *x, int ldx, const float *w,
                         const float *bias, int relu, float *y, int ldy)
{
    geometry g;
    if (conv_geometry(s, &g) || ldx < s->in_c || ldy < s->out_c) return;
    plan = plan_for(plan, s);
    if (bk__conv_winograd_forward(cx, prec, plan, s, x, ldx, w, bias, relu, y, ldy) == 0)
        return;
    /* The upsample writes dense pixels; a strided y takes im2col, the same
     * bits. */
    if (ldy == s->out_c &&
        forward_before_upsample(cx, prec, plan, s, x, ldx, w, bias, relu, y) == 0)
        return;
    int n = s->out_c;
    size_t es = prec == BK_BF16 ? sizeof(uint16_t) : sizeof(float);
    int rows = g.direct ? g.pixels : band_rows(cx, &g, es);
    void *col = g.direct ? NULL : column_buffer(&g, &rows, es);
    if (!g.direct && !col) {
        for (int m = 0; m < g.pixels; m++) bk__fill_nan(y + (size_t)m * ldy, (size_t)n);
        return;
    }
    bk_gemm_args ga = {
        .prec = prec, .transb = 1, .n = n, .k = g.k, .alpha = 1.0f,
        .lda = g.direct ? ldx : g.k, .b = w, .ldb = g.k, .ldc = ldy,
        .bias = bias, .relu = relu,
    };
    for (int m0 = 0; m0 < g.pixels; m0 += rows) {
        ga.m = bk__min_int(rows, g.pixels - m0);
        set_columns(cx, prec, s, &g, x, NULL, ldx, m0, ga.m, col, &ga.a, &ga.a16);
        ga.c = y + (size_t)m0 * ldy;
        bk__gemm_planned(cx, &ga, plan);
    }
}

static void conv_backward_data(const bk_ctx *cx, bk_precision prec,
                               const bk_conv_shape *s, const float *dy,
                               const float *w, float *dx, int accumulate)
{
    geometry g;
    if (conv_geometry(s, &g)) return;
    if (bk__conv_winograd_backward_data(cx, prec, s, dy, w, dx, accumulate) == 0) return;
    bk_conv_shape low;
    const float *dz = gradient_before_upsample(cx, s, &low, dy);
    if (dz) {
        conv_backward_data(cx, prec, &low, dz, w, dx, accumulate);
        return;
    }
    /* dcol = dy W, rows of dy against W [out_c][K] as stored. */
    int n = s->out_c;
    bk_gemm_args ga = {
        .prec = prec, .n = g.k, .k = n, .alpha = 1.0f, .lda = n, .b = w,
        .ldb = g.k, .ldc = g.k,
    };
    if (g.direct) {
        ga.m = g.pixels;
        ga.a = dy;
        ga.beta = accumulate ? 1.0f : 0.0f;
        ga.c = dx;
        bk__gemm(cx, &ga);
        return;
    }
    size_t dx_count = (size_t)s->batch * s->in_h * s->in_w * s->in_c;
    int rows = band_rows(cx, &g, sizeof(float));
    float *col = column_buffer(&g, &rows, sizeof(float));
    if (!col) {
        bk__fill_nan(dx, dx_count);
        return;
    }
    if (!accumulate) memset(dx, 0, dx_count * sizeof(float));
    ga.c = col;
    for (int m0 = 0; m0 < g.pixels; m0 += rows) {
        ga.m = bk__min_int(rows, g.pixels - m0);
        ga.a = dy + (size_t)m0 * n;
        bk__gemm(cx, &ga);
        col2im(cx, s, &g, col, m0, ga.m, dx);
    }
}

/* x16, when given in place of x, holds x's bf16 bits (BK_BF16 only). */
static void conv_backward_weight(const bk_ctx *cx, bk_precision prec,
                                 const bk_conv_shape *s, const float *x,
                                 const uint16_t *x16, const float *dy, float *dw,
                                 float *dbias, int accumulate)
{
    geometry g;
    if (conv_geometry(s, &g)) return;
    int n = s->out_c;
    if (!x16 && bk__conv_winograd_weight(cx, prec, s, x, dy, dw, dbias, accumulate) == 0)
        return;
    bk_conv_shape low;
    const float *dz = gradient_before_upsample(cx, s, &low, dy);
    if (dz) {
        conv_backward_weight(cx, prec, &low, x, x16, dz, dw, dbias, accumulate);
        return;
    }
    size_t es = prec == BK_BF16 ? sizeof(uint16_t) : sizeof(float);
    int rows = g.direct ? g.pixels : band_rows(cx, &g, es);
    void *col = g.direct ? NULL : column_buffer(&g, &rows, es);
    if (!g.direct && !col) {
        bk__fill_nan(dw, (size_t)n * g.k);
        if (dbias) bk__fill_nan(dbias, (size_t)n);
        return;
    }
    /* dW (+)= dy_band^T col, band after band along the GEMM's K. */
    bk_gemm_args ga = {
        .prec = prec, .transa = 1, .m = n, .n = g.k, .alpha = 1.0f, .lda = n,
        .ldb = g.k, .c = dw, .ldc = g.k,
    };
    for (int m0 = 0; m0 < g.pixels; m0 += rows) {
        ga.k = bk__min_int(rows, g.pixels - m0);
        ga.beta = m0 == 0 && !accumulate ? 0.0f : 1.0f;
        ga.a = dy + (size_t)m0 * n;
        set_columns(cx, prec, s, &g, x, x16, s->in_c, m0, ga.k, col, &ga.b, &ga.b16);
        bk__gemm(cx, &ga);
    }
    if (dbias) bias_grad(cx, dy, g.pixels, n, dbias, accumulate);
}

/* ------------------------------------------------------------ entry points -- */

void bk_conv2d_forward_ex(bk_precision prec, bk_weight_plan *plan,
                          const bk_conv_shape *s, const float *x, int ldx,
                          const float *w, const float *bias, int relu, float *y,
                          int ldy)
{
    bk_ctx cx = bk__ctx();
    conv_forward(&cx, prec, plan, s, x, ldx, w, bias, relu, y, ldy);
}

void bk_conv2d_forward_planned(bk_precision prec, bk_weight_plan *plan,
                               const bk_conv_shape *s, const float *x,
                               const float *w, const float *bias, float *y)
{
    if (s) bk_conv2d_forward_ex(prec, plan, s, x, s->in_c, w, bias, 0, y, s->out_c);
}

void bk_conv2d_forward(bk_precision prec, const bk_conv_shape *s,
                       const float *x, const float *w, const float *bias,
                       float *y)
{
    bk_conv2d_forward_planned(prec, NULL, s, x, w, bias, y);
}

void bk_conv2d_backward_data(bk_precision prec, const bk_conv_shape *s,
                             const float *dy, const float *w, float *dx,
                             int accumulate)
{
    bk_ctx cx = bk__ctx();
    conv_backward_data(&cx, prec, s, dy, w, dx, accumulate);
}

void bk_conv2d_backward_weight(bk_precision prec, const bk_conv_shape *s,
                               const float *x, const float *dy, float *dw,
                               float *dbias, int accumulate)
{
    bk_ctx cx = bk__ctx();
    conv_backward_weight(&cx, prec, s, x, NULL, dy, dw, dbias, accumulate);
}

void bk_conv2d_backward_weight_bf16(const bk_conv_shape *s, const uint16_t *x,
                                    const float *dy, float *dw, float *dbias,
                                    int accumulate)
{
    bk_ctx cx = bk__ctx();
    conv_backward_weight(&cx, BK_BF16, s, NULL, x, dy, dw, dbias, accumulate);
}
