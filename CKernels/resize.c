/*
 * Image resizing that reproduces the resamplers FID tools run before
 * Inception-v3 (see bk_resize_filter in the header for each one's source).
 * All three are separable: like their originals, they resample along one
 * axis into a float image and then along the other, the width first except
 * where Pillow starts with the height; which pass comes first decides the
 * rounding, so it is kept. A pass computes each output value from a few
 * taps along one axis, from a table built per call.
 */
#include "internal.h"

/* The taps of one axis: output position o reads the count[o] input positions
 * from first[o], with weights weight[o * taps ...]. The bilinear filters
 * have two taps, stored as count 1 when both are the same position; the tf
 * filter keeps its lerp fraction in the second weight. */
typedef struct {
    int taps;
    int *first, *count;
    double *weight;
} axis_taps;

/* Pillow's bicubic kernel (a = -0.5), in its evaluation order. */
static double pil_bicubic(double x)
{
    if (x < 0.0) x = -x;
    if (x < 1.0) return (1.5 * x - 2.5) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * -0.5;
    return 0.0;
}

/* tf and torch: taps i0 and i1 (i0 + 1, or i0 at the last position). */
static void bilinear_fill(bk_resize_filter filter, int in, int out, axis_taps *a)
{
    /* in / out rounded to float once, as both originals do. */
    float scale = (float)in / (float)out;
    for (int o = 0; o < out; o++) {
        double *w = a->weight + 2 * (size_t)o;
        int i0 = o, i1 = o;
        if (filter == BK_RESIZE_TF_BILINEAR) {
            /* torch-fidelity's float grid o * scale, truncated. The cap
             * matters only past 2^23 outputs, where the rounded product can
             * reach `in`. */
            float src = (float)o * scale;
            i0 = (int)src;
            if (i0 > in - 1) i0 = in - 1;
            i1 = i0 < in - 1 ? i0 + 1 : i0;
            w[1] = src - (float)i0;
        } else if (in != out) {
            /* ATen's area_pixel_compute_source_index and
             * guard_index_and_lambda, in float. */
            float src = scale * ((float)o + 0.5f) - 0.5f;
            if (src < 0.0f) src = 0.0f;
            i0 = (int)floorf(src);
            if (i0 > in - 1) i0 = in - 1;
            i1 = i0 < in - 1 ? i0 + 1 : i0;
            float l1 = fminf(fmaxf(src - (float)i0, 0.0f), 1.0f);
            w[0] = 1.0f - l1;
            w[1] = l1;
        } else {
            /* ATen copies at equal sizes: both taps at o, weights 1 and 0. */
            w[0] = 1.0;
        }
        a->first[o] = i0;
        a->count[o] = i1 - i0 + 1;
    }
}

/* Pillow's precompute_coeffs for the box (0, 0, in, out) and the bicubic
 * filter, whose support widens by the shrink factor (antialiasing). */
static void pil_fill(int in, int out, axis_taps *a)
{
    double scale = (double)in / out;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    for (int o = 0; o < out; o++) {
        double *w = a->weight + (size_t)o * a->taps;
        double center = (o + 0.5) * scale, ss = 1.0 / filterscale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        int xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in) xmax = in;
        for (int x = 0; x < xmax - xmin; x++) {
            w[x] = pil_bicubic((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax - xmin; x++)
            if (ww != 0.0) w[x] /= ww;
        a->first[o] = xmin;
        a->count[o] = xmax - xmin;
    }
}

/* Allocates and fills the table; 0, or -1 when memory is short. Pillow
 * skips the pass of an axis whose size does not change: one tap of weight 1
 * does the same. */
static int axis_init(bk_resize_filter filter, int in, int out, axis_taps *a)
{
    int pil = filter == BK_RESIZE_PIL_BICUBIC, skip = pil && in == out;
    double scale = (double)in / out;
    a->taps = skip ? 1 : pil ? (int)ceil(2.0 * (scale < 1.0 ? 1.0 : scale)) * 2 + 1 : 2;
    a->first = malloc(sizeof(int) * 2 * (size_t)out);
    a->count = a->first ? a->first + out : NULL;
    a->weight = calloc((size_t)out * a->taps, sizeof(double));
    if (!a->first || !a->weight) return -1;
    if (skip)
        for (int o = 0; o < out; o++) {
            a->first[o] = o;
            a->count[o] = 1;
            a->weight[o] = 1.0;
        }
    else if (pil)
        pil_fill(in, out, a);
    else
        bilinear_fill(filter, in, out, a);
    return 0;
}

static void axis_free(axis_taps *a)
{
    free(a->first);
    free(a->weight);
}

/* Output position o of an axis from the values src[p * step] at input
 * positions p, in the arithmetic of each original: tf lerps, ATen (built
 * for AVX2, where the compiler fuses its t0 * w0 + t1 * w1) takes one fma,
 * Pillow sums in double. */
static inline float resample(bk_resize_filter filter, const axis_taps *a,
                             int o, const float *src, size_t step)
{
    const double *w = a->weight + (size_t)o * a->taps;
    const float *p = src + (size_t)a->first[o] * step;
    const float *q = p + (size_t)(a->count[o] - 1) * step;
    switch (filter) {
    case BK_RESIZE_TF_BILINEAR:
        return *p + (*q - *p) * (float)w[1];
    case BK_RESIZE_TORCH_BILINEAR:
        return fmaf(*p, (float)w[0], *q * (float)w[1]);
    default: {
        double s = 0.0;
        for (int j = 0; j < a->count[o]; j++) s += (double)p[j * step] * w[j];
        return (float)s;
    }
    }
}

/* One row of `out_w` pixels of c channels resampled along the width from a
 * row of src. */
static void width_row(bk_resize_filter filter, const axis_taps *cols,
                      const float *src, float *dst, int out_w, int c)
{
    for (int o = 0; o < out_w; o++)
        for (int k = 0; k < c; k++)
            dst[(size_t)o * c + k] = resample(filter, cols, o, src + k, (size_t)c);
}

/* Output row r (`len` values) resampled along the height from src, whose
 * rows are `len` values apart. */
static void height_row(bk_resize_filter filter, const axis_taps *rows, int r,
                       const float *src, float *dst, size_t len)
{
    for (size_t e = 0; e < len; e++) dst[e] = resample(filter, rows, r, src + e, len);
}

int bk_resize(bk_resize_filter filter, int n, int in_h, int in_w, int c,
              const float *x, int out_h, int out_w, float *y)
{
    if (filter < BK_RESIZE_TF_BILINEAR || filter > BK_RESIZE_PIL_BICUBIC ||
        n < 0 || in_h < 1 || in_w < 1 || c < 1 || out_h < 1 || out_w < 1)
        return -1;
    /* Pillow (13.0) runs the height pass first when the height loses more
     * than twice as many pixels as the width; before that release, and in
     * the other filters, the width always comes first. */
    int height_first = filter == BK_RESIZE_PIL_BICUBIC && in_h > out_h &&
                       (long)in_h - out_h > 2 * ((long)in_w - out_w);
    axis_taps rows, cols;
    int ok = axis_init(filter, in_h, out_h, &rows) == 0;
    ok = axis_init(filter, in_w, out_w, &cols) == 0 && ok;
    /* The first pass of one image at a time, all of its rows. */
    size_t row_in = (size_t)in_w * c, row_out = (size_t)out_w * c;
    size_t t_size = height_first ? out_h * row_in : in_h * row_out;
    float *t = ok ? malloc(sizeof(float) * t_size) : NULL;
    if (t) {
        bk_ctx cx = bk__ctx();
        double madds = (double)n * (in_h * cols.taps + out_h * rows.taps) * (double)row_out;
        int nt = bk__team_size(&cx, madds, cx.kr->tuning->resize_per_thread);
#pragma omp parallel num_threads(nt)
        for (int b = 0; b < n; b++) {
            const float *xb = x + (size_t)b * in_h * row_in;
            float *yb = y + (size_t)b * out_h * row_out;
            if (height_first) {
#pragma omp for schedule(static)
                for (int r = 0; r < out_h; r++)
                    height_row(filter, &rows, r, xb, t + r * row_in, row_in);
#pragma omp for schedule(static)
                for (int r = 0; r < out_h; r++)
                    width_row(filter, &cols, t + r * row_in, yb + r * row_out, out_w, c);
            } else {
#pragma omp for schedule(static)
                for (int r = 0; r < in_h; r++)
                    width_row(filter, &cols, xb + r * row_in, t + r * row_out, out_w, c);
#pragma omp for schedule(static)
                for (int r = 0; r < out_h; r++)
                    height_row(filter, &rows, r, t, yb + r * row_out, row_out);
            }
        }
    }
    int status = t ? 0 : -1;
    free(t);
    axis_free(&rows);
    axis_free(&cols);
    return status;
}
