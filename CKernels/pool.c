/*
 * Pooling and nearest-neighbour upsampling on NHWC activations: 2x2 average
 * and max pooling (stride 2; an odd last row or column is dropped, as
 * PyTorch's AvgPool2d(2) and MaxPool2d(2) do), global sum pooling, and the
 * x2 nearest upsample, each with its backward; and, forward only, general
 * k x k max and average pooling and the global mean. Every output element
 * is written by one thread, so nothing depends on the thread count.
 */
#include "internal.h"

/* Element offset of pixel (b, y, x) in an [n][h][w][c] tensor. */
static inline size_t at(int b, int y, int x, int h, int w, int c)
{
    return (((size_t)b * h + y) * w + x) * c;
}

void bk_avgpool2x2_forward(int n, int h, int w, int c, const float *x, float *y)
{
    int oh = h / 2, ow = w / 2;
    if (n <= 0 || oh <= 0 || ow <= 0 || c <= 0) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n * h * w * c, cx.kr->tuning->pool_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < (long)n * oh; r++) {
        int b = (int)(r / oh), i = (int)(r % oh);
        for (int j = 0; j < ow; j++) {
            const float *p00 = x + at(b, 2 * i, 2 * j, h, w, c);
            const float *p01 = p00 + c, *p10 = p00 + (size_t)w * c, *p11 = p10 + c;
            float *o = y + at(b, i, j, oh, ow, c);
            for (int k = 0; k < c; k++) o[k] = 0.25f * ((p00[k] + p01[k]) + (p10[k] + p11[k]));
        }
    }
}

/* Backward of both 2x2 pools: each input pixel takes its window's gradient,
 * a quarter of it (average) or all of it if it won the window (max). */
static void pool2x2_backward(int n, int h, int w, int c, const float *dy,
                             const uint8_t *argmax, float *dx)
{
    int oh = h / 2, ow = w / 2;
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n * h * w * c, cx.kr->tuning->pool_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < (long)n * h; r++) {
        int b = (int)(r / h), yy = (int)(r % h);
        for (int xx = 0; xx < w; xx++) {
            float *o = dx + at(b, yy, xx, h, w, c);
            if (yy / 2 >= oh || xx / 2 >= ow) {
                memset(o, 0, sizeof(float) * (size_t)c);
                continue;
            }
            size_t src = at(b, yy / 2, xx / 2, oh, ow, c);
            if (!argmax) {
                for (int k = 0; k < c; k++) o[k] = 0.25f * dy[src + k];
                continue;
            }
            int q = (yy % 2) * 2 + xx % 2;
            for (int k = 0; k < c; k++) o[k] = argmax[src + k] == q ? dy[src + k] : 0.0f;
        }
    }
}

void bk_avgpool2x2_backward(int n, int h, int w, int c, const float *dy, float *dx)
{
    pool2x2_backward(n, h, w, c, dy, NULL, dx);
}

void bk_maxpool2x2_forward(int n, int h, int w, int c, const float *x, float *y,
                           uint8_t *argmax)
{
    int oh = h / 2, ow = w / 2;
    if (n <= 0 || oh <= 0 || ow <= 0 || c <= 0) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n * h * w * c, cx.kr->tuning->pool_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < (long)n * oh; r++) {
        int b = (int)(r / oh), i = (int)(r % oh);
        for (int j = 0; j < ow; j++) {
            const float *p[4];
            p[0] = x + at(b, 2 * i, 2 * j, h, w, c);
            p[1] = p[0] + c;
            p[2] = p[0] + (size_t)w * c;
            p[3] = p[2] + c;
            size_t o = at(b, i, j, oh, ow, c);
            for (int k = 0; k < c; k++) {
                /* The first maximum in window order wins, as in PyTorch. */
                int best = 0;
                float v = p[0][k];
                for (int q = 1; q < 4; q++)
                    if (p[q][k] > v) { v = p[q][k]; best = q; }
                y[o + k] = v;
                if (argmax) argmax[o + k] = (uint8_t)best;
            }
        }
    }
}

void bk_maxpool2x2_backward(int n, int h, int w, int c, const float *dy,
                            const uint8_t *argmax, float *dx)
{
    pool2x2_backward(n, h, w, c, dy, argmax, dx);
}

int bk_pool_out_size(int size, int kernel, int stride, int pad)
{
    if (size < 1 || kernel < 1 || stride < 1 || pad < 0 || 2 * pad > kernel ||
        size + 2 * pad < kernel)
        return -1;
    return (size + 2 * pad - kernel) / stride + 1;
}

/* One window pixel into a channel row. Separate restrict-qualified loops
 * so they vectorise: the maximum as a select (a NaN wins, as in
 * PyTorch), the sum in the window's row-major order. */
static inline void window_add(float *restrict o, const float *restrict p, int c)
{
    for (int k = 0; k < c; k++) o[k] += p[k];
}

static inline void window_max(float *restrict o, const float *restrict p, int c)
{
    for (int k = 0; k < c; k++) {
        float v = p[k];
        o[k] = (v > o[k] || v != v) ? v : o[k];
    }
}

/* The k x k pooling behind bk_maxpool_forward (avg = 0) and
 * bk_avgpool_forward (avg = 1). Each window is clipped to the image first:
 * with pad <= k/2 and the floor rule for the output size, the clipped
 * window always keeps a pixel, and the unclipped one never reaches past
 * the padding, so k^2 is the divisor that counts the padding. */
static void pool_forward(int avg, int n, int h, int w, int c, int kernel,
                         int stride, int pad, int count_pad, const float *x,
                         float *y, int ldy)
{
    int oh = bk_pool_out_size(h, kernel, stride, pad);
    int ow = bk_pool_out_size(w, kernel, stride, pad);
    if (n <= 0 || c <= 0 || oh < 1 || ow < 1 || ldy < c) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n * oh * ow * c * kernel * kernel,
                           cx.kr->tuning->pool_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < (long)n * oh; r++) {
        int b = (int)(r / oh), i = (int)(r % oh);
        int y0 = i * stride - pad, y1 = y0 + kernel;
        if (y0 < 0) y0 = 0;
        if (y1 > h) y1 = h;
        for (int j = 0; j < ow; j++) {
            int x0 = j * stride - pad, x1 = x0 + kernel;
            if (x0 < 0) x0 = 0;
            if (x1 > w) x1 = w;
            float *o = y + ((size_t)r * ow + j) * ldy;
            for (int k = 0; k < c; k++) o[k] = avg ? 0.0f : -INFINITY;
            for (int yy = y0; yy < y1; yy++)
                for (int xx = x0; xx < x1; xx++) {
                    const float *p = x + at(b, yy, xx, h, w, c);
                    if (avg)
                        window_add(o, p, c);
                    else
                        window_max(o, p, c);
                }
            if (avg) {
                float d = (float)(count_pad ? kernel * kernel : (y1 - y0) * (x1 - x0));
                for (int k = 0; k < c; k++) o[k] /= d;
            }
        }
    }
}

void bk_maxpool_forward(int n, int h, int w, int c, int kernel, int stride,
                        int pad, const float *x, float *y, int ldy)
{
    pool_forward(0, n, h, w, c, kernel, stride, pad, 0, x, y, ldy);
}

void bk_avgpool_forward(int n, int h, int w, int c, int kernel, int stride,
                        int pad, int count_pad, const float *x, float *y, int ldy)
{
    pool_forward(1, n, h, w, c, kernel, stride, pad, count_pad, x, y, ldy);
}

void bk_sumpool_forward(int n, int hw, int c, const float *x, float *y)
{
    if (n <= 0 || hw <= 0 || c <= 0) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n * hw * c, cx.kr->tuning->pool_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int b = 0; b < n; b++) {
        float *o = y + (size_t)b * c;
        memset(o, 0, sizeof(float) * (size_t)c);
        for (int p = 0; p < hw; p++) {
            const float *xr = x + ((size_t)b * hw + p) * c;
            for (int k = 0; k < c; k++) o[k] += xr[k];
        }
    }
}

void bk_meanpool_forward(int n, int hw, int c, const float *x, float *y)
{
    if (n <= 0 || hw <= 0 || c <= 0) return;
    bk_sumpool_forward(n, hw, c, x, y);
    for (size_t i = 0; i < (size_t)n * c; i++) y[i] /= (float)hw;
}

void bk_sumpool_backward(int n, int hw, int c, const float *dy, float *dx)
{
    if (n <= 0 || hw <= 0 || c <= 0) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n * hw * c, cx.kr->tuning->pool_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < (long)n * hw; r++)
        bk__copy_floats(dx + (size_t)r * c, dy + (size_t)(r / hw) * c, (size_t)c);
}

void bk_upsample2x_forward(int n, int h, int w, int c, const float *x, float *y)
{
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n * h * w * c * 4, cx.kr->tuning->pool_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < (long)n * 2 * h; r++) {
        int b = (int)(r / (2 * h)), yy = (int)(r % (2 * h));
        for (int xx = 0; xx < 2 * w; xx++)
            bk__copy_floats(y + at(b, yy, xx, 2 * h, 2 * w, c),
                            x + at(b, yy / 2, xx / 2, h, w, c), (size_t)c);
    }
}

void bk_upsample2x_backward(int n, int h, int w, int c, const float *dy, float *dx)
{
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n * h * w * c * 4, cx.kr->tuning->pool_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long r = 0; r < (long)n * h; r++) {
        int b = (int)(r / h), i = (int)(r % h);
        for (int j = 0; j < w; j++) {
            const float *g00 = dy + at(b, 2 * i, 2 * j, 2 * h, 2 * w, c);
            const float *g01 = g00 + c, *g10 = g00 + (size_t)2 * w * c, *g11 = g10 + c;
            float *o = dx + at(b, i, j, h, w, c);
            for (int k = 0; k < c; k++) o[k] = (g00[k] + g01[k]) + (g10[k] + g11[k]);
        }
    }
}
