/*
 * Batch normalisation over NHWC activations viewed as [n][hw][c]: statistics,
 * the normalise-scale-shift (optionally followed by ReLU), and its backward.
 *
 * Gains and biases are indexed gain[sample * stride + channel]: stride c for
 * BigGAN's class-conditional batch-norm (one gain per sample and channel),
 * stride 0 for an ordinary one (one per channel).
 *
 * Every reduction runs over pixels in a fixed order with double accumulators,
 * and threads split channels only, so results do not depend on the thread
 * count.
 */
#include "internal.h"

#include <math.h>

/* The channel slice [*c0, *c1) of thread t of nt. */
static void channel_slice(int c, int t, int nt, int *c0, int *c1)
{
    *c0 = (int)((long)c * t / nt);
    *c1 = (int)((long)c * (t + 1) / nt);
}

/*
 * Row kernels: one pixel's channels. Every pointer is restrict (the
 * accumulators live in a workspace the compiler cannot otherwise tell apart
 * from the activations) and every option is decided outside the loop, so
 * the loops vectorise; lanes do what the scalar loop does, in the same
 * order, so the bits do not change.
 */

static inline void add_row(int w, const float *restrict x, double *restrict s)
{
    for (int j = 0; j < w; j++) s[j] += x[j];
}

static inline void add_squares(int w, const float *restrict x,
                               const double *restrict mean, double *restrict q)
{
    for (int j = 0; j < w; j++) {
        double d = x[j] - mean[j];
        q[j] += d * d;
    }
}

/* y = (x - mean) rstd, times gain and plus bias when given, then ReLU. */
static inline void normalize_row(int c, const float *restrict x,
                                 const float *restrict mean,
                                 const float *restrict rstd,
                                 const float *restrict gain,
                                 const float *restrict bias, int relu,
                                 float *restrict y)
{
    for (int j = 0; j < c; j++) y[j] = (x[j] - mean[j]) * rstd[j];
    if (gain)
        for (int j = 0; j < c; j++) y[j] *= gain[j];
    if (bias)
        for (int j = 0; j < c; j++) y[j] += bias[j];
    if (relu)
        for (int j = 0; j < c; j++) y[j] = y[j] < 0.0f ? 0.0f : y[j];
}

/* The upstream gradient, zero where the fused ReLU zeroed the forward's
 * output: where xhat * scale + shift, rounded step by step as bk_bn_forward
 * rounds it, is not above zero (when masked). Both values are computed
 * whatever the mask, so the choice is a vector select. */
static inline __attribute__((always_inline)) float
upstream(int masked, float xhat, const float *restrict scale,
         const float *restrict shift, const float *restrict dy, int j)
{
    float g = dy[j];
    if (!masked) return g;
    float pre = xhat * scale[j];
    pre = pre + shift[j];
    return pre <= 0.0f ? 0.0f : g;
}

/* pd += g and pdx += g xhat, g the upstream gradient; `masked` is a
 * constant at each call, so each variant is a loop of its own. */
static inline __attribute__((always_inline)) void
gradient_sums_impl(int masked, int w, const float *restrict x,
                   const float *restrict dy, const float *restrict mu,
                   const float *restrict rstd, const float *restrict scale,
                   const float *restrict shift, float *restrict pd,
                   float *restrict pdx)
{
    for (int j = 0; j < w; j++) {
        float xhat = (x[j] - mu[j]) * rstd[j];
        float g = upstream(masked, xhat, scale, shift, dy, j);
        pd[j] += g;
        pdx[j] += g * xhat;
    }
}

static inline void gradient_sums(int masked, int w, const float *restrict x,
                                 const float *restrict dy,
                                 const float *restrict mu,
                                 const float *restrict rstd,
                                 const float *restrict scale,
                                 const float *restrict shift,
                                 float *restrict pd, float *restrict pdx)
{
    if (masked) gradient_sums_impl(1, w, x, dy, mu, rstd, scale, shift, pd, pdx);
    else gradient_sums_impl(0, w, x, dy, mu, rstd, scale, shift, pd, pdx);
}

/* dx from the upstream gradient: through the batch statistics (their mean
 * gradients md and mdx) or, with md NULL, through fixed ones. */
static inline __attribute__((always_inline)) void
input_gradient_impl(int masked, int w, const float *restrict x,
                    const float *restrict dy, const float *restrict mu,
                    const float *restrict rstd, const float *restrict scale,
                    const float *restrict shift, const float *restrict md,
                    const float *restrict mdx, float *restrict dx)
{
    if (!md) {
        for (int j = 0; j < w; j++) {
            float xhat = (x[j] - mu[j]) * rstd[j];
            dx[j] = upstream(masked, xhat, scale, shift, dy, j) * scale[j] * rstd[j];
        }
        return;
    }
    for (int j = 0; j < w; j++) {
        float xhat = (x[j] - mu[j]) * rstd[j];
        float gg = upstream(masked, xhat, scale, shift, dy, j) * scale[j];
        dx[j] = rstd[j] * (gg - md[j] - xhat * mdx[j]);
    }
}

static inline void input_gradient(int masked, int w, const float *restrict x,
                                  const float *restrict dy,
                                  const float *restrict mu,
                                  const float *restrict rstd,
                                  const float *restrict scale,
                                  const float *restrict shift,
                                  const float *restrict md,
                                  const float *restrict mdx,
                                  float *restrict dx)
{
    if (masked) input_gradient_impl(1, w, x, dy, mu, rstd, scale, shift, md, mdx, dx);
    else input_gradient_impl(0, w, x, dy, mu, rstd, scale, shift, md, mdx, dx);
}

/* Mean s and sum of squared deviations q of channels [c0, c0 + w) over
 * rows, in two passes. */
static void moments_slice(int rows, int c, const float *x, int c0, int w,
                          double *restrict s, double *restrict q)
{
    for (int j = 0; j < w; j++) s[j] = q[j] = 0.0;
    for (int r = 0; r < rows; r++) add_row(w, x + (size_t)r * c + c0, s);
    for (int j = 0; j < w; j++) s[j] /= rows;
    for (int r = 0; r < rows; r++) add_squares(w, x + (size_t)r * c + c0, s, q);
}

void bk_bn_moments(int rows, int c, const float *x, double *mean, double *m2)
{
    if (rows <= 0 || c <= 0) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)rows * c, cx.kr->tuning->norm_per_thread);
#pragma omp parallel num_threads(nt)
    {
        int c0, c1;
        channel_slice(c, bk__thread_num(), bk__team_count(), &c0, &c1);
        if (c1 > c0) moments_slice(rows, c, x, c0, c1 - c0, mean + c0, m2 + c0);
    }
}

void bk_bn_stats(int rows, int c, const float *x, float *mean, float *var)
{
    if (rows <= 0 || c <= 0) return;
    double *acc = bk__workspace(BK_WS_NORM, sizeof(double) * 2 * (size_t)c);
    if (!acc) return;
    bk_bn_moments(rows, c, x, acc, acc + c);
    for (int j = 0; j < c; j++) {
        mean[j] = (float)acc[j];
        var[j] = (float)(acc[c + j] / rows);
    }
}

void bk_bn_forward(int n, int hw, int c, const float *x, const float *mean,
                   const float *var, float eps, const float *gain,
                   const float *bias, int stride, int relu, float *y)
{
    if (n <= 0 || hw <= 0 || c <= 0) return;
    float *rstd = bk__workspace(BK_WS_NORM, sizeof(float) * (size_t)c);
    if (!rstd) return;
    for (int j = 0; j < c; j++) rstd[j] = 1.0f / sqrtf(var[j] + eps);
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n * hw * c, cx.kr->tuning->norm_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < (long)n * hw; r++) {
        int s = (int)(r / hw);
        normalize_row(c, x + (size_t)r * c, mean, rstd,
                      gain ? gain + (size_t)s * stride : NULL,
                      bias ? bias + (size_t)s * stride : NULL, relu, y + (size_t)r * c);
    }
}

/* One thread's channels [c0, c0 + w) of the backward: its scratch and the
 * statistics it reads, per channel of the slice; scale and shift hold the
 * gain and bias of the sample at hand. */
typedef struct {
    int c0, w;
    float *rstd, *mu, *pd, *pdx, *scale, *shift;
    double *gd, *gdx;
} norm_slice;

/* The forward's affine transform and fused ReLU, as bk_bn_forward took them. */
typedef struct {
    const float *gain, *bias;
    int stride, relu;
} norm_affine;

/* The workspace bytes of a slice of w channels. */
static size_t slice_bytes(int w)
{
    size_t n = (size_t)(w > 0 ? w : 1);
    return sizeof(double) * 4 * n + sizeof(float) * 6 * n;
}

/* Lays out a slice in this thread's workspace (NULL when it cannot be had)
 * and loads its statistics. The first 2w doubles are left for sums the
 * caller may keep there. */
static int slice_begin(norm_slice *sl, int c0, int w, const float *mean,
                       const float *var, float eps)
{
    double *acc = bk__workspace(BK_WS_NORM, slice_bytes(w));
    if (!acc || w <= 0) return 0;
    sl->c0 = c0;
    sl->w = w;
    sl->gd = acc + 2 * w;
    sl->gdx = acc + 3 * w;
    sl->rstd = (float *)(acc + 4 * w);
    sl->mu = sl->rstd + w;
    sl->pd = sl->mu + w;
    sl->pdx = sl->pd + w;
    sl->scale = sl->pdx + w;
    sl->shift = sl->scale + w;
    for (int j = 0; j < w; j++) {
        sl->rstd[j] = 1.0f / sqrtf(var[c0 + j] + eps);
        sl->mu[j] = mean[c0 + j];
    }
    return 1;
}

/* The slice's gain and bias for sample s: 1 and 0 where the forward had
 * none, which leave its values as they were (a -0 becoming +0 masks the
 * same). */
static void slice_affine(const norm_slice *sl, const norm_affine *af, int s)
{
    const float *g = af->gain ? af->gain + (size_t)s * af->stride + sl->c0 : NULL;
    const float *b = af->bias ? af->bias + (size_t)s * af->stride + sl->c0 : NULL;
    for (int j = 0; j < sl->w; j++) {
        sl->scale[j] = g ? g[j] : 1.0f;
        sl->shift[j] = b ? b[j] : 0.0f;
    }
}

/* Per channel of the slice: sums over all pixels of dy*gain (sd) and
 * dy*gain*xhat (sdx), what batch statistics feed back; and per gain row the
 * sums of dy and dy*xhat, the gain and bias gradients. One sample's pixels
 * are summed in float, so the inner loop vectorises, then folded into double
 * totals in sample order. */
static void gradient_sums_slice(const norm_slice *sl, int n, int hw, int c,
                                const float *x, const norm_affine *af,
                                const float *dy, double *restrict sd,
                                double *restrict sdx, float *dgain, float *dbias)
{
    int c0 = sl->c0, w = sl->w;
    double *gd = sl->gd, *gdx = sl->gdx;
    float *pd = sl->pd, *pdx = sl->pdx, *scale = sl->scale;
    for (int j = 0; j < w; j++) sd[j] = sdx[j] = gd[j] = gdx[j] = 0.0;
    for (int s = 0; s < n; s++) {
        slice_affine(sl, af, s);
        for (int j = 0; j < w; j++) pd[j] = pdx[j] = 0.0f;
        for (int p = 0; p < hw; p++) {
            size_t o = ((size_t)s * hw + p) * c + c0;
            gradient_sums(af->relu, w, x + o, dy + o, sl->mu, sl->rstd, scale, sl->shift,
                          pd, pdx);
        }
        /* dy*gain sums follow from dy sums: the gain is constant over a
         * sample's pixels. */
        for (int j = 0; j < w; j++) {
            sd[j] += pd[j] * scale[j];
            sdx[j] += pdx[j] * scale[j];
            gd[j] += pd[j];
            gdx[j] += pdx[j];
        }
        /* A gain row ends with a sample (stride > 0) or the batch. */
        if (af->stride || s == n - 1) {
            size_t o = (size_t)s * af->stride + c0;
            for (int j = 0; j < w; j++) {
                if (dgain) dgain[o + j] = (float)gdx[j];
                if (dbias) dbias[o + j] = (float)gd[j];
                gd[j] = gdx[j] = 0.0;
            }
        }
    }
}

/* dx of the slice; md and mdx (the slice's mean gradients through the batch
 * statistics) NULL for fixed statistics. */
static void input_gradient_slice(const norm_slice *sl, int n, int hw, int c,
                                 const float *x, const norm_affine *af,
                                 const float *dy, const float *md,
                                 const float *mdx, float *dx)
{
    int c0 = sl->c0, w = sl->w;
    for (int s = 0; s < n; s++) {
        slice_affine(sl, af, s);
        for (int p = 0; p < hw; p++) {
            size_t o = ((size_t)s * hw + p) * c + c0;
            input_gradient(af->relu, w, x + o, dy + o, sl->mu, sl->rstd, sl->scale, sl->shift,
                           md, mdx, dx + o);
        }
    }
}

void bk_bn_backward(int n, int hw, int c, const float *x, const float *mean,
                    const float *var, float eps, const float *gain,
                    const float *bias, int stride, int relu, const float *dy,
                    int batch_stats, float *dx, float *dgain, float *dbias)
{
    if (n <= 0 || hw <= 0 || c <= 0) return;
    norm_affine af = {gain, bias, stride, relu};
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n * hw * c, cx.kr->tuning->norm_per_thread / 4);
    long rows = (long)n * hw;
#pragma omp parallel num_threads(nt)
    {
        int c0, c1;
        channel_slice(c, bk__thread_num(), bk__team_count(), &c0, &c1);
        norm_slice sl;
        if (slice_begin(&sl, c0, c1 - c0, mean, var, eps)) {
            int w = sl.w;
            double *sd = sl.gd - 2 * w, *sdx = sl.gd - w;
            gradient_sums_slice(&sl, n, hw, c, x, &af, dy, sd, sdx, dgain, dbias);
            for (int j = 0; j < w; j++) {
                sl.pd[j] = (float)(sd[j] / rows);
                sl.pdx[j] = (float)(sdx[j] / rows);
            }
            input_gradient_slice(&sl, n, hw, c, x, &af, dy, batch_stats ? sl.pd : NULL,
                                 sl.pdx, dx);
        }
    }
}

/* A half of the split backward over every channel: dx when dx is given,
 * else the sums. */
static void split_backward(int n, int hw, int c, const float *x,
                           const float *mean, const float *var, float eps,
                           const norm_affine *af, const float *dy, double *sum_dy,
                           double *sum_dy_xhat, float *dgain, float *dbias,
                           const float *mean_dy, const float *mean_dy_xhat,
                           float *dx)
{
    if (n <= 0 || hw <= 0 || c <= 0) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n * hw * c, cx.kr->tuning->norm_per_thread / 2);
#pragma omp parallel num_threads(nt)
    {
        int c0, c1;
        channel_slice(c, bk__thread_num(), bk__team_count(), &c0, &c1);
        norm_slice sl;
        int ok = slice_begin(&sl, c0, c1 - c0, mean, var, eps);
        if (ok && dx) {
            input_gradient_slice(&sl, n, hw, c, x, af, dy, mean_dy ? mean_dy + c0 : NULL,
                                 mean_dy_xhat ? mean_dy_xhat + c0 : NULL, dx);
        } else if (ok) {
            gradient_sums_slice(&sl, n, hw, c, x, af, dy, sum_dy + c0, sum_dy_xhat + c0,
                                dgain, dbias);
        }
    }
}

void bk_bn_backward_sums(int n, int hw, int c, const float *x, const float *mean,
                         const float *var, float eps, const float *gain,
                         const float *bias, int stride, int relu,
                         const float *dy, double *sum_dy, double *sum_dy_xhat,
                         float *dgain, float *dbias)
{
    norm_affine af = {gain, bias, stride, relu};
    split_backward(n, hw, c, x, mean, var, eps, &af, dy, sum_dy, sum_dy_xhat, dgain,
                   dbias, NULL, NULL, NULL);
}

void bk_bn_backward_input(int n, int hw, int c, const float *x,
                          const float *mean, const float *var, float eps,
                          const float *gain, const float *bias, int stride,
                          int relu, const float *dy, const float *mean_dy,
                          const float *mean_dy_xhat, float *dx)
{
    norm_affine af = {gain, bias, stride, relu};
    split_backward(n, hw, c, x, mean, var, eps, &af, dy, NULL, NULL, NULL, NULL, mean_dy,
                   mean_dy_xhat, dx);
}
