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

/* Below this many elements per thread, one thread is faster. */
#define NORM_PER_THREAD 32768.0

/* The channel slice [*c0, *c1) of thread t of nt. */
static void channel_slice(int c, int t, int nt, int *c0, int *c1)
{
    *c0 = (int)((long)c * t / nt);
    *c1 = (int)((long)c * (t + 1) / nt);
}

#ifdef _OPENMP
#define TEAM_ID omp_get_thread_num()
#define TEAM_SIZE omp_get_num_threads()
#else
#define TEAM_ID 0
#define TEAM_SIZE 1
#endif

void bk_bn_stats(int rows, int c, const float *x, float *mean, float *var)
{
    if (rows <= 0 || c <= 0) return;
    int nt = bk__team_size((double)rows * c, NORM_PER_THREAD);
#pragma omp parallel num_threads(nt)
    {
        int c0, c1;
        channel_slice(c, TEAM_ID, TEAM_SIZE, &c0, &c1);
        int w = c1 - c0;
        double *acc = bk__workspace(BK_WS_NORM, sizeof(double) * 2 * (size_t)(w > 0 ? w : 1));
        if (acc && w > 0) {
            double *s = acc, *q = acc + w;
            for (int j = 0; j < w; j++) s[j] = q[j] = 0.0;
            for (int r = 0; r < rows; r++) {
                const float *xr = x + (size_t)r * c + c0;
                for (int j = 0; j < w; j++) s[j] += xr[j];
            }
            for (int j = 0; j < w; j++) s[j] /= rows;
            for (int r = 0; r < rows; r++) {
                const float *xr = x + (size_t)r * c + c0;
                for (int j = 0; j < w; j++) {
                    double d = xr[j] - s[j];
                    q[j] += d * d;
                }
            }
            for (int j = 0; j < w; j++) {
                mean[c0 + j] = (float)s[j];
                var[c0 + j] = (float)(q[j] / rows);
            }
        }
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
    int nt = bk__team_size((double)n * hw * c, NORM_PER_THREAD);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < (long)n * hw; r++) {
        int s = (int)(r / hw);
        const float *xr = x + (size_t)r * c;
        float *yr = y + (size_t)r * c;
        const float *gs = gain ? gain + (size_t)s * stride : NULL;
        const float *bs = bias ? bias + (size_t)s * stride : NULL;
        for (int j = 0; j < c; j++) {
            float v = (xr[j] - mean[j]) * rstd[j];
            if (gs) v *= gs[j];
            if (bs) v += bs[j];
            yr[j] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

void bk_bn_backward(int n, int hw, int c, const float *x, const float *mean,
                    const float *var, float eps, const float *gain,
                    int stride, const float *y, const float *dy,
                    int batch_stats, float *dx, float *dgain, float *dbias)
{
    if (n <= 0 || hw <= 0 || c <= 0) return;
    int nt = bk__team_size((double)n * hw * c, NORM_PER_THREAD / 4);
    long rows = (long)n * hw;
#pragma omp parallel num_threads(nt)
    {
        int c0, c1;
        channel_slice(c, TEAM_ID, TEAM_SIZE, &c0, &c1);
        int w = c1 - c0;
        /* Per channel of this thread's slice: sums over all pixels of
         * dy*gain and dy*gain*xhat (what batch statistics feed back), and
         * per gain row the sums of dy and dy*xhat (the gain and bias
         * gradients). One sample's pixels are summed in float, so the inner
         * loop vectorises, then folded into double totals in sample order. */
        size_t bytes = sizeof(double) * 4 * (size_t)(w > 0 ? w : 1) + sizeof(float) * 7 * (size_t)(w > 0 ? w : 1);
        double *acc = bk__workspace(BK_WS_NORM, bytes);
        if (acc && w > 0) {
            double *sd = acc, *sdx = acc + w, *gd = acc + 2 * w, *gdx = acc + 3 * w;
            float *rstd = (float *)(acc + 4 * w), *mu = rstd + w;
            float *pd = mu + w, *pdx = pd + w, *psd = pdx + w, *psdx = psd + w, *scale = psdx + w;
            for (int j = 0; j < w; j++) {
                sd[j] = sdx[j] = gd[j] = gdx[j] = 0.0;
                rstd[j] = 1.0f / sqrtf(var[c0 + j] + eps);
                mu[j] = mean[c0 + j];
            }
            for (int s = 0; s < n; s++) {
                const float *gs = gain ? gain + (size_t)s * stride + c0 : NULL;
                for (int j = 0; j < w; j++) {
                    pd[j] = pdx[j] = 0.0f;
                    scale[j] = gs ? gs[j] : 1.0f;
                }
                for (int p = 0; p < hw; p++) {
                    size_t o = ((size_t)s * hw + p) * c + c0;
                    const float *xr = x + o, *dyr = dy + o, *yr = y ? y + o : NULL;
                    for (int j = 0; j < w; j++) {
                        float g = yr && yr[j] <= 0.0f ? 0.0f : dyr[j];
                        float xhat = (xr[j] - mu[j]) * rstd[j];
                        pd[j] += g;
                        pdx[j] += g * xhat;
                    }
                }
                /* dy*gain sums follow from dy sums: the gain is constant
                 * over a sample's pixels. */
                for (int j = 0; j < w; j++) {
                    psd[j] = pd[j] * scale[j];
                    psdx[j] = pdx[j] * scale[j];
                    sd[j] += psd[j];
                    sdx[j] += psdx[j];
                    gd[j] += pd[j];
                    gdx[j] += pdx[j];
                }
                /* A gain row ends with a sample (stride > 0) or the batch. */
                if (stride || s == n - 1) {
                    size_t o = (size_t)s * stride + c0;
                    for (int j = 0; j < w; j++) {
                        if (dgain) dgain[o + j] = (float)gdx[j];
                        if (dbias) dbias[o + j] = (float)gd[j];
                        gd[j] = gdx[j] = 0.0;
                    }
                }
            }
            for (int j = 0; j < w; j++) {
                pd[j] = (float)(sd[j] / rows);
                pdx[j] = (float)(sdx[j] / rows);
            }
            for (int s = 0; s < n; s++) {
                const float *gs = gain ? gain + (size_t)s * stride + c0 : NULL;
                for (int j = 0; j < w; j++) scale[j] = gs ? gs[j] : 1.0f;
                for (int p = 0; p < hw; p++) {
                    size_t o = ((size_t)s * hw + p) * c + c0;
                    const float *xr = x + o, *dyr = dy + o, *yr = y ? y + o : NULL;
                    float *dxr = dx + o;
                    for (int j = 0; j < w; j++) {
                        float g = yr && yr[j] <= 0.0f ? 0.0f : dyr[j];
                        float gg = g * scale[j];
                        if (!batch_stats) {
                            dxr[j] = gg * rstd[j];
                            continue;
                        }
                        float xhat = (xr[j] - mu[j]) * rstd[j];
                        dxr[j] = rstd[j] * (gg - pd[j] - xhat * pdx[j]);
                    }
                }
            }
        }
    }
}
