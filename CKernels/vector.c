/*
 * Level-1 and level-2 kernels (dot products, matrix-vector products, scaling,
 * rank-1 updates), used by spectral normalisation and the optimizers. Sums run
 * in 8 interleaved partial sums per chunk of a fixed size, combined in a fixed
 * order, so the compiler may vectorise them and the bits depend neither on
 * the instruction set nor on the thread count. Products and sums are separate
 * operations (no fmaf): portable code without FMA in its target would call
 * libm for every fmaf.
 */
#include "internal.h"


static float dot8(const float *a, const float *b, long n)
{
    float s[8] = {0};
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += a[i + l] * b[i + l];
    for (; i < n; i++) s[i % 8] += a[i] * b[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

double bk_dot(size_t n, const float *a, const float *b)
{
    long chunks = (long)((n + BK_DOT_CHUNK - 1) / BK_DOT_CHUNK);
    if (chunks == 0) return 0.0;
    double *part = bk__workspace(BK_WS_NORM, sizeof(double) * (size_t)chunks);
    if (!part) return 0.0;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n, cx.kr->tuning->vector_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long q = 0; q < chunks; q++) {
        long lo = q * BK_DOT_CHUNK, len = (long)n - lo < BK_DOT_CHUNK ? (long)n - lo : BK_DOT_CHUNK;
        part[q] = dot8(a + lo, b + lo, len);
    }
    double s = 0.0;
    for (long q = 0; q < chunks; q++) s += part[q];
    return s;
}

void bk_gemv(int trans, int rows, int cols, const float *w, const float *x, float *y)
{
    if (rows <= 0 || cols <= 0) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)rows * cols, cx.kr->tuning->vector_per_thread);
    if (!trans) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int r = 0; r < rows; r++) y[r] = dot8(w + (size_t)r * cols, x, cols);
        return;
    }
    /* y = W^T x: threads own column slices and walk the rows in order. */
#pragma omp parallel num_threads(nt)
    {
        int t = bk__thread_num(), team = bk__team_count();
        int c0 = (int)((long)cols * t / team), c1 = (int)((long)cols * (t + 1) / team);
        for (int c = c0; c < c1; c++) y[c] = 0.0f;
        for (int r = 0; r < rows; r++) {
            const float *wr = w + (size_t)r * cols;
            float xr = x[r];
            for (int c = c0; c < c1; c++) y[c] += xr * wr[c];
        }
    }
}

void bk_scale(size_t n, float alpha, const float *x, float *y)
{
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)n, cx.kr->tuning->vector_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (long i = 0; i < (long)n; i++) y[i] = alpha * x[i];
}

void bk_rank1_update(int rows, int cols, float alpha, const float *u,
                     const float *v, float *a)
{
    if (rows <= 0 || cols <= 0) return;
    bk_ctx cx = bk__ctx();
    int nt = bk__team_size(&cx, (double)rows * cols, cx.kr->tuning->vector_per_thread);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int r = 0; r < rows; r++) {
        float au = alpha * u[r];
        float *ar = a + (size_t)r * cols;
        for (int c = 0; c < cols; c++) ar[c] += au * v[c];
    }
}
